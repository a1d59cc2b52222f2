#pragma once
/// \file kernels/gemv.hpp
/// \brief Matrix-vector kernels for one query against a row-major key/value matrix.
///
/// - `row_dots`:          s_j = alpha · (q · k_j)            (scores; K·q)
/// - `weighted_row_sum`:  o   = beta · o + Σ_j w_j · v_j     (the softmax-weighted value sum; Vᵀw)
/// - `row_squared_distances`: s_j = ‖q − k_j‖² (and optionally ‖k_j‖²), for distance-based scores
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

/// \brief out[j] = ‖q − k_j‖² for j < n, and, when `norms` is not null, norms[j] = ‖k_j‖² from
/// the same pass over the key rows (K has n rows of d values, ldk apart).
///
/// The difference is formed before squaring, so close points keep full relative accuracy (the
/// expansion ‖q‖² + ‖k‖² − 2q·k cancels catastrophically there). Four key rows per step, each with
/// its own accumulators, so every loaded query batch feeds four independent FMA chains.
template <class T, class Arch = default_arch>
void row_squared_distances(const T* k, std::size_t n, std::size_t d, std::size_t ldk, const T* q,
                           T* out, T* norms = nullptr) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t R = 4;  // rows per step
  const std::size_t dv = d - d % W;
  std::size_t j = 0;
  for (; j + R <= n; j += R) {
    const T* rows[R];
    B dist[R];
    B norm[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) {
      rows[r] = k + (j + r) * ldk;
      dist[r] = B(T(0));
      norm[r] = B(T(0));
    }
    for (std::size_t c = 0; c < dv; c += W) {
      const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const B kb = B::load_unaligned(rows[r] + c);
        const B diff = qb - kb;
        dist[r] = xsimd::fma(diff, diff, dist[r]);
        norm[r] = xsimd::fma(kb, kb, norm[r]);
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) {
      T s = detail::hsum(dist[r]);
      T m = detail::hsum(norm[r]);
      for (std::size_t c = dv; c < d; ++c) {
        const T diff = q[c] - rows[r][c];
        s += diff * diff;
        m += rows[r][c] * rows[r][c];
      }
      out[j + r] = s;
      if (norms != nullptr) norms[j + r] = m;
    }
  }
  for (; j < n; ++j) {
    const T* row = k + j * ldk;
    B dist(T(0));
    B norm(T(0));
    for (std::size_t c = 0; c < dv; c += W) {
      const B kb = B::load_unaligned(row + c);
      const B diff = B::load_unaligned(q + c) - kb;
      dist = xsimd::fma(diff, diff, dist);
      norm = xsimd::fma(kb, kb, norm);
    }
    T s = detail::hsum(dist);
    T m = detail::hsum(norm);
    for (std::size_t c = dv; c < d; ++c) {
      const T diff = q[c] - row[c];
      s += diff * diff;
      m += row[c] * row[c];
    }
    out[j] = s;
    if (norms != nullptr) norms[j] = m;
  }
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
