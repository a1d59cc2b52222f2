#pragma once
/// \file core/validate.hpp
/// \brief Validation helpers used at the public surface. Each throws a subclass of `error` whose
/// message names the argument, the index and the expected value.

#include <cmath>
#include <cstddef>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"

namespace ruvector::attention {

/// \brief Throws `dimension_mismatch` unless `actual == expected`.
inline void require_dimension(std::string_view what, std::size_t actual, std::size_t expected) {
  if (actual != expected) {
    std::ostringstream os;
    os << "dimension mismatch: " << what << " is " << actual << ", expected " << expected;
    throw dimension_mismatch(os.str());
  }
}

/// \brief Throws `invalid_argument` when `size == 0`.
inline void require_non_empty(std::string_view what, std::size_t size) {
  if (size == 0) {
    std::ostringstream os;
    os << "invalid argument: " << what << " is empty";
    throw invalid_argument(os.str());
  }
}

/// \brief Throws `input_too_large` when `size > limit`.
inline void require_at_most(std::string_view what, std::size_t size, std::size_t limit) {
  if (size > limit) {
    std::ostringstream os;
    os << "input too large: " << what << " is " << size << ", the limit is " << limit;
    throw input_too_large(os.str());
  }
}

/// \brief Throws `invalid_config` unless `condition` holds; `message` says what was expected.
inline void require_config(bool condition, std::string_view message) {
  if (!condition) throw invalid_config("invalid config: " + std::string(message));
}

/// \brief Throws `invalid_argument` unless `condition` holds.
inline void require_argument(bool condition, std::string_view message) {
  if (!condition) throw invalid_argument("invalid argument: " + std::string(message));
}

namespace detail {

/// Throws `non_finite_input` naming `what[index]` and the value.
template <class T>
[[noreturn]] void throw_non_finite(std::string_view what, std::size_t index, T value) {
  std::ostringstream os;
  os << "non-finite input: " << what << "[" << index << "] = " << value;
  throw non_finite_input(os.str());
}

/// Throws `non_finite_input` naming `what[row][col]` and the value.
template <class T>
[[noreturn]] void throw_non_finite(std::string_view what, std::size_t row, std::size_t col,
                                   T value) {
  std::ostringstream os;
  os << "non-finite input: " << what << "[" << row << "][" << col << "] = " << value;
  throw non_finite_input(os.str());
}

}  // namespace detail

/// \brief Throws `non_finite_input` naming the first NaN/Inf element of `values`.
template <class T>
void require_finite(std::string_view what, std::span<const T> values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) detail::throw_non_finite(what, i, values[i]);
  }
}

/// \brief Throws `non_finite_input` naming the first NaN/Inf of a row-strided matrix.
template <class T>
void require_finite(std::string_view what, const T* data, std::size_t rows, std::size_t cols,
                    std::ptrdiff_t row_stride) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = data + static_cast<std::ptrdiff_t>(r) * row_stride;
    for (std::size_t c = 0; c < cols; ++c) {
      if (!std::isfinite(row[c])) detail::throw_non_finite(what, r, c, row[c]);
    }
  }
}

}  // namespace ruvector::attention
