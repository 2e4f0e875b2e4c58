// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/text_table.h"

#include <algorithm>
#include <utility>

namespace sockmesh::ctl {
namespace {

constexpr size_t kGap = 2;

}  // namespace

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), header_.size()));
  lines_.push_back(Line{.cells = std::move(cells), .trailing = {}, .note = {}});
}

void TextTable::AddRow(std::vector<std::string> cells, std::string trailing) {
  lines_.push_back(Line{.cells = std::move(cells), .trailing = std::move(trailing), .note = {}});
}

void TextTable::AddNote(std::string line) {
  lines_.push_back(Line{.cells = {}, .trailing = {}, .note = std::move(line)});
}

std::string TextTable::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& cells) {
    if (widths.size() < cells.size()) widths.resize(cells.size(), 0);
    for (size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], cells[i].size());
  };
  measure(header_);
  for (const Line& line : lines_) measure(line.cells);

  std::string out;
  auto emit = [&](const std::vector<std::string>& cells, const std::string& trailing) {
    std::string text;
    for (size_t i = 0; i < cells.size(); ++i) {
      text += cells[i];
      if (i + 1 < cells.size() || !trailing.empty()) {
        text.append(widths[i] - cells[i].size() + kGap, ' ');
      }
    }
    text += trailing;
    // Empty trailing cells leave padding behind.
    text.erase(text.find_last_not_of(' ') + 1);
    out += text;
    out += '\n';
  };
  emit(header_, {});
  for (const Line& line : lines_) {
    if (!line.note.empty() || line.cells.empty()) {
      out += line.note;
      out += '\n';
    } else {
      emit(line.cells, line.trailing);
    }
  }
  return out;
}

}  // namespace sockmesh::ctl
