#pragma once
/// \file transport/detail/sw_kernels.hpp
/// \brief Unvalidated kernels behind transport/sliced_wasserstein.hpp: projection of a point set
/// onto P directions followed by a per-direction sort, and the 1-D p-Wasserstein cost between two
/// sorted empirical measures with uniform weights.
///
/// 1-D optimal transport (Villani 2003, Thm 2.18; Rabin et al. 2011): for μ = (1/n)Σδ_{x_i} and
/// ν = (1/m)Σδ_{y_j} on ℝ,
///
///     W_p^p(μ, ν) = ∫_0^1 |F_μ^{-1}(t) − F_ν^{-1}(t)|^p dt,
///
/// and the quantile functions are step functions: F_μ^{-1}(t) = x_(i) on ((i)/n, (i+1)/n]. The
/// integral is therefore a merge over the union of the breakpoints {i/n} ∪ {j/m}. The kernels keep
/// the breakpoints as integers in units of 1/(n·m) — i/n = i·m/(nm), j/m = j·n/(nm) — so every
/// segment length is an exact integer and no breakpoint is ever rounded. For n = m every segment
/// has length 1/n and the cost is (1/n)·Σ_i |x_(i) − y_(i)|^p (sorted matching), which is the
/// vectorised path.
///
/// All kernels are `noexcept`, do no validation and return **sums** (the caller divides by the
/// number of segments); accumulation is in T. |d|^p uses |d| for p = 1, d·d for p = 2 and
/// std::pow(|d|, p) otherwise (std::pow(0, p) = 0 for p > 0).

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::detail::sw {

/// Which closed form |d|^p takes.
enum class power_kind { one, two, general };

/// Classifies an exponent p (≥ 1): exactly 1 and exactly 2 get dedicated code paths.
[[nodiscard]] inline power_kind classify_power(double p) noexcept {
  if (p == 1.0) return power_kind::one;
  if (p == 2.0) return power_kind::two;
  return power_kind::general;
}

/// |d|^p for the given kind (p is only read for `general`).
template <class T>
[[nodiscard]] RUVECTOR_ATTENTION_ALWAYS_INLINE T abs_pow(T d, power_kind kind, T p) noexcept {
  switch (kind) {
    case power_kind::one:
      return std::abs(d);
    case power_kind::two:
      return d * d;
    default:
      return std::pow(std::abs(d), p);
  }
}

/// Σ_{i<n} |a_i − b_i|^p for the fixed kinds one/two, four SIMD accumulators (see kernels/reduce).
template <power_kind Kind, class T, class Arch = kernels::default_arch>
[[nodiscard]] T sum_abs_diff_pow_fixed(const T* a, const T* b, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const auto f = [](const B& d) {
    if constexpr (Kind == power_kind::one) {
      return xsimd::abs(d);
    } else {
      return d * d;
    }
  };
  std::size_t i = 0;
  T result(0);
  if (n >= W) {
    B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 += f(B::load_unaligned(a + i) - B::load_unaligned(b + i));
      acc1 += f(B::load_unaligned(a + i + W) - B::load_unaligned(b + i + W));
      acc2 += f(B::load_unaligned(a + i + 2 * W) - B::load_unaligned(b + i + 2 * W));
      acc3 += f(B::load_unaligned(a + i + 3 * W) - B::load_unaligned(b + i + 3 * W));
    }
    for (; i + W <= n; i += W) acc0 += f(B::load_unaligned(a + i) - B::load_unaligned(b + i));
    result = kernels::detail::hsum((acc0 + acc1) + (acc2 + acc3));
  }
  for (; i < n; ++i) {
    const T d = a[i] - b[i];
    result += Kind == power_kind::one ? std::abs(d) : d * d;
  }
  return result;
}

/// Σ_{i<n} |a_i − b_i|^p: the sorted-matching cost of two equal-size sorted runs (times n).
template <class T>
[[nodiscard]] T sum_abs_diff_pow(const T* a, const T* b, std::size_t n, power_kind kind,
                                 T p) noexcept {
  switch (kind) {
    case power_kind::one:
      return sum_abs_diff_pow_fixed<power_kind::one>(a, b, n);
    case power_kind::two:
      return sum_abs_diff_pow_fixed<power_kind::two>(a, b, n);
    default: {
      T s(0);
      for (std::size_t i = 0; i < n; ++i) s += std::pow(std::abs(a[i] - b[i]), p);
      return s;
    }
  }
}

/// (n·m)·W_p^p between the uniform measures on the sorted runs a (n values) and b (m values):
/// Σ over the merged quantile segments of (segment length in units of 1/(nm))·|a_i − b_j|^p.
/// n, m ≥ 1.
template <class T>
[[nodiscard]] T merge_abs_diff_pow(const T* a, std::size_t n, const T* b, std::size_t m,
                                   power_kind kind, T p) noexcept {
  std::size_t i = 0, j = 0, t = 0;
  std::size_t next_a = m, next_b = n;  // (i + 1)·m and (j + 1)·n
  T s(0);
  while (i < n && j < m) {
    const std::size_t next = std::min(next_a, next_b);
    s += static_cast<T>(next - t) * abs_pow(a[i] - b[j], kind, p);
    t = next;
    if (next_a == next) ++i, next_a += m;
    if (next_b == next) ++j, next_b += n;
  }
  return s;
}

/// In-place ascending sort; insertion sort for short runs (the common multi-vector case).
template <class T>
void sort_run(T* x, std::size_t n) noexcept {
  if (n <= 16) {
    for (std::size_t i = 1; i < n; ++i) {
      const T v = x[i];
      std::size_t k = i;
      for (; k > 0 && x[k - 1] > v; --k) x[k] = x[k - 1];
      x[k] = v;
    }
  } else {
    std::sort(x, x + n);
  }
}

/// Projects the n rows of `rows` (ld apart, d wide) onto the P unit directions `dirs` (P × d,
/// contiguous) and writes them direction-major and sorted: out[l·n + (rank)] = the rank-th smallest
/// ⟨x_i, θ_l⟩. `tmp` holds P values. Every caller projects through this one routine, so a set
/// projected as a query and as a key gives bit-identical values.
template <class T>
void project_sorted(const T* rows, std::size_t n, std::size_t ld, const T* dirs, std::size_t P,
                    std::size_t d, T* out, T* tmp) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    kernels::row_dots(dirs, P, d, d, rows + i * ld, T(1), tmp);
    for (std::size_t l = 0; l < P; ++l) out[l * n + i] = tmp[l];
  }
  for (std::size_t l = 0; l < P; ++l) sort_run(out + l * n, n);
}

/// SW_p^p from two direction-major sorted projection blocks (P × nx and P × ny):
/// (1/P)·Σ_l W_p^p(x_l, y_l). Equal sizes: one contiguous SIMD pass over P·n values.
template <class T>
[[nodiscard]] T sliced_cost(const T* xs, std::size_t nx, const T* ys, std::size_t ny, std::size_t P,
                            power_kind kind, T p) noexcept {
  if (nx == ny) {
    return sum_abs_diff_pow(xs, ys, P * nx, kind, p) / static_cast<T>(P * nx);
  }
  T s(0);
  for (std::size_t l = 0; l < P; ++l)
    s += merge_abs_diff_pow(xs + l * nx, nx, ys + l * ny, ny, kind, p);
  return s / (static_cast<T>(P) * static_cast<T>(nx * ny));
}

}  // namespace ruvector::attention::detail::sw

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
