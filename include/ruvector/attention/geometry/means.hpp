#pragma once
/// \file geometry/means.hpp
/// \brief Weighted means of manifold points: the Fréchet (Karcher) mean on any `manifold`, and
/// the Einstein midpoint of hyperbolic points.
///
/// Fréchet mean (Karcher 1977, "Riemannian center of mass and mollifier smoothing"; the fixed-point
/// iteration of Pennec 2006, "Intrinsic Statistics on Riemannian Manifolds"):
///
///     m* = argmin_m ½ Σᵢ wᵢ d(m, xᵢ)²,    grad = −Σᵢ wᵢ log_m(xᵢ)   (wᵢ normalised to Σ wᵢ = 1)
///     m₀ = exp₀(Σᵢ wᵢ log₀(xᵢ)),           m_{k+1} = exp_{m_k}(step · Σᵢ wᵢ log_{m_k}(xᵢ))
///
/// stopping when ‖Σᵢ wᵢ log_m(xᵢ)‖_m ≤ tolerance (converged) or after max_iterations trial steps
/// (not converged). A trial step is accepted only if it decreases ½ Σ w d² enough (Armijo),
/// otherwise the step is halved (see the loop): step 1 alone oscillates for points spread far apart
/// in negative curvature. On Hadamard manifolds (the hyperbolic models) the minimiser is unique; on
/// spheres the points must lie in an open hemisphere-sized ball. Convergence is reported in
/// `frechet_result`, never thrown. If m₀ is not finite (e.g. log₀ of an antipode of the sphere's
/// origin), the iteration starts at the first point of largest weight instead; if the gradient
/// becomes non-finite the iteration stops at the last finite iterate (reported as not converged).
///
/// Einstein midpoint (Ungar 2008, "Analytic Hyperbolic Geometry and Albert Einstein's Special
/// Theory of Relativity", §6; Gulcehre et al. 2019, "Hyperbolic Attention Networks", eq. 9): in
/// the Klein model, with Lorentz factors γᵢ = 1/√(1 − c‖kᵢ‖²),
///
///     m_K = Σᵢ wᵢ γᵢ kᵢ / Σᵢ wᵢ γᵢ.
///
/// For Poincaré points kᵢ = 2xᵢ/(1 + c‖xᵢ‖²), γᵢ = (1 + c‖xᵢ‖²)/(1 − c‖xᵢ‖²) and γᵢkᵢ = λ_{xᵢ}xᵢ,
/// so m_K = Σ wᵢλᵢxᵢ / Σ wᵢγᵢ is formed from the Poincaré coordinates directly (one pass, no
/// Klein coordinates stored) and returned as the Poincaré point m_K/(1 + √κ), κ = 1 − c‖m_K‖².
/// When the midpoint is near the boundary (κ < 1/16), κ = (p − √c‖s‖)(p + √c‖s‖)/p² with
/// p = Σ wᵢγᵢ, s = Σ wᵢλᵢxᵢ is re-evaluated from the sum of non-negative terms
///
///     p − √c‖s‖ = Σᵢ wᵢ [(1 − rᵢ)² + √c‖xᵢ − ‖xᵢ‖u‖²/‖xᵢ‖] / (1 − rᵢ²),   rᵢ = √c‖xᵢ‖, u = s/‖s‖,
///
/// in a second pass, instead of the difference 1 − c‖m_K‖², which there cancels to about half
/// the digits (Klein coordinates compress the boundary quadratically).
///
/// Weights must be finite and ≥ 0 with a positive sum (`invalid_argument`, or
/// `non_finite_input` for NaN/Inf); they are normalised inside. Zero-weight points are skipped
/// by the arithmetic but still validated by the Einstein midpoint. Errors raised while reading a
/// point name its row. `out` must not overlap `points`. The Fréchet mean allocates its scratch
/// (4 ambient vectors) once per call; the Einstein midpoints do not allocate.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/geometry/models.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/kernels/reduce.hpp"

namespace ruvector::attention {

/// \brief Options of `frechet_mean`.
struct frechet_options {
  /// Largest number of updates m ← exp_m(step·grad).
  std::size_t max_iterations = 100;
  /// Stop when the Riemannian norm ‖Σ wᵢ log_m xᵢ‖_m is ≤ this (≥ 0).
  double tolerance = 1e-6;
  /// Step size of each update (> 0); 1 is the classical Karcher fixed point.
  double step = 1.0;
};

/// \brief What `frechet_mean` did.
struct frechet_result {
  /// Updates performed.
  std::size_t iterations = 0;
  /// True when the gradient norm reached the tolerance.
  bool converged = false;
  /// The Riemannian norm of Σ wᵢ log_m xᵢ at the returned point.
  double gradient_norm = 0.0;
};

namespace detail {

/// Validates weights (finite, ≥ 0, positive sum) and returns their sum.
template <class T>
double means_weight_sum(std::string_view fn, std::span<const T> w) {
  double sum = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i])) throw_non_finite(geo_what(fn, "weights"), i, w[i]);
    if (w[i] < T(0)) {
      std::ostringstream os;
      os << "invalid argument: " << fn << ": weights[" << i << "] = " << w[i] << ", expected >= 0";
      throw invalid_argument(os.str());
    }
    sum += static_cast<double>(w[i]);
  }
  if (!(sum > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": weights sum to " << sum << ", expected a positive sum";
    throw invalid_argument(os.str());
  }
  return sum;
}

/// Row i of a row-major view as a span of `cols` values.
template <class T>
std::span<const T> means_row(const matrix_cref<T>& m, std::size_t i) noexcept {
  return std::span<const T>(m.data() + static_cast<std::ptrdiff_t>(i) * m.outerStride(),
                            static_cast<std::size_t>(m.cols()));
}

/// Shared argument checks of the means: non-empty points, weights/out sizes, weights.
template <class T>
double means_check_args(std::string_view fn, const matrix_cref<T>& points,
                        std::span<const T> weights, std::span<T> out) {
  const auto n = static_cast<std::size_t>(points.rows());
  require_non_empty(geo_what(fn, "points"), n);
  geo_require_size(fn, "weights", weights.size(), n);
  geo_require_size(fn, "out (points.cols())", out.size(), static_cast<std::size_t>(points.cols()));
  return means_weight_sum(fn, weights);
}

}  // namespace detail

/// \brief The weighted Fréchet (Karcher) mean of the rows of `points` (ambient coordinates of
/// `m`) into `out`; see the file comment. Works for any `manifold`.
template <manifold M>
frechet_result frechet_mean(const M& m, const matrix_cref<typename M::value_type>& points,
                            std::span<const typename M::value_type> weights,
                            std::span<typename M::value_type> out,
                            const frechet_options& options = {}) {
  using T = typename M::value_type;
  constexpr std::string_view fn = "frechet_mean";
  const double wsum = detail::means_check_args<T>(fn, points, weights, out);
  if (!(std::isfinite(options.tolerance) && options.tolerance >= 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": options.tolerance = " << options.tolerance
       << ", expected finite and >= 0";
    throw invalid_argument(os.str());
  }
  if (!(std::isfinite(options.step) && options.step > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: " << fn << ": options.step = " << options.step
       << ", expected finite and > 0";
    throw invalid_argument(os.str());
  }
  const auto n = static_cast<std::size_t>(points.rows());
  const std::size_t d = out.size();
  std::vector<T> buffer(6 * d);
  std::span<T> cur(buffer.data(), d);
  std::span<T> next(buffer.data() + d, d);
  std::span<T> grad(buffer.data() + 2 * d, d);
  std::span<T> grad_next(buffer.data() + 3 * d, d);
  std::span<T> tmp(buffer.data() + 4 * d, d);
  std::span<T> move(buffer.data() + 5 * d, d);
  const auto weight = [&](std::size_t i) { return static_cast<T>(weights[i] / wsum); };
  const auto all_finite = [](std::span<const T> v) {
    return std::all_of(v.begin(), v.end(), [](T a) { return std::isfinite(a); });
  };

  // m₀ = exp₀(Σ w log₀ x); every row is validated here (errors name the row).
  std::fill(grad.begin(), grad.end(), T(0));
  for (std::size_t i = 0; i < n; ++i) {
    try {
      m.log0(detail::means_row(points, i), tmp);
    } catch (const error& e) {
      detail::geo_rethrow_for_row(e, fn, "points", i);
    }
    if (weights[i] > T(0)) kernels::axpy(weight(i), tmp.data(), grad.data(), d);
  }
  m.exp0(std::span<const T>(grad), cur);
  if (!all_finite(cur)) {
    const std::size_t heaviest = static_cast<std::size_t>(
        std::max_element(weights.begin(), weights.end()) - weights.begin());
    const auto row = detail::means_row(points, heaviest);
    std::copy(row.begin(), row.end(), cur.begin());
  }

  // g = Σ w log_at(x); returns ‖g‖_at (infinity when not finite).
  const auto gradient = [&](std::span<const T> at, std::span<T> g) {
    std::fill(g.begin(), g.end(), T(0));
    for (std::size_t i = 0; i < n; ++i) {
      if (!(weights[i] > T(0))) continue;
      m.log(at, detail::means_row(points, i), tmp);
      kernels::axpy(weight(i), tmp.data(), g.data(), d);
    }
    const std::span<const T> gc(g);
    const double g2 = static_cast<double>(m.inner(at, gc, gc));
    const double gn = std::sqrt(std::max(g2, 0.0));
    return std::isfinite(gn) ? gn : std::numeric_limits<double>::infinity();
  };

  // f(at) = ½ Σ w d(at, x)², the objective.
  const auto objective = [&](std::span<const T> at) {
    double acc = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!(weights[i] > T(0))) continue;
      const double di = static_cast<double>(m.distance(at, detail::means_row(points, i)));
      acc += 0.5 * static_cast<double>(weight(i)) * di * di;
    }
    return acc;
  };

  // Step control (Armijo backtracking on f): a trial m' = exp_m(t·g) is accepted when
  // f(m') ≤ f(m) − 10⁻⁴·t·‖g‖²_m (with a rounding slack of a few ulps of f), otherwise t is
  // halved. Step 1 (the Karcher fixed point) is accepted whenever it decreases f enough — always
  // for clustered points — but for points spread far apart in negative curvature the Hessian of f
  // reaches Σ w √c·d·coth(√c·d) ≫ 1 and step 1 oscillates; the halving then finds a descent
  // step. After an accepted trial t grows back (×2, at most options.step). Every trial counts as
  // an iteration, so max_iterations bounds the work.
  frechet_result result;
  const T max_step = static_cast<T>(options.step);
  T step = max_step;
  double gn = gradient(std::span<const T>(cur), grad);
  double f_cur = objective(std::span<const T>(cur));
  const double slack = 8.0 * static_cast<double>(std::numeric_limits<T>::epsilon());
  constexpr int max_halvings = 60;
  int halvings = 0;
  for (;;) {
    result.gradient_norm = gn;
    if (!std::isfinite(gn)) break;
    if (gn <= options.tolerance) {
      result.converged = true;
      break;
    }
    if (result.iterations >= options.max_iterations || halvings > max_halvings) break;
    std::copy(grad.begin(), grad.end(), move.begin());
    kernels::scale(step, move.data(), d);
    m.exp(std::span<const T>(cur), std::span<const T>(move), next);
    ++result.iterations;
    const double f_next = all_finite(next) ? objective(std::span<const T>(next))
                                           : std::numeric_limits<double>::infinity();
    bool accept = f_next <= f_cur - 1e-4 * static_cast<double>(step) * gn * gn;
    double gn_next = std::numeric_limits<double>::infinity();
    if (std::isfinite(f_next)) {
      gn_next = gradient(std::span<const T>(next), grad_next);
      // Without sufficient decrease (f is only resolved to its rounding, which for distances
      // computed in float is far coarser than ε·f), a step is still taken when it lowers the
      // gradient norm, or when it is the full Karcher step and f is flat to rounding.
      accept = accept || gn_next < gn || (step == max_step && f_next <= f_cur + slack * f_cur);
    }
    if (accept) {
      std::swap(cur, next);
      std::swap(grad, grad_next);
      f_cur = f_next;
      gn = gn_next;
      step = std::min(max_step, step * T(2));
      halvings = 0;
    } else {
      step /= T(2);
      ++halvings;
    }
  }
  std::copy(cur.begin(), cur.end(), out.begin());
  return result;
}

/// \brief The weighted Einstein midpoint of the Poincaré points in the rows of `points` (ball
/// of `ball`), returned as a Poincaré point (projected onto the ball of radius max_norm); see
/// the file comment.
template <attention_scalar T>
void einstein_midpoint(const poincare_ball<T>& ball,
                       const std::type_identity_t<matrix_cref<T>>& points,
                       std::type_identity_t<std::span<const T>> weights,
                       std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "einstein_midpoint";
  const double wsum = detail::means_check_args<T>(fn, points, weights, out);
  const auto n = static_cast<std::size_t>(points.rows());
  const std::size_t d = out.size();
  const T c = ball.c();
  const double sqrt_c = std::sqrt(static_cast<double>(c));
  std::fill(out.begin(), out.end(), T(0));
  double p = 0.0;  // Σ w γ (weights normalised)
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = detail::means_row(points, i);
    const T xx = kernels::dot(x.data(), x.data(), d);
    const T b = T(1) - c * xx;
    if (!(b > T(0))) {
      try {
        detail::geo_throw_not_in_ball(fn, "x", x, c * xx);
      } catch (const error& e) {
        detail::geo_rethrow_for_row(e, fn, "points", i);
      }
    }
    if (!(weights[i] > T(0))) continue;
    const double w = static_cast<double>(weights[i]) / wsum;
    p += w * (2.0 - static_cast<double>(b)) / static_cast<double>(b);  // γ = (1 + c‖x‖²)/β
    kernels::axpy(static_cast<T>(2.0 * w / static_cast<double>(b)), x.data(), out.data(), d);
  }
  // out = s = Σ w λ x;  m_K = s/p;  result = m_K/(1 + √κ).
  const double ss = static_cast<double>(kernels::dot(out.data(), out.data(), d));
  const double ns = std::sqrt(ss);
  double kappa = 1.0 - static_cast<double>(c) * ss / (p * p);
  if (kappa < 1.0 / 16.0 && ns > 0.0) {
    double gap = 0.0;  // p − √c‖s‖ as a sum of non-negative terms
    for (std::size_t i = 0; i < n; ++i) {
      if (!(weights[i] > T(0))) continue;
      const auto x = detail::means_row(points, i);
      const double w = static_cast<double>(weights[i]) / wsum;
      const T xx = kernels::dot(x.data(), x.data(), d);
      const double nx = std::sqrt(static_cast<double>(xx));
      const double b = 1.0 - static_cast<double>(c * xx);
      const double r = sqrt_c * nx;
      const double one_minus_r = b / (1.0 + r);
      double spread = 0.0;
      if (nx > 0.0) {
        spread = sqrt_c *
                 static_cast<double>(
                     detail::geo_pair_norms(x.data(), out.data(), static_cast<T>(-nx / ns), d).zz) /
                 nx;
      }
      gap += w * (one_minus_r * one_minus_r + spread) / b;
    }
    kappa = gap * (p + sqrt_c * ns) / (p * p);
  }
  kappa = std::max(kappa, 0.0);
  kernels::scale(static_cast<T>(1.0 / (p * (1.0 + std::sqrt(kappa)))), out.data(), d);
  const T oo = kernels::dot(out.data(), out.data(), d);
  const T max_norm = ball.max_norm();
  if (oo > max_norm * max_norm) kernels::scale(max_norm / std::sqrt(oo), out.data(), d);
}

/// \brief The weighted Einstein midpoint of Klein points (rows of `klein_points`, curvature −c),
/// returned in Klein coordinates: m_K = Σ wᵢγᵢkᵢ / Σ wᵢγᵢ, γᵢ = 1/√(1 − c‖kᵢ‖²). A convex
/// combination, so it lies in the Klein ball whenever the inputs do (no projection applied).
template <attention_scalar T>
void einstein_midpoint_klein(T c, const std::type_identity_t<matrix_cref<T>>& klein_points,
                             std::type_identity_t<std::span<const T>> weights,
                             std::type_identity_t<std::span<T>> out) {
  constexpr std::string_view fn = "einstein_midpoint_klein";
  detail::models_require_c(fn, c);
  const double wsum = detail::means_check_args<T>(fn, klein_points, weights, out);
  const auto n = static_cast<std::size_t>(klein_points.rows());
  const std::size_t d = out.size();
  std::fill(out.begin(), out.end(), T(0));
  double den = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = detail::means_row(klein_points, i);
    const T kk = kernels::dot(k.data(), k.data(), d);
    const T b = T(1) - c * kk;
    if (!(b > T(0))) {
      try {
        detail::geo_throw_not_in_ball(fn, "k", k, c * kk, "Klein ball");
      } catch (const error& e) {
        detail::geo_rethrow_for_row(e, fn, "klein_points", i);
      }
    }
    if (!(weights[i] > T(0))) continue;
    const double wg = static_cast<double>(weights[i]) / wsum / std::sqrt(static_cast<double>(b));
    den += wg;
    kernels::axpy(static_cast<T>(wg), k.data(), out.data(), d);
  }
  kernels::scale(static_cast<T>(1.0 / den), out.data(), d);
}

}  // namespace ruvector::attention
