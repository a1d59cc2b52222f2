#pragma once
/// \file kernels/softmax.hpp
/// \brief Vectorised exp, max-subtracted softmax, log-sum-exp and the online-softmax state.
///
/// softmax(x)_i = exp(x_i − m) / Σ_j exp(x_j − m) with m = max_j x_j, and
/// logsumexp(x) = m + log Σ_j exp(x_j − m), so no exponent overflows whatever the magnitude of x.
/// Masked entries are −inf; a vector whose entries are all −inf (or that is empty) has
/// softmax = all zeros and logsumexp = −inf (never NaN).
///
/// The online state (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022) keeps
/// (m, l, acc) = (running max, Σ e^{s_j − m}, Σ e^{s_j − m}·v_j) over the keys seen so far. Two
/// states over disjoint key sets merge exactly:
///   m = max(m_a, m_b),  l = e^{m_a − m}·l_a + e^{m_b − m}·l_b,  acc = e^{m_a − m}·acc_a + e^{m_b −
///   m}·acc_b,
/// which is associative and commutative (up to rounding), so keys may be split across threads,
/// blocks or machines and merged in any order.

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief x[i] = exp(x[i]) (vectorised; the tail is padded so every element uses the same code).
template <class T, class Arch = default_arch>
void exp_inplace(T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) xsimd::exp(B::load_unaligned(x + i)).store_unaligned(x + i);
  if (i < n) {
    detail::store_partial(xsimd::exp(detail::load_partial<T, Arch>(x + i, n - i, T(0))), x + i,
                          n - i);
  }
}

/// \brief x[i] = exp(x[i] − shift); returns Σ_i of the new x[i]. `shift` must be finite.
template <class T, class Arch = default_arch>
T exp_shift_sum(T* x, std::size_t n, T shift) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B s(shift);
  B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B e0 = xsimd::exp(B::load_unaligned(x + i) - s);
    const B e1 = xsimd::exp(B::load_unaligned(x + i + W) - s);
    const B e2 = xsimd::exp(B::load_unaligned(x + i + 2 * W) - s);
    const B e3 = xsimd::exp(B::load_unaligned(x + i + 3 * W) - s);
    e0.store_unaligned(x + i);
    e1.store_unaligned(x + i + W);
    e2.store_unaligned(x + i + 2 * W);
    e3.store_unaligned(x + i + 3 * W);
    acc0 += e0;
    acc1 += e1;
    acc2 += e2;
    acc3 += e3;
  }
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp(B::load_unaligned(x + i) - s);
    e.store_unaligned(x + i);
    acc0 += e;
  }
  if (i < n) {
    // Padding lanes hold −inf so they contribute exp(−inf) = 0 to the sum.
    const B e = xsimd::exp(
        detail::load_partial<T, Arch>(x + i, n - i, -std::numeric_limits<T>::infinity()) - s);
    detail::store_partial(e, x + i, n - i);
    acc1 += e;
  }
  return detail::hsum((acc0 + acc1) + (acc2 + acc3));
}

/// \brief In-place max-subtracted softmax; returns logsumexp(x). All −inf (or n = 0) → all zeros
/// and −inf. Inputs must not contain NaN or +inf.
template <class T, class Arch = default_arch>
T softmax(T* x, std::size_t n) noexcept {
  const T m = max<T, Arch>(x, n);
  if (!(m > -std::numeric_limits<T>::infinity())) {
    for (std::size_t i = 0; i < n; ++i) x[i] = T(0);
    return -std::numeric_limits<T>::infinity();
  }
  const T l = exp_shift_sum<T, Arch>(x, n, m);  // l >= 1: the maximum contributes exp(0)
  scale<T, Arch>(T(1) / l, x, n);
  return m + std::log(l);
}

/// \brief log Σ_i exp(x[i]) without overflow; −inf for n = 0 or all −inf. `scratch` must hold n
/// values (x itself is not modified).
template <class T, class Arch = default_arch>
[[nodiscard]] T logsumexp(const T* x, std::size_t n, T* scratch) noexcept {
  const T m = max<T, Arch>(x, n);
  if (!(m > -std::numeric_limits<T>::infinity())) return m;
  for (std::size_t i = 0; i < n; ++i) scratch[i] = x[i];
  return m + std::log(exp_shift_sum<T, Arch>(scratch, n, m));
}

/// \brief log Σ_i exp(x[i]) (allocating convenience overload).
template <class T, class Arch = default_arch>
[[nodiscard]] T logsumexp(std::span<const T> x) {
  std::vector<T> scratch(x.size());
  return logsumexp<T, Arch>(x.data(), x.size(), scratch.data());
}

/// \brief True iff every x[i] is finite. Branch-free: x − x is 0 for finite x and NaN otherwise.
template <class T, class Arch = default_arch>
[[nodiscard]] bool all_finite(const T* x, std::size_t n) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  B acc0(T(0)), acc1(T(0));
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const B a = B::load_unaligned(x + i);
    const B b = B::load_unaligned(x + i + W);
    acc0 += a - a;
    acc1 += b - b;
  }
  T tail = T(0);
  for (; i < n; ++i) tail += x[i] - x[i];
  return detail::hsum(acc0 + acc1) + tail == T(0);
}

/// \brief Online-softmax accumulator (m, l, acc) over a stream of keys; see the file comment.
template <class T>
class online_softmax_state {
 public:
  /// An empty state for values of dimension `dv` (m = −inf, l = 0, acc = 0).
  explicit online_softmax_state(std::size_t dv = 0) : acc_(dv, T(0)) {}

  /// Adds keys with (already scaled and masked, −inf = hidden) `scores[0..n)` and value rows
  /// `values + j·ldv`. `scores` is overwritten with exp(s_j − m_new).
  void add_block(T* scores, std::size_t n, const T* values, std::size_t ldv) noexcept {
    const T mb = max(scores, n);
    if (!(mb > -std::numeric_limits<T>::infinity())) return;  // every key hidden
    const T m_new = mb > m_ ? mb : m_;
    const T alpha = rescale(m_, m_new);
    const T lb = exp_shift_sum(scores, n, m_new);
    l_ = l_ * alpha + lb;
    weighted_row_sum(scores, n, values, acc_.size(), ldv, alpha, acc_.data());
    m_ = m_new;
  }

  /// Merges the state of a disjoint key set into this one (exact, associative).
  void merge(const online_softmax_state& other) noexcept {
    if (other.empty()) return;
    if (empty()) {
      *this = other;
      return;
    }
    const T m_new = other.m_ > m_ ? other.m_ : m_;
    const T a = rescale(m_, m_new);
    const T b = rescale(other.m_, m_new);
    l_ = a * l_ + b * other.l_;
    for (std::size_t c = 0; c < acc_.size(); ++c) acc_[c] = a * acc_[c] + b * other.acc_[c];
    m_ = m_new;
  }

  /// Writes the attention output acc / l, or zeros when no key was visible.
  void finalize(T* out) const noexcept {
    const T inv = empty() ? T(0) : T(1) / l_;
    for (std::size_t c = 0; c < acc_.size(); ++c) out[c] = acc_[c] * inv;
  }

  /// log Σ_j exp(s_j) over the keys seen (−inf when none was visible).
  [[nodiscard]] T log_sum_exp() const noexcept {
    return empty() ? -std::numeric_limits<T>::infinity() : m_ + std::log(l_);
  }

  [[nodiscard]] bool empty() const noexcept { return !(l_ > T(0)); }
  [[nodiscard]] T running_max() const noexcept { return m_; }
  [[nodiscard]] T normalizer() const noexcept { return l_; }
  [[nodiscard]] std::span<const T> accumulator() const noexcept { return acc_; }
  [[nodiscard]] std::size_t value_dim() const noexcept { return acc_.size(); }

 private:
  // e^{m_old − m_new}, with e^{−inf − m} = 0 for an empty old state.
  static T rescale(T m_old, T m_new) noexcept {
    return m_old > -std::numeric_limits<T>::infinity() ? std::exp(m_old - m_new) : T(0);
  }

  T m_ = -std::numeric_limits<T>::infinity();
  T l_ = T(0);
  std::vector<T> acc_;
};

}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
