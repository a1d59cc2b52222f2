#pragma once
/// \file info_bottleneck/kl_divergence.hpp
/// \brief Divergences used by the information-bottleneck family: Gaussian KL terms of the
/// variational information bottleneck (Alemi et al. 2017; Kingma & Welling 2014, App. B),
/// categorical KL and the Jensen–Shannon divergence (Lin 1991; Endres & Schindelin 2003).
///
/// Formulas (natural logarithms throughout; σ² = exp(log σ²)):
///
///     KL(N(μ, diag σ²) ‖ N(0, I))   = ½ Σ_i (μ_i² + σ_i² − log σ_i² − 1)
///       ∂/∂μ_i = μ_i,   ∂/∂(log σ_i²) = ½ (σ_i² − 1)
///     KL(N(μ₁, diag σ₁²) ‖ N(μ₂, diag σ₂²))
///                                   = ½ Σ_i (log σ₂² − log σ₁² + (σ₁² + (μ₁ − μ₂)²) / σ₂² − 1)
///     KL(p ‖ q)                     = Σ_i p_i log(p_i / max(q_i, eps)),   0 · log 0 = 0
///     JS(p, q)                      = ½ KL(p ‖ m) + ½ KL(q ‖ m),   m = ½ (p + q),  0 ≤ JS ≤ ln 2
///     JS distance                   = √JS  (a metric; Endres & Schindelin 2003)
///
/// Numerical conventions:
/// - Gaussian terms are evaluated as expm1(x) − x (x = log σ² or log σ₁² − log σ₂²), which is
///   ≥ 0 term by term and exact to rounding near x = 0 where e^x − x − 1 would cancel. KL of a
///   distribution with itself is exactly 0. Large log-variances may overflow to +inf (float:
///   log σ² ≳ 88); inputs must be finite.
/// - The unit-Gaussian KL is an xsimd reduction in T with four accumulators (float: expect a
///   relative rounding error of about √(n / 4W) · 2⁻²⁴). The other divergences accumulate in
///   double.
/// - Categorical inputs must be finite and non-negative with a positive sum; they are normalised
///   by their sums (so unnormalised histograms are accepted). In KL(p ‖ q) each q_i is clamped
///   to ≥ eps (default `categorical_kl_eps<T>` = 1e-12), so a q that misses part of p's support
///   gives a large finite value (≈ p_i · log(p_i / eps)); eps = 0 gives +inf instead. Terms with
///   p_i = 0 contribute 0. The result is clamped to ≥ 0 (rounding and the eps clamp can otherwise
///   leave ~−1e-16). JS needs no eps (m_i > 0 wherever p_i or q_i is) and is clamped to
///   [0, ln 2]; ln 2 is reached exactly by distributions with disjoint supports.
/// - Free functions take `std::span<const T>`; with other containers name T explicitly, e.g.
///   `kl_to_standard_normal<float>(mu, logvar)` with two `std::vector<float>`.
/// - Errors: sizes that differ → `dimension_mismatch`; empty input, negative probability, zero
///   sum or negative eps → `invalid_argument`; NaN/Inf → `non_finite_input`. Every message names
///   the argument and index.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Default lower clamp of q_i in `kl_categorical`.
template <attention_scalar T>
inline constexpr T categorical_kl_eps = T(1e-12);

namespace detail {

/// Throws unless `a` and `b` have the same, non-zero size.
inline void require_same_size(std::string_view a_name, std::size_t a, std::string_view b_name,
                              std::size_t b) {
  require_non_empty(a_name, a);
  if (a != b) {
    std::ostringstream os;
    os << "dimension mismatch: " << b_name << ".size() is " << b << ", expected " << a
       << " (the size of " << a_name << ")";
    throw dimension_mismatch(os.str());
  }
}

/// Validates a (possibly unnormalised) probability vector and returns its sum (in double).
template <class T>
double require_distribution(std::string_view what, std::span<const T> p) {
  require_finite(what, p);
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] < T(0)) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << i << "] = " << p[i]
         << " is negative (probabilities must be >= 0)";
      throw invalid_argument(os.str());
    }
    s += static_cast<double>(p[i]);
  }
  if (!(s > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << what << " sums to " << s << ", expected a positive sum";
    throw invalid_argument(os.str());
  }
  return s;
}

/// ½ Σ (μ² + expm1(lv) − lv) over n values (xsimd, 4 accumulators; no validation).
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] T kl_unit_sum(const T* mu, const T* lv, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const auto term = [](const B& m, const B& l) { return xsimd::fma(m, m, xsimd::expm1(l) - l); };
  B acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    acc0 += term(B::load_unaligned(mu + i), B::load_unaligned(lv + i));
    acc1 += term(B::load_unaligned(mu + i + W), B::load_unaligned(lv + i + W));
    acc2 += term(B::load_unaligned(mu + i + 2 * W), B::load_unaligned(lv + i + 2 * W));
    acc3 += term(B::load_unaligned(mu + i + 3 * W), B::load_unaligned(lv + i + 3 * W));
  }
  for (; i + W <= n; i += W) acc0 += term(B::load_unaligned(mu + i), B::load_unaligned(lv + i));
  T tail = T(0);
  for (; i < n; ++i) tail += mu[i] * mu[i] + (std::expm1(lv[i]) - lv[i]);
  return T(0.5) * (kernels::detail::hsum((acc0 + acc1) + (acc2 + acc3)) + tail);
}

/// Σ_i a_i log(a_i / b_i) over normalised a, b with 0·log 0 = 0 (b_i > 0 where a_i > 0).
inline double kl_terms(double a, double b) noexcept { return a > 0.0 ? a * std::log(a / b) : 0.0; }

}  // namespace detail

/// \brief KL(N(μ, diag exp(log σ²)) ‖ N(0, I)) = ½ Σ (μ² + σ² − log σ² − 1).
template <attention_scalar T>
[[nodiscard]] T kl_to_standard_normal(std::span<const T> mu, std::span<const T> logvar) {
  detail::require_same_size("mu", mu.size(), "logvar", logvar.size());
  require_finite("mu", mu);
  require_finite("logvar", logvar);
  return detail::kl_unit_sum(mu.data(), logvar.data(), mu.size());
}

/// \brief Gradients of `kl_to_standard_normal`: grad_mu = μ, grad_logvar = ½ (σ² − 1).
template <attention_scalar T>
void kl_to_standard_normal_grad(std::span<const T> mu, std::span<const T> logvar,
                                std::span<T> grad_mu, std::span<T> grad_logvar) {
  detail::require_same_size("mu", mu.size(), "logvar", logvar.size());
  detail::require_same_size("mu", mu.size(), "grad_mu", grad_mu.size());
  detail::require_same_size("mu", mu.size(), "grad_logvar", grad_logvar.size());
  require_finite("mu", mu);
  require_finite("logvar", logvar);
  for (std::size_t i = 0; i < mu.size(); ++i) {
    grad_mu[i] = mu[i];
    grad_logvar[i] = T(0.5) * std::expm1(logvar[i]);
  }
}

/// \brief KL(N(μ₁, diag σ₁²) ‖ N(μ₂, diag σ₂²)) from means and log-variances.
template <attention_scalar T>
[[nodiscard]] T kl_diag_gaussians(std::span<const T> mu1, std::span<const T> logvar1,
                                  std::span<const T> mu2, std::span<const T> logvar2) {
  detail::require_same_size("mu1", mu1.size(), "logvar1", logvar1.size());
  detail::require_same_size("mu1", mu1.size(), "mu2", mu2.size());
  detail::require_same_size("mu1", mu1.size(), "logvar2", logvar2.size());
  require_finite("mu1", mu1);
  require_finite("logvar1", logvar1);
  require_finite("mu2", mu2);
  require_finite("logvar2", logvar2);
  // ½ Σ [expm1(δ) − δ + (μ₁ − μ₂)² e^{−log σ₂²}],  δ = log σ₁² − log σ₂².
  double s = 0.0;
  for (std::size_t i = 0; i < mu1.size(); ++i) {
    const double d = static_cast<double>(logvar1[i]) - static_cast<double>(logvar2[i]);
    const double dm = static_cast<double>(mu1[i]) - static_cast<double>(mu2[i]);
    s += (std::expm1(d) - d) + dm * dm * std::exp(-static_cast<double>(logvar2[i]));
  }
  return static_cast<T>(0.5 * s);
}

/// \brief Shannon entropy −Σ p_i log p_i (nats) of p normalised by its sum; 0·log 0 = 0.
template <attention_scalar T>
[[nodiscard]] T categorical_entropy(std::span<const T> p) {
  require_non_empty("p", p.size());
  const double sp = detail::require_distribution("p", p);
  double h = 0.0;
  for (const T v : p) h -= detail::kl_terms(static_cast<double>(v) / sp, 1.0);
  return static_cast<T>(h > 0.0 ? h : 0.0);
}

/// \brief KL(p ‖ q) = Σ p_i log(p_i / max(q_i, eps)) of sum-normalised p, q (see the file
/// comment for the eps convention).
template <attention_scalar T>
[[nodiscard]] T kl_categorical(std::span<const T> p, std::span<const T> q,
                               T eps = categorical_kl_eps<T>) {
  detail::require_same_size("p", p.size(), "q", q.size());
  require_argument(eps >= T(0) && std::isfinite(eps),
                   "kl_categorical: eps must be finite and >= 0");
  const double sp = detail::require_distribution("p", p);
  const double sq = detail::require_distribution("q", q);
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double pi = static_cast<double>(p[i]) / sp;
    if (!(pi > 0.0)) continue;
    const double qi = std::max(static_cast<double>(q[i]) / sq, static_cast<double>(eps));
    if (!(qi > 0.0)) return std::numeric_limits<T>::infinity();
    s += pi * std::log(pi / qi);
  }
  return static_cast<T>(s > 0.0 ? s : 0.0);
}

/// \brief Jensen–Shannon divergence ½ KL(p ‖ m) + ½ KL(q ‖ m), m = ½(p + q), in nats; in
/// [0, ln 2]; symmetric.
template <attention_scalar T>
[[nodiscard]] T js_divergence(std::span<const T> p, std::span<const T> q) {
  detail::require_same_size("p", p.size(), "q", q.size());
  const double sp = detail::require_distribution("p", p);
  const double sq = detail::require_distribution("q", q);
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double pi = static_cast<double>(p[i]) / sp;
    const double qi = static_cast<double>(q[i]) / sq;
    const double mi = 0.5 * (pi + qi);
    s += detail::kl_terms(pi, mi) + detail::kl_terms(qi, mi);
  }
  s *= 0.5;
  const double ln2 = std::numbers::ln2;
  return static_cast<T>(s < 0.0 ? 0.0 : (s > ln2 ? ln2 : s));
}

/// \brief Jensen–Shannon distance √JS(p, q) (a metric on distributions), in √nats.
template <attention_scalar T>
[[nodiscard]] T js_distance(std::span<const T> p, std::span<const T> q) {
  return std::sqrt(js_divergence(p, q));
}

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
