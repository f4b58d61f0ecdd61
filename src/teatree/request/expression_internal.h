#pragma once

#include <string_view>

#include "teatree/common/status.h"
#include "teatree/request/expression.h"

namespace teatree::request_internal {

/// A function expressions may call. `max_args` < 0: no upper bound.
struct FunctionInfo {
  std::string_view name;
  int min_args;
  int max_args;
};

/// The function called `name` (aliases resolve to their canonical entry), or nullptr.
const FunctionInfo* FindFunction(std::string_view name);

/// Checks that a kCall names a known function with an allowed number of arguments.
Status CheckCall(const Expression& call);

}  // namespace teatree::request_internal
