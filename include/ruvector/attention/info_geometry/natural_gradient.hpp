#pragma once
/// \file info_geometry/natural_gradient.hpp
/// \brief Damped conjugate gradient for matrix-free symmetric PSD operators and natural-gradient
/// steps (Amari 1998; Martens 2010, "Deep learning via Hessian-free optimization"; Martens 2020).
///
/// - `linear_operator<Op, T>`: anything with `size()` and `apply(x, y)` (y = A x, spans of T).
///   `categorical_fisher<T>` and `empirical_fisher<T>` model it; `make_operator<T>(n, f)` wraps a
///   callable `f(x, y)`.
/// - `conjugate_gradient<T>(A, b, x, λ, options)` solves (A + λI) x = b (Hestenes & Stiefel 1952):
///
///       r₀ = b − (A + λI) x₀,  p₀ = r₀;   α_k = r_kᵀr_k / p_kᵀ(A + λI)p_k,
///       x_{k+1} = x_k + α_k p_k,  r_{k+1} = r_k − α_k (A + λI) p_k,
///       β_k = r_{k+1}ᵀr_{k+1} / r_kᵀr_k,  p_{k+1} = r_{k+1} + β_k p_k.
///
///   In exact arithmetic it terminates in at most (number of distinct eigenvalues of A + λI) ≤ n
///   iterations. Stopping rule: relative residual ‖b − (A + λI)x‖ ≤ tolerance · ‖b‖. Because the
///   recursively updated r drifts from the true residual in floating point, convergence claimed by
///   the recursion is confirmed by recomputing the true residual (one extra operator application);
///   if the check fails, CG restarts from the true residual (residual replacement). The reported
///   `residual_norm` is always the true residual of the returned x. If pᵀ(A + λI)p ≤ 0 or is not
///   finite (the operator is not positive definite on the Krylov space, e.g. λ = 0 and b has a
///   component in the null space), CG stops with `breakdown = true` and returns the last iterate.
///   For a singular PSD A with λ = 0, x₀ = 0 and b in the range of A, the iterates stay in the
///   range and converge to the minimum-norm solution A⁺b.
/// - Natural gradient: θ ← θ − η (F + λI)⁻¹ g. `natural_gradient_step_logits` does it for the
///   logits of a softmax with F = diag(p) − ppᵀ (closed form or CG); `natural_gradient_optimizer`
///   does it for a generic parameter vector and any Fisher operator (e.g. the empirical Fisher).
///
/// Conventions: dot products and updates run in T (xsimd kernels); x₀ = 0 unless
/// `cg_options::warm_start`; `max_iterations = 0` means n; a zero right-hand side returns x = 0
/// after 0 iterations. λ < 0 or non-finite throws `invalid_argument`; bad option values throw
/// `invalid_config`.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/info_geometry/fisher.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

namespace ruvector::attention {

/// \brief A linear operator on Tⁿ given matrix-free: `size()` is n and `apply(x, y)` writes
/// y = A x (|x| = |y| = n, y not aliasing x). Conjugate gradient further assumes A symmetric PSD.
template <class Op, class T>
concept linear_operator = attention_scalar<T> &&
    requires(const Op& op, std::span<const T> x, std::span<T> y) {
  { op.size() } -> std::convertible_to<std::size_t>;
  op.apply(x, y);
};

/// \brief Adapts a callable `f(std::span<const T> x, std::span<T> y)` (writing y = A x) to a
/// `linear_operator` of size n. `apply` checks the sizes, then calls f.
template <attention_scalar T, class F>
requires std::invocable<const F&, std::span<const T>, std::span<T>>
class function_operator {
 public:
  using value_type = T;
  function_operator(std::size_t n, F f) : n_(n), f_(std::move(f)) {}
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  void apply(std::span<const T> x, std::span<T> y) const {
    require_dimension("x.size()", x.size(), n_);
    require_dimension("y.size()", y.size(), n_);
    std::invoke(f_, x, y);
  }

 private:
  std::size_t n_;
  F f_;
};

/// \brief `function_operator<T, F>(n, f)`: e.g. `make_operator<float>(n, [&](auto x, auto y) {
/// ... })`.
template <attention_scalar T, class F>
[[nodiscard]] function_operator<T, std::decay_t<F>> make_operator(std::size_t n, F&& f) {
  return function_operator<T, std::decay_t<F>>(n, std::forward<F>(f));
}

/// \brief Default relative-residual tolerance of conjugate gradient: 1e-5 for float (≈ 80 ε,
/// reachable for condition numbers up to ~10²), 1e-10 for double.
template <attention_scalar T>
inline constexpr T default_cg_tolerance = std::is_same_v<T, float> ? T(1e-5) : T(1e-10);

/// \brief Settings of `conjugate_gradient`.
template <attention_scalar T>
struct cg_options {
  /// Iteration cap; 0 means n (the exact-arithmetic bound).
  std::size_t max_iterations = 0;
  /// Stop when ‖b − (A + λI)x‖ ≤ tolerance · ‖b‖; finite and ≥ 0 (0 runs to the cap).
  T tolerance = default_cg_tolerance<T>;
  /// Start from the caller's x instead of 0.
  bool warm_start = false;
};

/// \brief Outcome of a conjugate-gradient solve.
template <attention_scalar T>
struct cg_result {
  /// CG iterations performed (each costs one operator application).
  std::size_t iterations = 0;
  /// Operator applications in total (iterations + initial/true-residual evaluations).
  std::size_t applications = 0;
  /// True residual ‖b − (A + λI)x‖ of the returned x.
  T residual_norm = T(0);
  /// residual_norm / ‖b‖ (0 when b = 0).
  T relative_residual = T(0);
  /// relative_residual ≤ tolerance.
  bool converged = false;
  /// Stopped because pᵀ(A + λI)p ≤ 0 or was not finite (operator not positive definite).
  bool breakdown = false;
};

namespace detail {

/// Throws `invalid_config` unless the CG options are usable.
template <attention_scalar T>
void require_cg_options(const cg_options<T>& o, std::string_view what = "cg_options") {
  if (!(std::isfinite(o.tolerance) && o.tolerance >= T(0))) {
    std::ostringstream os;
    os << "invalid config: " << what << ".tolerance = " << o.tolerance
       << ", expected a finite value >= 0";
    throw invalid_config(os.str());
  }
}

/// y = (A + λI) x.
template <class T, class Op>
void apply_damped(const Op& a, T damping, std::span<const T> x, std::span<T> y) {
  a.apply(x, y);
  if (damping != T(0)) kernels::axpy(damping, x.data(), y.data(), x.size());
}

/// r = b − (A + λI) x (using `tmp` of size n); returns ‖r‖².
template <class T, class Op>
T true_residual(const Op& a, T damping, std::span<const T> b, std::span<const T> x,
                std::span<T> tmp, std::span<T> r) {
  apply_damped<T>(a, damping, x, tmp);
  for (std::size_t i = 0; i < b.size(); ++i) r[i] = b[i] - tmp[i];
  return kernels::dot(r.data(), r.data(), r.size());
}

}  // namespace detail

/// \brief Solves (A + λI) x = b by conjugate gradient; see the file comment.
/// \param a symmetric PSD operator of size n. \param b right-hand side (n, finite).
/// \param x solution (n; the initial guess with `warm_start`, then it must be finite).
/// \param damping λ ≥ 0. Throws `dimension_mismatch`, `non_finite_input`, `invalid_argument`
/// (λ), `invalid_config` (options); exceptions thrown by `a.apply` propagate.
template <attention_scalar T, class Op>
requires linear_operator<Op, T> cg_result<T> conjugate_gradient(
    const Op& a, std::type_identity_t<std::span<const T>> b, std::type_identity_t<std::span<T>> x,
    std::type_identity_t<T> damping, const std::type_identity_t<cg_options<T>>& options = {}) {
  const std::size_t n = static_cast<std::size_t>(a.size());
  categorical_fisher<T>::require_damping(damping);
  detail::require_cg_options(options);
  require_dimension("b.size()", b.size(), n);
  require_dimension("x.size()", x.size(), n);
  require_finite("b", b);
  if (options.warm_start) require_finite<T>("x (warm start)", x);

  cg_result<T> res;
  const T b_norm = std::sqrt(kernels::dot(b.data(), b.data(), n));
  if (n == 0 || b_norm == T(0)) {
    for (auto& v : x) v = T(0);
    res.converged = true;
    return res;
  }
  const std::size_t cap = options.max_iterations ? options.max_iterations : n;
  const T target = options.tolerance * b_norm;

  std::vector<T> r(n), p(n), ap(n);
  T rr;
  if (options.warm_start) {
    rr = detail::true_residual<T>(a, damping, b, x, ap, r);
    ++res.applications;
  } else {
    for (auto& v : x) v = T(0);
    for (std::size_t i = 0; i < n; ++i) r[i] = b[i];
    rr = b_norm * b_norm;
  }
  bool residual_is_true = true;  // r holds the true residual of x
  p = r;
  while (!(std::sqrt(rr) <= target) && res.iterations < cap) {
    detail::apply_damped<T>(a, damping, p, ap);
    ++res.applications;
    const T pap = kernels::dot(p.data(), ap.data(), n);
    if (!(pap > T(0)) || !std::isfinite(pap)) {
      res.breakdown = true;
      break;
    }
    const T alpha = rr / pap;
    kernels::axpy(alpha, p.data(), x.data(), n);
    kernels::axpy(-alpha, ap.data(), r.data(), n);
    ++res.iterations;
    T rr_new = kernels::dot(r.data(), r.data(), n);
    residual_is_true = false;
    if (std::sqrt(rr_new) <= target) {
      // Confirm with the true residual; on failure restart from it (residual replacement).
      rr_new = detail::true_residual<T>(a, damping, b, x, ap, r);
      ++res.applications;
      residual_is_true = true;
      if (std::sqrt(rr_new) <= target) {
        rr = rr_new;
        break;
      }
      p = r;
      rr = rr_new;
      continue;
    }
    const T beta = rr_new / rr;
    for (std::size_t i = 0; i < n; ++i) p[i] = r[i] + beta * p[i];
    rr = rr_new;
  }
  if (!residual_is_true) {
    rr = detail::true_residual<T>(a, damping, b, x, ap, r);
    ++res.applications;
  }
  res.residual_norm = std::sqrt(rr);
  res.relative_residual = res.residual_norm / b_norm;
  res.converged = res.residual_norm <= target;
  return res;
}

// ================================================================================================
// Natural-gradient steps
// ================================================================================================

/// \brief How `natural_gradient_step_logits` solves (F + λI) x = g.
enum class natural_gradient_solver {
  closed_form,  ///< `categorical_fisher::solve` (Sherman–Morrison; pseudo-inverse at λ = 0)
  conjugate_gradient  ///< `conjugate_gradient` on the matrix-free F
};

/// \brief One natural-gradient step on softmax logits, in place:
/// θ ← θ − η (F + λI)⁻¹ g with F = diag(p) − ppᵀ, p = softmax(θ) (λ = 0: F⁺ g with the closed
/// form; with CG, λ = 0 needs 1ᵀg = 0, which holds for the gradient of any loss of p).
///
/// Returns the solve's report; for the closed form `iterations = 0`, and residual / convergence
/// are those of the returned direction against (F + λI)x = g (λ = 0 and 1ᵀg ≠ 0: the system has
/// no solution and `converged` is false, the step is still the least-squares F⁺g). The step is
/// applied in every case (the CG iterate is a descent direction for the damped quadratic model).
/// Throws as `categorical_fisher::from_logits`, `conjugate_gradient`, plus `invalid_argument` for
/// a non-finite or negative learning rate and `non_finite_input` for NaN/Inf in g.
template <attention_scalar T>
cg_result<T> natural_gradient_step_logits(
    std::span<T> logits, std::type_identity_t<std::span<const T>> grad,
    std::type_identity_t<T> learning_rate, std::type_identity_t<T> damping,
    natural_gradient_solver solver = natural_gradient_solver::closed_form,
    const std::type_identity_t<cg_options<T>>& options = {}) {
  if (!(std::isfinite(learning_rate) && learning_rate >= T(0))) {
    std::ostringstream os;
    os << "invalid argument: learning_rate = " << learning_rate << ", expected a finite value >= 0";
    throw invalid_argument(os.str());
  }
  const auto fisher = categorical_fisher<T>::from_logits(std::span<const T>(logits));
  require_dimension("grad.size()", grad.size(), logits.size());
  require_finite<T>("grad", grad);
  std::vector<T> x(logits.size());
  cg_result<T> res;
  if (solver == natural_gradient_solver::closed_form) {
    detail::require_cg_options(options);
    fisher.solve(grad, damping, x);
    std::vector<T> r(x.size()), tmp(x.size());
    const T rr = detail::true_residual<T>(fisher, damping, grad, x, tmp, r);
    const T g_norm = std::sqrt(kernels::dot(grad.data(), grad.data(), grad.size()));
    res.applications = 1;
    res.residual_norm = std::sqrt(rr);
    res.relative_residual = g_norm > T(0) ? res.residual_norm / g_norm : T(0);
    res.converged = res.residual_norm <= options.tolerance * g_norm;
  } else {
    res = conjugate_gradient<T>(fisher, grad, x, damping, options);
  }
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(logits[i])) logits[i] -= learning_rate * x[i];  // −inf stays masked
  return res;
}

/// \brief Settings of `natural_gradient_optimizer`.
template <attention_scalar T>
struct natural_gradient_config {
  /// Step size η; finite and > 0.
  T learning_rate = T(0.1);
  /// Damping (Tikhonov) λ added to the Fisher; finite and ≥ 0.
  T damping = T(1e-3);
  /// Conjugate-gradient settings of each step's solve.
  cg_options<T> cg{};
};

/// \brief Natural-gradient descent θ ← θ − η (F + λI)⁻¹ g for a generic parameter vector, with
/// the Fisher given as any `linear_operator` (e.g. `empirical_fisher`, `categorical_fisher`, or a
/// Gauss–Newton product wrapped by `make_operator`). The solve is damped CG from x₀ = 0.
///
/// Stateless apart from its configuration: immutable, safe to share across threads.
template <attention_scalar T>
class natural_gradient_optimizer {
 public:
  using value_type = T;

  /// Validates the configuration (`invalid_config`: η ≤ 0, λ < 0, non-finite, bad CG options).
  explicit natural_gradient_optimizer(const natural_gradient_config<T>& config = {})
      : config_(config) {
    if (!(std::isfinite(config.learning_rate) && config.learning_rate > T(0))) {
      std::ostringstream os;
      os << "invalid config: learning_rate = " << config.learning_rate
         << ", expected a finite value > 0";
      throw invalid_config(os.str());
    }
    if (!(std::isfinite(config.damping) && config.damping >= T(0))) {
      std::ostringstream os;
      os << "invalid config: damping = " << config.damping << ", expected a finite value >= 0";
      throw invalid_config(os.str());
    }
    detail::require_cg_options(config.cg, "cg");
  }

  [[nodiscard]] const natural_gradient_config<T>& config() const noexcept { return config_; }

  /// direction = (F + λI)⁻¹ g by damped CG (no parameter update).
  template <class Op>
  requires linear_operator<Op, T> cg_result<T> direction(std::span<const T> grad, const Op& fisher,
                                                         std::span<T> direction)
  const {
    cg_options<T> o = config_.cg;
    o.warm_start = false;
    return conjugate_gradient<T>(fisher, grad, direction, config_.damping, o);
  }

  /// params ← params − η (F + λI)⁻¹ grad; returns the CG report. The step is applied even when
  /// CG stops at the cap (its iterate is a descent direction of the damped quadratic model).
  /// Throws `dimension_mismatch` unless |params| = |grad| = fisher.size(), `non_finite_input`
  /// for NaN/Inf in params or grad.
  template <class Op>
  requires linear_operator<Op, T> cg_result<T> step(std::span<T> params, std::span<const T> grad,
                                                    const Op& fisher)
  const {
    require_dimension("params.size()", params.size(), static_cast<std::size_t>(fisher.size()));
    require_dimension("grad.size()", grad.size(), static_cast<std::size_t>(fisher.size()));
    require_finite<T>("params", params);
    require_finite<T>("grad", grad);
    std::vector<T> x(params.size());
    const cg_result<T> res = direction(grad, fisher, x);
    kernels::axpy(-config_.learning_rate, x.data(), params.data(), params.size());
    return res;
  }

  /// Convenience for softmax logits: `natural_gradient_step_logits` with this configuration and
  /// the closed-form solve.
  cg_result<T> step_logits(std::span<T> logits, std::span<const T> grad) const {
    return natural_gradient_step_logits<T>(logits, grad, config_.learning_rate, config_.damping,
                                           natural_gradient_solver::closed_form, config_.cg);
  }

 private:
  natural_gradient_config<T> config_;
};

}  // namespace ruvector::attention
