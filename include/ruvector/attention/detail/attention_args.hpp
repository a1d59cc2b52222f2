#pragma once
/// \file detail/attention_args.hpp
/// \brief Shared validation of the tensor-API attention arguments (`sdpa`, `flash_attention`):
/// shapes, GQA head grouping, strides, masks and biases, and the lazy non-finite diagnosis.

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"

namespace ruvector::attention::detail {

// Names the first non-finite element of a rank-4 view and throws; returns if there is none.
template <class T>
void find_non_finite_4d(const char* what, const tensor_view<const T, 4>& t) {
  for (std::size_t a = 0; a < t.extent(0); ++a)
    for (std::size_t b = 0; b < t.extent(1); ++b)
      for (std::size_t c = 0; c < t.extent(2); ++c) {
        const T* row = t.row(a, b, c);
        for (std::size_t e = 0; e < t.extent(3); ++e) {
          if (!std::isfinite(row[e])) {
            std::ostringstream os;
            os << "non-finite input: " << what << "[" << a << "][" << b << "][" << c << "][" << e
               << "] = " << row[e];
            throw non_finite_input(os.str());
          }
        }
      }
}

template <class T>
[[noreturn]] void throw_non_finite_scores(const tensor_view<const T, 4>& q,
                                          const tensor_view<const T, 4>& k,
                                          const tensor_view<const T, 4>& v) {
  find_non_finite_4d("q", q);
  find_non_finite_4d("k", k);
  find_non_finite_4d("v", v);
  throw non_finite_input(
      "non-finite input: an attention score or output overflowed although q, k and v are finite "
      "(reduce the input magnitude or the scale)");
}

inline void require_unit_inner_stride(const char* what, std::ptrdiff_t stride) {
  if (stride != 1) {
    throw invalid_argument(std::string("invalid argument: ") + what +
                           " must have unit stride in its last dimension");
  }
}

/// Names the first NaN/Inf of a single-query call's query, keys or values and throws; if all are
/// finite the scores overflowed, which is reported as such.
template <class T>
[[noreturn]] void diagnose_vector_inputs(std::span<const T> query, const matrix_cref<T>& keys,
                                         const matrix_cref<T>& values) {
  require_finite<T>("query", query);
  require_finite("keys", keys.data(), static_cast<std::size_t>(keys.rows()),
                 static_cast<std::size_t>(keys.cols()), keys.outerStride());
  require_finite("values", values.data(), static_cast<std::size_t>(values.rows()),
                 static_cast<std::size_t>(values.cols()), values.outerStride());
  throw non_finite_input(
      "non-finite input: an attention score or output overflowed although query, keys and "
      "values are finite (reduce the input magnitude or the scale)");
}

/// Extents of a validated attention call.
struct attention_shape {
  std::size_t B, H, Hkv, Lq, Lk, d, dv;
};

/// Validates `q [B,H,Lq,d]`, `k [B,Hkv,Lk,d]`, `v [B,Hkv,Lk,dv]`, `out [B,H,Lq,dv]`, the mask and
/// the optional weights/lse outputs; throws an `error` subclass naming the argument.
template <class T>
attention_shape validate_attention_args(const tensor_view<const T, 4>& q,
                                        const tensor_view<const T, 4>& k,
                                        const tensor_view<const T, 4>& v,
                                        const tensor_view<T, 4>& out, const mask_spec<T>& mask,
                                        bool check_finite, const tensor_view<T, 4>& weights,
                                        const tensor_view<T, 3>& lse) {
  const std::size_t B = q.extent(0), H = q.extent(1), Lq = q.extent(2), d = q.extent(3);
  const std::size_t Hkv = k.extent(1), Lk = k.extent(2), dv = v.extent(3);
  require_dimension("k.extent(0) (batch)", k.extent(0), B);
  require_dimension("v.extent(0) (batch)", v.extent(0), B);
  require_dimension("k.extent(3) (key dim)", k.extent(3), d);
  require_dimension("v.extent(1) (kv heads)", v.extent(1), Hkv);
  require_dimension("v.extent(2) (values count, must equal keys count)", v.extent(2), Lk);
  require_dimension("out.extent(0) (batch)", out.extent(0), B);
  require_dimension("out.extent(1) (heads)", out.extent(1), H);
  require_dimension("out.extent(2) (queries)", out.extent(2), Lq);
  require_dimension("out.extent(3) (value dim)", out.extent(3), dv);
  if (Hkv == 0 || H % Hkv != 0) {
    std::ostringstream os;
    os << "dimension mismatch: k.extent(1) (kv heads) is " << Hkv
       << ", expected a divisor of the query heads " << H;
    throw dimension_mismatch(os.str());
  }
  require_at_most("k.extent(2) (keys)", Lk, max_sequence_length);
  require_at_most("q.extent(2) (queries)", Lq, max_sequence_length);
  require_at_most("q.extent(3) (head dim)", d, max_dimension);
  require_non_empty("q.extent(3) (head dim)", d);
  require_unit_inner_stride("q", q.stride(3));
  require_unit_inner_stride("k", k.stride(3));
  require_unit_inner_stride("v", v.stride(3));
  require_unit_inner_stride("out", out.stride(3));
  if (!mask.key_mask.absent()) {
    require_dimension("mask.key_mask.extent(0) (batch)", mask.key_mask.extent(0), B);
    require_dimension("mask.key_mask.extent(1) (keys)", mask.key_mask.extent(1), Lk);
  }
  if (!mask.bias.absent()) {
    const auto& bias = mask.bias;
    if (bias.extent(0) != B && bias.extent(0) != 1)
      require_dimension("mask.bias.extent(0) (batch or 1)", bias.extent(0), B);
    if (bias.extent(1) != H && bias.extent(1) != 1)
      require_dimension("mask.bias.extent(1) (heads or 1)", bias.extent(1), H);
    require_dimension("mask.bias.extent(2) (queries)", bias.extent(2), Lq);
    require_dimension("mask.bias.extent(3) (keys)", bias.extent(3), Lk);
    if (check_finite) {
      for (std::size_t a = 0; a < bias.extent(0); ++a)
        for (std::size_t h = 0; h < bias.extent(1); ++h)
          for (std::size_t i = 0; i < Lq; ++i)
            for (std::size_t j = 0; j < Lk; ++j) {
              const T x = bias(a, h, i, j);
              if (std::isnan(x) || x == std::numeric_limits<T>::infinity()) {
                std::ostringstream os;
                os << "non-finite input: mask.bias[" << a << "][" << h << "][" << i << "][" << j
                   << "] = " << x << " (only -inf is allowed, as a mask)";
                throw non_finite_input(os.str());
              }
            }
    }
  }
  if (!weights.absent()) {
    require_dimension("extras.weights.extent(0)", weights.extent(0), B);
    require_dimension("extras.weights.extent(1)", weights.extent(1), H);
    require_dimension("extras.weights.extent(2)", weights.extent(2), Lq);
    require_dimension("extras.weights.extent(3)", weights.extent(3), Lk);
  }
  if (!lse.absent()) {
    require_dimension("extras.lse.extent(0)", lse.extent(0), B);
    require_dimension("extras.lse.extent(1)", lse.extent(1), H);
    require_dimension("extras.lse.extent(2)", lse.extent(2), Lq);
  }

  return {B, H, Hkv, Lq, Lk, d, dv};
}

}  // namespace ruvector::attention::detail
