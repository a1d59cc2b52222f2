#pragma once
/// \file kernels/reduce.hpp
/// \brief Level-1 kernels: dot, sum, max, axpy, scale.
///
/// Every reduction keeps four independent accumulators over `4 * W` elements per step (W = SIMD
/// width) so consecutive FMAs do not wait on each other's latency, then one batch per step, then a
/// scalar tail. Pointers need no particular alignment. All kernels are `noexcept` and do no
/// validation; a length of 0 is valid (dot/sum give 0, max gives -inf).

#include <cstddef>
#include <limits>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief Σ a[i]·b[i].
template <class T, class Arch = default_arch>
[[nodiscard]] T dot(const T* a, const T* b, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T result = T(0);
  if (n >= W) {
    B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
      acc1 = xsimd::fma(B::load_unaligned(a + i + W), B::load_unaligned(b + i + W), acc1);
      acc2 = xsimd::fma(B::load_unaligned(a + i + 2 * W), B::load_unaligned(b + i + 2 * W), acc2);
      acc3 = xsimd::fma(B::load_unaligned(a + i + 3 * W), B::load_unaligned(b + i + 3 * W), acc3);
    }
    for (; i + W <= n; i += W) {
      acc0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
    }
    result = detail::hsum((acc0 + acc1) + (acc2 + acc3));
  }
  for (; i < n; ++i) result += a[i] * b[i];
  return result;
}

/// \brief Σ x[i].
template <class T, class Arch = default_arch>
[[nodiscard]] T sum(const T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  T result = T(0);
  if (n >= W) {
    B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 += B::load_unaligned(x + i);
      acc1 += B::load_unaligned(x + i + W);
      acc2 += B::load_unaligned(x + i + 2 * W);
      acc3 += B::load_unaligned(x + i + 3 * W);
    }
    for (; i + W <= n; i += W) acc0 += B::load_unaligned(x + i);
    result = detail::hsum((acc0 + acc1) + (acc2 + acc3));
  }
  for (; i < n; ++i) result += x[i];
  return result;
}

/// \brief max_i x[i]; -inf for n = 0. NaN handling is unspecified (validate inputs first).
template <class T, class Arch = default_arch>
[[nodiscard]] T max(const T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr T lowest = -std::numeric_limits<T>::infinity();
  std::size_t i = 0;
  T result = lowest;
  if (n >= W) {
    B acc0(lowest), acc1(lowest), acc2(lowest), acc3(lowest);
    for (; i + 4 * W <= n; i += 4 * W) {
      acc0 = xsimd::max(acc0, B::load_unaligned(x + i));
      acc1 = xsimd::max(acc1, B::load_unaligned(x + i + W));
      acc2 = xsimd::max(acc2, B::load_unaligned(x + i + 2 * W));
      acc3 = xsimd::max(acc3, B::load_unaligned(x + i + 3 * W));
    }
    for (; i + W <= n; i += W) acc0 = xsimd::max(acc0, B::load_unaligned(x + i));
    result = detail::hmax(xsimd::max(xsimd::max(acc0, acc1), xsimd::max(acc2, acc3)));
  }
  for (; i < n; ++i) result = x[i] > result ? x[i] : result;
  return result;
}

/// \brief y[i] += alpha·x[i].
template <class T, class Arch = default_arch>
void axpy(T alpha, const T* x, T* y, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B a(alpha);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B y0 = xsimd::fma(a, B::load_unaligned(x + i), B::load_unaligned(y + i));
    const B y1 = xsimd::fma(a, B::load_unaligned(x + i + W), B::load_unaligned(y + i + W));
    const B y2 = xsimd::fma(a, B::load_unaligned(x + i + 2 * W), B::load_unaligned(y + i + 2 * W));
    const B y3 = xsimd::fma(a, B::load_unaligned(x + i + 3 * W), B::load_unaligned(y + i + 3 * W));
    y0.store_unaligned(y + i);
    y1.store_unaligned(y + i + W);
    y2.store_unaligned(y + i + 2 * W);
    y3.store_unaligned(y + i + 3 * W);
  }
  for (; i + W <= n; i += W) {
    xsimd::fma(a, B::load_unaligned(x + i), B::load_unaligned(y + i)).store_unaligned(y + i);
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

/// \brief x[i] *= alpha.
template <class T, class Arch = default_arch>
void scale(T alpha, T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B a(alpha);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    (a * B::load_unaligned(x + i)).store_unaligned(x + i);
    (a * B::load_unaligned(x + i + W)).store_unaligned(x + i + W);
    (a * B::load_unaligned(x + i + 2 * W)).store_unaligned(x + i + 2 * W);
    (a * B::load_unaligned(x + i + 3 * W)).store_unaligned(x + i + 3 * W);
  }
  for (; i + W <= n; i += W) (a * B::load_unaligned(x + i)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= alpha;
}

}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
