#pragma once

// Assertions on Status and Result for the control module's tests.
#include <gtest/gtest.h>

#include <utility>

#include "teatree/common/status.h"

#define TEATREE_CONCAT_INNER(a, b) a##b
#define TEATREE_CONCAT(a, b) TEATREE_CONCAT_INNER(a, b)

/// Fails the test, printing the status, unless `expr` (a Status) is OK.
#define ASSERT_OK(expr)                                       \
  do {                                                        \
    const ::teatree::Status _st = (expr);                     \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << _st.ToString(); \
  } while (false)

#define EXPECT_OK(expr)                                       \
  do {                                                        \
    const ::teatree::Status _st = (expr);                     \
    EXPECT_TRUE(_st.ok()) << #expr << ": " << _st.ToString(); \
  } while (false)

// `lhs` may be a declaration ("auto x") and `result` a generated name, so neither can be
// parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSERT_OK_AND_ASSIGN_IMPL(result, lhs, rexpr)                       \
  auto result = (rexpr);                                                    \
  ASSERT_TRUE(result.ok()) << #rexpr << ": " << result.status().ToString(); \
  lhs = std::move(result).ValueUnsafe()
// NOLINTEND(bugprone-macro-parentheses)

/// `lhs = *rexpr`, failing the test if `rexpr` (a Result) holds an error.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL(TEATREE_CONCAT(_result_, __COUNTER__), lhs, rexpr)
