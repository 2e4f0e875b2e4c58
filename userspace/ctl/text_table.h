// SPDX-License-Identifier: Apache-2.0
// Column-aligned plain text in the style of `kubectl get` and `cilium service list`: an upper-case
// header row, columns separated by at least two spaces, no borders, so the output stays greppable
// and pastes cleanly into an issue.
#ifndef SOCKMESH_USERSPACE_CTL_TEXT_TABLE_H_
#define SOCKMESH_USERSPACE_CTL_TEXT_TABLE_H_

#include <string>
#include <vector>

namespace sockmesh::ctl {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);

  // A row with fewer cells than the header is padded with empty cells.
  void AddRow(std::vector<std::string> cells);
  // A row that ends in free text: `cells` are aligned as usual, `trailing` starts in the next
  // column and may run past it without widening it (a remark in place of the last columns).
  void AddRow(std::vector<std::string> cells, std::string trailing);
  // A line printed as is after the rows added so far (a note about the row above); it does not
  // take part in the column widths.
  void AddNote(std::string line);

  // Every line ends with '\n'; trailing spaces are trimmed.
  std::string Render() const;

 private:
  struct Line {
    std::vector<std::string> cells;
    std::string trailing;  // after the cells, not measured
    std::string note;      // set instead of cells for a note
  };
  std::vector<std::string> header_;
  std::vector<Line> lines_;
};

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_TEXT_TABLE_H_
