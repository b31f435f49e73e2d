// containerd's filter language (github.com/containerd/containerd/filters),
// used by List/Walk: selectors over field paths joined by ',' (AND); several
// filter strings are ORed.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ndocker {

// Answers the value of a field path such as {"labels", "containerd.io/gc.root"}
// or {"kind"}; nullopt when the field is absent.
using FieldLookup =
    std::function<std::optional<std::string>(const std::vector<std::string>& fieldpath)>;

class Filter {
 public:
  // Parses filter strings exactly as containerd's filters.ParseAll does.
  // No strings, or only empty strings, match everything. Syntax errors give
  // InvalidArgument with the position of the error.
  static absl::StatusOr<Filter> ParseAll(const std::vector<std::string>& filters);

  bool Match(const FieldLookup& lookup) const;

  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;
  ~Filter();

  struct Node;  // implementation detail

 private:
  explicit Filter(std::shared_ptr<const Node> root);
  std::shared_ptr<const Node> root_;
};

}  // namespace ndocker
