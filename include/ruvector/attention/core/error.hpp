#pragma once
/// \file core/error.hpp
/// \brief The exception hierarchy thrown by every validated public entry point.
///
/// All errors derive from `ruvector::attention::error` (itself a `std::runtime_error`), so callers
/// can catch one type. Messages name the argument, the offending index and the expected value.

#include <stdexcept>
#include <string>

namespace ruvector::attention {

/// \brief Base class of every exception the library throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// \brief Two sizes that must agree do not (e.g. query length vs key width).
class dimension_mismatch : public error {
 public:
  using error::error;
};

/// \brief An argument is outside its documented domain (empty input, zero heads, ...).
class invalid_argument : public error {
 public:
  using error::error;
};

/// \brief An input holds NaN or ±Inf where finite values are required.
class non_finite_input : public error {
 public:
  using error::error;
};

/// \brief An input exceeds a documented size limit.
class input_too_large : public error {
 public:
  using error::error;
};

/// \brief A configuration is inconsistent (e.g. heads do not divide the model dimension).
class invalid_config : public error {
 public:
  using error::error;
};

/// \brief Reading or writing a file or a serialised configuration failed.
class io_error : public error {
 public:
  using error::error;
};

}  // namespace ruvector::attention
