#pragma once
/// \file kernels/gemv.hpp
/// \brief Matrix-vector kernels for one query against a row-major key/value matrix.
///
/// - `row_dots`:          s_j = alpha · (q · k_j)            (scores; K·q)
/// - `weighted_row_sum`:  o   = beta · o + Σ_j w_j · v_j     (the softmax-weighted value sum; Vᵀw)
///
/// `row_dots` streams 8 key rows per step so each loaded query batch feeds 8 independent FMA
/// chains; `weighted_row_sum` keeps a tile of 8 output batches in registers across all rows, so the
/// output is read and written once instead of once per key (the naive axpy loop).

#include <cstddef>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief out[j] = alpha · Σ_c q[c]·K[j·ldk + c] for j < n (K has n rows of d values, ldk apart).
template <class T, class Arch = default_arch>
void row_dots(const T* k, std::size_t n, std::size_t d, std::size_t ldk, const T* q, T alpha,
              T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t R = 8;  // rows per step
  const std::size_t dv = d - d % W;
  std::size_t j = 0;
  for (; j + R <= n; j += R) {
    const T* rows[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) rows[r] = k + (j + r) * ldk;
    B acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = B(T(0));
    for (std::size_t c = 0; c < dv; c += W) {
      const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r)
        acc[r] = xsimd::fma(qb, B::load_unaligned(rows[r] + c), acc[r]);
    }
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      T s = detail::hsum(acc[r]);
      for (std::size_t c = dv; c < d; ++c) s += q[c] * rows[r][c];
      out[j + r] = alpha * s;
    }
  }
  for (; j < n; ++j) out[j] = alpha * dot<T, Arch>(q, k + j * ldk, d);
}

namespace detail {

/// Columns [c, c + K·W) of weighted_row_sum with K output batches held in registers.
template <std::size_t K, class T, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void weighted_row_sum_tile(const T* w, std::size_t n, const T* v,
                                                            std::size_t ldv, T beta,
                                                            T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  B acc[K];
#pragma GCC unroll 8
  for (std::size_t t = 0; t < K; ++t) {
    acc[t] = beta == T(0) ? B(T(0)) : B(beta) * B::load_unaligned(out + t * W);
  }
  for (std::size_t j = 0; j < n; ++j) {
    const B wj(w[j]);
    const T* row = v + j * ldv;
#pragma GCC unroll 8
    for (std::size_t t = 0; t < K; ++t)
      acc[t] = xsimd::fma(wj, B::load_unaligned(row + t * W), acc[t]);
  }
#pragma GCC unroll 8
  for (std::size_t t = 0; t < K; ++t) acc[t].store_unaligned(out + t * W);
}

}  // namespace detail

/// \brief out[c] = beta·out[c] + Σ_{j<n} w[j]·V[j·ldv + c] for c < dv. With beta = 0 the previous
/// contents of `out` are ignored (even NaN).
template <class T, class Arch = default_arch>
void weighted_row_sum(const T* w, std::size_t n, const T* v, std::size_t dv, std::size_t ldv,
                      T beta, T* out) noexcept {
  constexpr std::size_t W = batch<T, Arch>::size;
  std::size_t c = 0;
  for (; c + 8 * W <= dv; c += 8 * W)
    detail::weighted_row_sum_tile<8, T, Arch>(w, n, v + c, ldv, beta, out + c);
  if (c + 4 * W <= dv) {
    detail::weighted_row_sum_tile<4, T, Arch>(w, n, v + c, ldv, beta, out + c);
    c += 4 * W;
  }
  if (c + 2 * W <= dv) {
    detail::weighted_row_sum_tile<2, T, Arch>(w, n, v + c, ldv, beta, out + c);
    c += 2 * W;
  }
  if (c + W <= dv) {
    detail::weighted_row_sum_tile<1, T, Arch>(w, n, v + c, ldv, beta, out + c);
    c += W;
  }
  for (; c < dv; ++c) {
    T acc = beta == T(0) ? T(0) : beta * out[c];
    for (std::size_t j = 0; j < n; ++j) acc += w[j] * v[j * ldv + c];
    out[c] = acc;
  }
}

}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
