// SPDX-License-Identifier: Apache-2.0
// Runs every file of the corpus directories given on the command line through a libFuzzer target's
// LLVMFuzzerTestOneInput, so the seed corpus is a regular test in the gcc build (no libFuzzer).
// A crash fails the test by itself; the driver only reports which file it was on.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR...\n";
    return 2;
  }
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(argv[i], ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (ec) {
      std::cerr << argv[i] << ": " << ec.message() << "\n";
      return 1;
    }
    std::sort(files.begin(), files.end());  // a stable order makes a failure reproducible
    for (const std::filesystem::path& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        std::cerr << file << ": cannot read\n";
        return 1;
      }
      std::cerr << "running " << file.string() << " (" << bytes.size() << " bytes)\n";
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++runs;
    }
  }
  std::cout << "ran " << runs << " inputs without a crash\n";
  return runs == 0 ? 1 : 0;
}
