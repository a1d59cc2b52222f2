#pragma once
/// \file info_geometry/fisher.hpp
/// \brief Fisher information operators and the Fisher–Rao distance of categorical distributions.
///
/// - `categorical_fisher<T>`: the Fisher information of a categorical distribution
///   p = softmax(θ) with respect to its logits θ (Amari 1998, "Natural gradient works efficiently
///   in learning"; Martens 2020, "New insights and perspectives on the natural gradient method"):
///
///       F = diag(p) − p pᵀ            (the Jacobian ∂p/∂θ, and the Hessian of log Σ exp θ)
///
///   applied matrix-free in O(n) as  F v = p ⊙ v − p (pᵀv).  F is symmetric PSD, F·1 = 0 (a
///   constant shift of the logits leaves p unchanged), and its rank is |supp p| − 1. The diagonal
///   approximation is diag(p − p²). `solve` applies (F + λI)⁻¹ in closed form (Sherman–Morrison,
///   see below) and, for λ = 0, the Moore–Penrose pseudo-inverse F⁺.
/// - `empirical_fisher<T>`: F = (1/N) Gᵀ G for per-sample gradients G (N × P, one row per sample),
///   applied matrix-free as (1/N) Gᵀ (G v) in O(N·P) without forming the P × P matrix.
/// - `fisher_rao_distance(p, q)`: the geodesic distance of the Fisher metric on the simplex,
///
///       d_FR(p, q) = 2 · arccos( Σ_i √(p_i q_i) )   (Rao 1945; Amari & Nagaoka 2000, §2.5)
///
///   Convention — the factor 2: the map p ↦ 2√p is an isometry from the simplex with the Fisher
///   metric Σ_i dp_i² / p_i onto the positive orthant of the sphere of radius 2, so geodesic
///   distances are 2 × the angle between √p and √q. This is the distance of *the same* metric
///   whose logit-coordinate matrix is F above: d_FR(softmax(θ), softmax(θ + εv))² = ε² vᵀFv +
///   O(ε³). Texts that omit the 2 (the "Bhattacharyya angle") use the unit sphere, i.e. ¼ × the
///   Fisher metric. Range: [0, π]; π exactly for disjoint supports.
///
/// Numerical conventions:
/// - Probability vectors passed to a validated entry point must be finite, non-negative and sum to
///   1 within `simplex_tolerance<T>(n) = max(√ε, 4·n·ε)` (ε = machine epsilon of T; float:
///   3.5e-4 for n ≤ 720, double: 1.5e-8 for n ≤ 10⁷). The bound 4·n·ε covers the rounding of a
///   softmax computed and summed in T. Inputs are used as given (not renormalised) by the Fisher
///   operator; the distance normalises both inputs (see `fisher_rao_distance`).
/// - Logits may hold −inf (a masked class, p_i = 0); NaN and +inf throw `non_finite_input`, and
///   all −inf throws `invalid_argument`.
/// - `apply` checks sizes only (it is the hot path of conjugate gradient); values are validated
///   once, at construction. `apply` writes into a caller-provided `y` of size n that must not
///   alias `x`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief Tolerance on |Σ p_i − 1| accepted for a probability vector of size n:
/// max(√ε, 4·n·ε) with ε the machine epsilon of T.
template <attention_scalar T>
[[nodiscard]] T simplex_tolerance(std::size_t n) noexcept {
  constexpr T eps = std::numeric_limits<T>::epsilon();
  return std::max(std::sqrt(eps), T(4) * static_cast<T>(n) * eps);
}

namespace detail {

/// Throws unless `p` is a non-empty, finite, non-negative vector summing to 1 within
/// `simplex_tolerance<T>(n)`; messages name `what`, the index and the value.
template <attention_scalar T>
void require_probability_vector(std::string_view what, std::span<const T> p) {
  require_non_empty(what, p.size());
  require_at_most(what, p.size(), max_sequence_length);
  require_finite(what, p);
  double sum = 0.0;  // the check itself must not add rounding of its own
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] < T(0)) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << i << "] = " << p[i]
         << ", expected a probability >= 0";
      throw invalid_argument(os.str());
    }
    sum += static_cast<double>(p[i]);
  }
  const double tol = static_cast<double>(simplex_tolerance<T>(p.size()));
  if (!(std::abs(sum - 1.0) <= tol)) {
    std::ostringstream os;
    os << "invalid argument: " << what << " sums to " << sum << ", expected 1 within " << tol;
    throw invalid_argument(os.str());
  }
}

/// y = p ⊙ v − p (pᵀv) (no validation; y must not alias v).
template <class T>
void categorical_fisher_product(const T* p, const T* v, T* y, std::size_t n) noexcept {
  const T pv = kernels::dot(p, v, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = p[i] * (v[i] - pv);
}

}  // namespace detail

// ================================================================================================
// Categorical (softmax) Fisher information
// ================================================================================================

/// \brief The Fisher information F = diag(p) − ppᵀ of a categorical distribution in its logit
/// coordinates, as a matrix-free symmetric PSD operator (models `linear_operator`).
///
/// Immutable after construction; safe to share across threads.
template <attention_scalar T>
class categorical_fisher {
 public:
  using value_type = T;

  /// From a probability vector (validated: see the file comment).
  explicit categorical_fisher(std::span<const T> probabilities)
      : p_(probabilities.begin(), probabilities.end()) {
    detail::require_probability_vector<T>("probabilities", probabilities);
    delta_ = compute_delta(p_);
  }

  /// From logits: p = softmax(θ) (max-subtracted, kernels::softmax). −inf entries are masked
  /// classes (p_i = 0); NaN / +inf throw `non_finite_input`; all −inf throws `invalid_argument`.
  [[nodiscard]] static categorical_fisher from_logits(std::span<const T> logits) {
    require_non_empty("logits", logits.size());
    require_at_most("logits", logits.size(), max_sequence_length);
    bool any_finite = false;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<T>::infinity()) {
        detail::throw_non_finite("logits", i, logits[i]);
      }
      any_finite = any_finite || std::isfinite(logits[i]);
    }
    require_argument(any_finite, "logits are all -inf (every class masked)");
    std::vector<T> p(logits.begin(), logits.end());
    kernels::softmax(p.data(), p.size());
    return categorical_fisher(std::move(p), unchecked_tag{});
  }

  /// Number of classes n.
  [[nodiscard]] std::size_t size() const noexcept { return p_.size(); }

  /// The probabilities p.
  [[nodiscard]] std::span<const T> probabilities() const noexcept { return p_; }

  /// y = F x = p ⊙ x − p (pᵀx), O(n). Throws `dimension_mismatch` unless |x| = |y| = n; `y`
  /// must not alias `x`.
  void apply(std::span<const T> x, std::span<T> y) const {
    require_dimension("x.size()", x.size(), p_.size());
    require_dimension("y.size()", y.size(), p_.size());
    detail::categorical_fisher_product(p_.data(), x.data(), y.data(), p_.size());
  }

  /// vᵀ F v = Σ p_i v_i² − (pᵀv)² (the squared Fisher norm of a logit direction), computed as
  /// Σ p_i (v_i − pᵀv)², which is never negative.
  [[nodiscard]] T quadratic_form(std::span<const T> v) const {
    require_dimension("v.size()", v.size(), p_.size());
    const T pv = kernels::dot(p_.data(), v.data(), p_.size());
    T acc = T(0);
    for (std::size_t i = 0; i < p_.size(); ++i) acc += p_[i] * (v[i] - pv) * (v[i] - pv);
    return acc;
  }

  /// The explicit n × n matrix diag(p) − ppᵀ (O(n²) memory: for tests and small n).
  [[nodiscard]] row_matrix<T> matrix() const {
    const auto n = static_cast<Eigen::Index>(p_.size());
    const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> p(p_.data(), n);
    row_matrix<T> f = -(p * p.transpose());
    f.diagonal() += p;
    return f;
  }

  /// The diagonal approximation diag(F) = p − p² = p (1 − p).
  [[nodiscard]] std::vector<T> diagonal() const {
    std::vector<T> d(p_.size());
    for (std::size_t i = 0; i < p_.size(); ++i) d[i] = p_[i] * (T(1) - p_[i]);
    return d;
  }

  /// x = (F + λI)⁻¹ g in closed form, O(n).
  ///
  /// λ > 0 — Sherman–Morrison with M = diag(p + λ): (M − ppᵀ)⁻¹ = M⁻¹ + M⁻¹ppᵀM⁻¹ / (1 − pᵀM⁻¹p).
  /// With a_i = 1/(p_i + λ), w_i = p_i a_i = 1 − λ a_i and W = Σ w_i, the two scalars are
  /// pᵀM⁻¹g = Σg − λ Σ a_i g_i and 1 − pᵀM⁻¹p = δ + λW with δ = 1 − Σp (0 up to rounding), so
  ///
  ///     x_i = a_i g_i + w_i · (Σ_j g_j − λ Σ_j a_j g_j) / (δ + λW).
  ///
  /// Keeping δ makes x the exact inverse of the operator `apply` uses (the p stored, whose sum is
  /// 1 only to rounding), so CG and the closed form agree to the CG tolerance; δ is summed in
  /// double once, at construction. (δ + λW ≤ 0 would mean the stored p makes F + λI indefinite —
  /// then δ is dropped, i.e. Σp = 1 is assumed.) The w_i·Σg/(δ + λW) part is a (near-)constant
  /// shift along 1, the null direction of F: it does not change softmax(θ − ηx), and it vanishes
  /// for gradients of a loss of p (which satisfy 1ᵀg = 0). λ = 0 — the pseudo-inverse: with S =
  /// supp(p) and P_S the centring projector on S, F⁺ g = P_S diag(p_S)⁻¹ P_S g on S and 0 off S
  /// (the minimum-norm least-squares solution; this takes Σp = 1, the null space of F being exactly
  /// 1_S).
  ///
  /// Throws `invalid_argument` for λ < 0 or non-finite λ, `dimension_mismatch` unless
  /// |g| = |x| = n, `non_finite_input` for NaN/Inf in g. `x` must not alias `g`.
  void solve(std::span<const T> g, T damping, std::span<T> x) const {
    require_damping(damping);
    require_dimension("g.size()", g.size(), p_.size());
    require_dimension("x.size()", x.size(), p_.size());
    require_finite("g", g);
    const std::size_t n = p_.size();
    if (damping > T(0)) {
      // Three vectorised passes: a = 1/(p + λ) (into x), the sums (xsimd reductions), then
      // x_i = a_i (g_i + p_i c) with c = (Σg − λ Σ a g) / (δ + λW).
      T* xs = x.data();
      const T* ps = p_.data();
      for (std::size_t i = 0; i < n; ++i) xs[i] = T(1) / (ps[i] + damping);
      const T sum_w = kernels::dot(ps, xs, n);
      const T sum_ag = kernels::dot(xs, g.data(), n);
      const T sum_g = kernels::sum(g.data(), n);
      const T lw = damping * sum_w;
      const T exact = delta_ + lw;
      const T c = (sum_g - damping * sum_ag) / (exact > T(0) ? exact : lw);
      for (std::size_t i = 0; i < n; ++i) xs[i] *= g[i] + ps[i] * c;
      return;
    }
    // λ = 0: pseudo-inverse on the support.
    std::size_t support = 0;
    T mean_g = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      if (p_[i] > T(0)) {
        ++support;
        mean_g += g[i];
      }
    }
    mean_g /= static_cast<T>(support);  // support >= 1: p sums to 1
    T mean_x = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = p_[i] > T(0) ? (g[i] - mean_g) / p_[i] : T(0);
      mean_x += x[i];
    }
    mean_x /= static_cast<T>(support);
    for (std::size_t i = 0; i < n; ++i)
      if (p_[i] > T(0)) x[i] -= mean_x;
  }

  /// Throws `invalid_argument` unless λ is finite and λ ≥ 0 (shared by every damped solve).
  static void require_damping(T damping) {
    if (!(std::isfinite(damping) && damping >= T(0))) {
      std::ostringstream os;
      os << "invalid argument: damping = " << damping << ", expected a finite value >= 0";
      throw invalid_argument(os.str());
    }
  }

 private:
  struct unchecked_tag {};
  categorical_fisher(std::vector<T>&& p, unchecked_tag) noexcept
      : p_(std::move(p)), delta_(compute_delta(p_)) {}

  // δ = 1 − Σp, summed in double.
  static T compute_delta(const std::vector<T>& p) noexcept {
    double s = 0.0;
    for (T v : p) s += static_cast<double>(v);
    return static_cast<T>(1.0 - s);
  }

  std::vector<T> p_;
  T delta_ = T(0);
};

// ================================================================================================
// Empirical Fisher from per-sample gradients
// ================================================================================================

/// \brief The empirical Fisher F = (1/N) Gᵀ G of N per-sample gradients (rows of G, N × P),
/// applied matrix-free as (1/N) Gᵀ (G v) in 2·N·P multiply-adds (models `linear_operator`).
///
/// Zero-copy: the operator keeps a pointer to G's storage, which the caller must keep alive and
/// unchanged while the operator is used. G must be row-major storage (a `row_matrix<T>`, an
/// `Eigen::Map` or a row block of one): a column-major argument would bind through a temporary
/// copy that dies with the constructor call, so `matrix_cref` arguments of that kind are the
/// caller's responsibility; temporaries of `row_matrix<T>` are rejected at compile time.
/// G is validated (non-empty, finite) once at construction. Immutable; safe to share across
/// threads (`apply` uses thread-local scratch of N values).
template <attention_scalar T>
class empirical_fisher {
 public:
  using value_type = T;

  /// \param per_sample_gradients G, N × P (N ≥ 1 samples, P ≥ 1 parameters), finite.
  explicit empirical_fisher(const matrix_cref<T>& per_sample_gradients)
      : g_(per_sample_gradients.data()),
        n_(static_cast<std::size_t>(per_sample_gradients.rows())),
        p_(static_cast<std::size_t>(per_sample_gradients.cols())),
        ld_(static_cast<std::size_t>(per_sample_gradients.outerStride())) {
    require_non_empty("per_sample_gradients.rows()", n_);
    require_non_empty("per_sample_gradients.cols()", p_);
    require_at_most("per_sample_gradients.cols()", p_, max_sequence_length);
    require_finite("per_sample_gradients", g_, n_, p_, static_cast<std::ptrdiff_t>(ld_));
  }
  /// A temporary matrix would dangle: rejected.
  template <class M>
  requires(std::is_same_v<M, row_matrix<T>>) explicit empirical_fisher(M&&) = delete;

  /// Number of parameters P (the operator is P × P).
  [[nodiscard]] std::size_t size() const noexcept { return p_; }
  /// Number of samples N.
  [[nodiscard]] std::size_t samples() const noexcept { return n_; }

  /// y = (1/N) Gᵀ (G x). Throws `dimension_mismatch` unless |x| = |y| = P; `y` must not alias
  /// `x`.
  void apply(std::span<const T> x, std::span<T> y) const {
    require_dimension("x.size()", x.size(), p_);
    require_dimension("y.size()", y.size(), p_);
    T* t = detail::thread_scratch<T, 0x1f15>(n_);
    kernels::row_dots(g_, n_, p_, ld_, x.data(), T(1) / static_cast<T>(n_), t);  // t = Gx / N
    kernels::weighted_row_sum(t, n_, g_, p_, ld_, T(0), y.data());               // y = Gᵀt
  }

  /// The explicit P × P matrix (1/N) GᵀG (O(P²) memory: for tests and small P).
  [[nodiscard]] row_matrix<T> matrix() const {
    const auto g = view();
    return (g.transpose() * g) / static_cast<T>(n_);
  }

  /// The diagonal (1/N) Σ_s G_si² (the "diagonal empirical Fisher" of Adam-like methods).
  [[nodiscard]] std::vector<T> diagonal() const {
    std::vector<T> d(p_, T(0));
    for (std::size_t s = 0; s < n_; ++s) {
      const T* row = g_ + s * ld_;
      for (std::size_t j = 0; j < p_; ++j) d[j] += row[j] * row[j];
    }
    for (auto& v : d) v /= static_cast<T>(n_);
    return d;
  }

  /// G as a read-only view.
  [[nodiscard]] auto view() const noexcept { return matrix_view<const T>(g_, n_, p_, ld_); }

 private:
  const T* g_;
  std::size_t n_, p_, ld_;
};

// ================================================================================================
// Fisher–Rao distance
// ================================================================================================

/// \brief The Bhattacharyya coefficient BC(p, q) = Σ_i √(p_i q_i), clamped to [0, 1] (rounding
/// and inputs that sum to 1 only within tolerance can push the raw sum just above 1).
/// Validation as for `fisher_rao_distance`.
template <attention_scalar T>
[[nodiscard]] T bhattacharyya_coefficient(std::span<const T> p, std::span<const T> q) {
  detail::require_probability_vector<T>("p", p);
  detail::require_probability_vector<T>("q", q);
  require_dimension("q.size()", q.size(), p.size());
  T bc = T(0);
  for (std::size_t i = 0; i < p.size(); ++i) bc += std::sqrt(p[i] * q[i]);
  return std::clamp(bc, T(0), T(1));
}

/// \brief Fisher–Rao distance d_FR(p, q) = 2·arccos(BC(p, q)) ∈ [0, π] between categorical
/// distributions (factor-2 convention: see the file comment).
///
/// Computed as the equivalent, well-conditioned 4·arcsin(‖u − v‖/2) with u = √p/‖√p‖ and
/// v = √q/‖√q‖ (unit vectors; ⟨u, v⟩ = BC for normalised inputs, and ‖u − v‖² = 2 − 2⟨u, v⟩):
/// arccos loses half the digits near BC = 1 (d_FR = 1e-4 would come out with ~1e-4 relative
/// error in float), the chord form keeps full relative accuracy for close distributions. The
/// normalisation by ‖√p‖ = √Σp removes the residual of inputs that sum to 1 only within
/// tolerance; the half-chord is clamped to ≤ 1 and the result to ≤ π — the counterpart of
/// clamping BC to [0, 1] (rounding can push ‖u − v‖ a few ulp past its bound √2).
/// Identical inputs give exactly 0; disjoint supports give π; d(p, q) == d(q, p) bit for bit.
///
/// Throws `dimension_mismatch` for |p| ≠ |q|, `invalid_argument` for empty inputs, negative
/// entries or sums outside 1 ± `simplex_tolerance<T>(n)`, `non_finite_input` for NaN/Inf.
template <attention_scalar T>
[[nodiscard]] T fisher_rao_distance(std::span<const T> p, std::span<const T> q) {
  detail::require_probability_vector<T>("p", p);
  detail::require_probability_vector<T>("q", q);
  require_dimension("q.size()", q.size(), p.size());
  // Exact symmetry d(p, q) = d(q, p) whatever the compiler contracts into FMAs: evaluate with the
  // arguments in a canonical (lexicographic) order.
  if (std::lexicographical_compare(q.begin(), q.end(), p.begin(), p.end())) std::swap(p, q);
  T sp = T(0), sq = T(0);
  for (std::size_t i = 0; i < p.size(); ++i) {
    sp += p[i];
    sq += q[i];
  }
  const T np = T(1) / std::sqrt(sp), nq = T(1) / std::sqrt(sq);
  T chord2 = T(0);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const T diff = std::sqrt(p[i]) * np - std::sqrt(q[i]) * nq;
    chord2 += diff * diff;
  }
  const T half_chord = std::min(T(1), std::sqrt(chord2) / T(2));
  return std::min(T(4) * std::asin(half_chord), std::numbers::pi_v<T>);
}

}  // namespace ruvector::attention
