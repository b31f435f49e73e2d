#pragma once

#include "absl/status/status.h"

#define NDOCKER_CONCAT_INNER(a, b) a##b
#define NDOCKER_CONCAT(a, b) NDOCKER_CONCAT_INNER(a, b)

// Returns the status of `expr` from the enclosing function when it is not OK.
// The variable name is unique so nested uses (inside lambdas) do not shadow.
#define NDOCKER_RETURN_IF_ERROR(expr) \
  NDOCKER_RETURN_IF_ERROR_IMPL(NDOCKER_CONCAT(ndocker_status_, __COUNTER__), expr)
#define NDOCKER_RETURN_IF_ERROR_IMPL(var, expr)     \
  do {                                              \
    if (::absl::Status var = (expr); !var.ok()) return var; \
  } while (0)
