#pragma once
/// \file pde/diffusion.hpp
/// \brief Heat diffusion on a graph, x(t) = exp(−tL)·x, the solution of the heat equation
/// dx/dt = −L x (theory 6; Kondor & Lafferty 2002, "Diffusion kernels on graphs"), by two
/// methods, for any `laplacian_operator` (dense or sparse; D − W, L_sym or L_rw):
///
/// - **Explicit Euler**: x ← x − h·L x, repeated. With every eigenvalue of L real in [0, λ_max]
///   each mode is multiplied per step by 1 − hλ, which is bounded iff h·λ_max ≤ 2 (the stability
///   bound). The bound is **enforced**: a caller's step dt is first rounded down to h = t/⌈t/dt⌉
///   and, if h·λ_max > 2, the interval is split into ⌈t·λ_max/2⌉ steps; the report says how many
///   steps were requested, how many were taken and whether a split happened. Global error O(h).
/// - **Chebyshev** (Hammond, Vandergheynst & Gribonval 2011; Saad 1992): with λ = (b/2)(1 + u),
///   u ∈ [−1, 1], b = λ_max and α = t·b/2, the generating function of the modified Bessel
///   functions gives
///
///       exp(−tλ) = e^{−α} [ I_0(α) + 2 Σ_{k≥1} (−1)^k I_k(α) T_k(u) ],
///
///   so exp(−tL)x ≈ Σ_{k≤K} c_k T_k(L̃)x with L̃ = (2/b)L − I, c_0 = e^{−α}I_0(α),
///   c_k = 2(−1)^k e^{−α}I_k(α), and T_{k+1}(L̃)x = 2L̃·T_k(L̃)x − T_{k−1}(L̃)x (K products
///   with L). Since |T_k| ≤ 1 on [−1, 1], the truncation error of the scalar function is
///   uniformly at most ε_K = 2 Σ_{k>K} e^{−α}I_k(α); the degree K is the smallest with
///   ε_K ≤ tolerance. Hence for symmetric L (D − W, L_sym) with spectrum in [0, b]:
///
///       ‖p_K(L)x − exp(−tL)x‖₂ ≤ ε_K·‖x‖₂        (exact arithmetic)
///
///   plus rounding of about (K + 1)·ε_machine·‖x‖₂. L_rw = D^{-1/2} L_sym D^{1/2} has the same
///   bound in the D-weighted norm (‖·‖₂ bound × √(max d / min d)). K grows like
///   √(2α·ln(1/tol)) for large α, against ≈ t·λ_max steps for stable Euler.
///   The scaled Bessel values e^{−α}I_k(α) are computed in double by the power series for α ≤ 1
///   and by Miller's backward recurrence I_{k−1} = (2k/α)I_k + I_{k+1}, normalised by
///   I_0 + 2Σ I_k = e^α, for α > 1 (no overflow for any α).
/// - **Multiscale**: several times in one call. Chebyshev shares the vectors T_k(L̃)x (they do
///   not depend on t): one recurrence of the largest degree feeds every output with its own
///   coefficients. Euler integrates the sorted times in sequence (semigroup property).
///
/// Conventions: times are finite and ≥ 0 (t = 0 returns x exactly); the spectral bound defaults to
/// the operator's `lambda_max_bound()` (Gershgorin) and may be overridden with any value ≥ the
/// true λ_max (a smaller value voids the error bound and the Euler stability guarantee). `out`
/// may alias `x`. Inputs are checked for NaN/Inf. Parameters (times, dt, tolerance, bound) are
/// doubles; the vectors are T.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/pde/laplacian.hpp"

namespace ruvector::attention {

/// \brief How exp(−tL)x is computed.
enum class diffusion_method {
  euler,      ///< explicit Euler with the stability bound enforced
  chebyshev,  ///< Chebyshev–Bessel expansion to a tolerance
};

/// \brief Options of a diffusion call.
struct diffusion_options {
  /// Method.
  diffusion_method method = diffusion_method::chebyshev;
  /// Chebyshev truncation tolerance ε (relative to ‖x‖₂), in [1e-15, 1); default 1e-7 for float,
  /// 1e-12 for double.
  std::optional<double> tolerance{};
  /// Requested Euler step (> 0); reduced automatically for stability.
  double dt = 0.1;
  /// Spectral upper bound b ≥ λ_max(L); default: the operator's Gershgorin bound.
  std::optional<double> lambda_max{};
  /// Largest Chebyshev degree allowed (otherwise `invalid_argument`).
  std::size_t max_degree = std::size_t{1} << 16;
  /// Largest number of Euler steps allowed (otherwise `invalid_argument`).
  std::size_t max_steps = std::size_t{1} << 24;
};

/// \brief What a diffusion call did.
struct diffusion_report {
  diffusion_method method = diffusion_method::chebyshev;  ///< method used
  double lambda_max = 0.0;                                ///< spectral bound used
  std::size_t matvecs = 0;                                ///< products with L
  std::size_t requested_steps = 0;   ///< Euler: Σ ⌈Δt/dt⌉ over the time segments
  std::size_t euler_steps = 0;       ///< Euler: steps actually taken
  bool split = false;                ///< Euler: dt was reduced to satisfy h·λ_max ≤ 2
  double step = 0.0;                 ///< Euler: largest step h used
  std::size_t chebyshev_degree = 0;  ///< Chebyshev: largest degree K used
  double error_bound = 0.0;          ///< Chebyshev: largest truncation bound ε_K (see file)
};

/// \brief Chebyshev coefficients of exp(−tλ) on [0, b] (see the file comment).
struct chebyshev_heat_series {
  std::vector<double> coefficients;  ///< c_0 … c_K
  double alpha = 0.0;                ///< α = t·b/2
  double error_bound = 0.0;          ///< ε_K = 2 Σ_{k>K} e^{−α} I_k(α)
};

namespace detail {

/// e^{−α} I_k(α) for k = 0 … N (α ≥ 0), N chosen so that the neglected values are < 1e-20.
[[nodiscard]] inline std::vector<double> scaled_bessel_i(double alpha) {
  if (alpha == 0.0) return {1.0};
  const auto n = static_cast<std::size_t>(40.0 + std::ceil(10.0 * std::sqrt(alpha)));
  std::vector<double> r(n + 1, 0.0);
  if (alpha <= 1.0) {
    // Power series I_k(α) = Σ_m (α/2)^{2m+k} / (m!(m+k)!), scaled by e^{−α}.
    const double h = alpha / 2.0, h2 = h * h, scale = std::exp(-alpha);
    double lead = 1.0;  // (α/2)^k / k!
    for (std::size_t k = 0; k <= n; ++k) {
      if (k > 0) lead *= h / static_cast<double>(k);
      double term = lead, sum = 0.0;
      for (std::size_t m = 1; m < 64 && term > 0.0; ++m) {
        sum += term;
        if (term < sum * 1e-18) break;
        term *= h2 / (static_cast<double>(m) * static_cast<double>(m + k));
      }
      r[k] = sum * scale;
    }
    return r;
  }
  // Miller's backward recurrence from M = N + 30 + √N with I_{M+1} = 0, I_M = 1, rescaled to
  // stay below 1e200, then normalised by I_0 + 2 Σ I_k = e^α.
  const std::size_t m = n + 30 + static_cast<std::size_t>(std::sqrt(static_cast<double>(n)));
  std::vector<double> all(m + 2, 0.0);
  all[m] = 1.0;
  for (std::size_t k = m; k >= 1; --k) {
    all[k - 1] = (2.0 * static_cast<double>(k) / alpha) * all[k] + all[k + 1];
    if (all[k - 1] > 1e200) {
      for (std::size_t j = k - 1; j <= m; ++j) all[j] *= 1e-200;
    }
  }
  double s = all[0];
  for (std::size_t k = 1; k <= m; ++k) s += 2.0 * all[k];
  for (std::size_t k = 0; k <= n; ++k) r[k] = all[k] / s;
  return r;
}

/// Validates a time.
inline void require_time(double t, std::size_t index) {
  if (!std::isfinite(t) || t < 0.0) {
    std::ostringstream os;
    os << "invalid argument: times[" << index << "] = " << t << ", expected a finite t >= 0";
    throw invalid_argument(os.str());
  }
}

/// The tolerance to use for T.
template <class T>
[[nodiscard]] double resolve_tolerance(const diffusion_options& o) {
  const double tol = o.tolerance ? *o.tolerance : (std::is_same_v<T, float> ? 1e-7 : 1e-12);
  require_argument(std::isfinite(tol) && tol >= 1e-15 && tol < 1.0,
                   "diffusion_options.tolerance must lie in [1e-15, 1)");
  return tol;
}

/// The spectral bound to use.
template <class Op>
[[nodiscard]] double resolve_lambda_max(const Op& op, const diffusion_options& o) {
  if (o.lambda_max) {
    require_argument(std::isfinite(*o.lambda_max) && *o.lambda_max >= 0.0,
                     "diffusion_options.lambda_max must be finite and >= 0");
    return *o.lambda_max;
  }
  return static_cast<double>(op.lambda_max_bound());
}

/// Number of Euler steps for an interval of length `t` (see the file comment).
struct euler_plan {
  std::size_t requested = 0;
  std::size_t steps = 0;
  double h = 0.0;
};

[[nodiscard]] inline euler_plan plan_euler(double t, double dt, double lambda_max,
                                           std::size_t max_steps) {
  euler_plan p;
  if (t == 0.0) return p;
  const double ratio = t / dt;
  require_argument(ratio < 1e18, "heat diffusion: t/dt is too large for explicit Euler");
  p.requested = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(ratio * (1 - 1e-12))));
  p.steps = p.requested;
  if (lambda_max > 0.0 && (t / static_cast<double>(p.steps)) * lambda_max > 2.0) {
    const double need = t * lambda_max / 2.0;
    require_argument(need < 1e18, "heat diffusion: t·lambda_max is too large for explicit Euler");
    p.steps = std::max(p.steps, static_cast<std::size_t>(std::ceil(need)));
    while ((t / static_cast<double>(p.steps)) * lambda_max > 2.0) ++p.steps;
  }
  if (p.steps > max_steps) {
    std::ostringstream os;
    os << "invalid argument: explicit Euler needs " << p.steps << " steps (t = " << t
       << ", dt = " << dt << ", lambda_max = " << lambda_max
       << "), more than max_steps = " << max_steps << "; use diffusion_method::chebyshev";
    throw invalid_argument(os.str());
  }
  p.h = t / static_cast<double>(p.steps);
  return p;
}

/// x ← x − h·L x, `steps` times (y is scratch of n values).
template <class Op, class T>
void euler_steps(const Op& op, T* x, T* y, std::size_t n, double h, std::size_t steps) {
  const T hh = static_cast<T>(h);
  for (std::size_t s = 0; s < steps; ++s) {
    op.apply(std::span<const T>(x, n), std::span<T>(y, n));
    for (std::size_t i = 0; i < n; ++i) x[i] -= hh * y[i];
  }
}

}  // namespace detail

/// \brief Chebyshev coefficients c_0…c_K of exp(−tλ) on [0, lambda_max] with truncation bound
/// ≤ `tolerance` (see the file comment). Throws `invalid_argument` for a negative or non-finite t
/// or bound, a tolerance outside [1e-15, 1), or K > max_degree.
[[nodiscard]] inline chebyshev_heat_series chebyshev_heat_coefficients(
    double t, double lambda_max, double tolerance, std::size_t max_degree = std::size_t{1} << 16) {
  detail::require_time(t, 0);
  require_argument(std::isfinite(lambda_max) && lambda_max >= 0.0,
                   "chebyshev_heat_coefficients: lambda_max must be finite and >= 0");
  require_argument(std::isfinite(tolerance) && tolerance >= 1e-15 && tolerance < 1.0,
                   "chebyshev_heat_coefficients: tolerance must lie in [1e-15, 1)");
  chebyshev_heat_series s;
  s.alpha = t * lambda_max / 2.0;
  require_argument(std::isfinite(s.alpha), "chebyshev_heat_coefficients: t·lambda_max overflows");
  const std::vector<double> b = detail::scaled_bessel_i(s.alpha);
  // tail[k] = 2 Σ_{j>k} b_j, summed from the top (no cancellation).
  std::vector<double> tail(b.size(), 0.0);
  for (std::size_t k = b.size() - 1; k-- > 0;) tail[k] = tail[k + 1] + 2.0 * b[k + 1];
  std::size_t degree = 0;
  while (degree + 1 < b.size() && tail[degree] > tolerance) ++degree;
  if (degree > max_degree) {
    std::ostringstream os;
    os << "invalid argument: Chebyshev heat expansion needs degree " << degree
       << " (t*lambda_max = " << t * lambda_max << ", tolerance = " << tolerance
       << "), more than max_degree = " << max_degree;
    throw invalid_argument(os.str());
  }
  s.error_bound = tail[degree];
  s.coefficients.resize(degree + 1);
  s.coefficients[0] = b[0];
  for (std::size_t k = 1; k <= degree; ++k) s.coefficients[k] = (k % 2 ? -2.0 : 2.0) * b[k];
  return s;
}

/// \brief out(r, :) = exp(−times[r]·L)·x for every r (rows of `out` = times, columns = nodes),
/// sharing work between the times (see the file comment). Throws `dimension_mismatch`
/// (x or out of the wrong size), `non_finite_input` (NaN/Inf in x), `invalid_argument` (bad
/// time, dt, tolerance or bound; too many steps or too high a degree).
template <laplacian_operator Op>
diffusion_report heat_diffuse_multiscale(const Op& op, std::span<const typename Op::value_type> x,
                                         std::span<const double> times,
                                         matrix_ref<typename Op::value_type> out,
                                         const diffusion_options& options = {}) {
  using T = typename Op::value_type;
  const std::size_t n = op.size();
  require_dimension("x.size()", x.size(), n);
  require_dimension("out.rows() (must equal times.size())", static_cast<std::size_t>(out.rows()),
                    times.size());
  require_dimension("out.cols() (must equal x.size())", static_cast<std::size_t>(out.cols()), n);
  require_finite("x", x);
  for (std::size_t r = 0; r < times.size(); ++r) detail::require_time(times[r], r);
  const double b = detail::resolve_lambda_max(op, options);
  diffusion_report rep;
  rep.method = options.method;
  rep.lambda_max = b;
  if (times.empty() || n == 0) return rep;
  const std::vector<T> x0(x.begin(), x.end());  // `out` may alias `x`
  const auto ix = [](std::size_t i) { return static_cast<Eigen::Index>(i); };

  if (options.method == diffusion_method::euler) {
    require_argument(std::isfinite(options.dt) && options.dt > 0.0,
                     "diffusion_options.dt must be finite and > 0");
    std::vector<std::size_t> order(times.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t c) { return times[a] < times[c]; });
    // Plan every segment before doing any work, so a refusal costs nothing.
    std::vector<detail::euler_plan> plans(times.size());
    double prev = 0.0;
    for (std::size_t r = 0; r < order.size(); ++r) {
      plans[r] = detail::plan_euler(times[order[r]] - prev, options.dt, b, options.max_steps);
      prev = times[order[r]];
    }
    std::vector<T> cur = x0, y(n);
    for (std::size_t r = 0; r < order.size(); ++r) {
      const detail::euler_plan& p = plans[r];
      detail::euler_steps(op, cur.data(), y.data(), n, p.h, p.steps);
      rep.requested_steps += p.requested;
      rep.euler_steps += p.steps;
      rep.matvecs += p.steps;
      rep.split = rep.split || p.steps > p.requested;
      rep.step = std::max(rep.step, p.h);
      for (std::size_t i = 0; i < n; ++i) out(ix(order[r]), ix(i)) = cur[i];
    }
    return rep;
  }

  const double tol = detail::resolve_tolerance<T>(options);
  std::vector<chebyshev_heat_series> series;
  series.reserve(times.size());
  std::size_t kmax = 0;
  for (double t : times) {
    series.push_back(chebyshev_heat_coefficients(t, b, tol, options.max_degree));
    kmax = std::max(kmax, series.back().coefficients.size() - 1);
    rep.error_bound = std::max(rep.error_bound, series.back().error_bound);
  }
  rep.chebyshev_degree = kmax;
  const auto accumulate = [&](std::size_t k, const std::vector<T>& u) {
    for (std::size_t r = 0; r < times.size(); ++r) {
      if (k >= series[r].coefficients.size()) continue;
      const T c = static_cast<T>(series[r].coefficients[k]);
      for (std::size_t i = 0; i < n; ++i) out(ix(r), ix(i)) += c * u[i];
    }
  };
  out.setZero();
  std::vector<T> u0 = x0, u1(n), u2(n), y(n);
  accumulate(0, u0);
  if (kmax == 0) return rep;
  // b > 0 here: b = 0 gives α = 0 and degree 0 for every time.
  const T two_over_b = static_cast<T>(2.0 / b);
  op.apply(std::span<const T>(u0), std::span<T>(y));
  for (std::size_t i = 0; i < n; ++i) u1[i] = two_over_b * y[i] - u0[i];
  accumulate(1, u1);
  rep.matvecs = 1;
  for (std::size_t k = 2; k <= kmax; ++k) {
    op.apply(std::span<const T>(u1), std::span<T>(y));
    ++rep.matvecs;
    for (std::size_t i = 0; i < n; ++i) u2[i] = T(2) * (two_over_b * y[i] - u1[i]) - u0[i];
    accumulate(k, u2);
    std::swap(u0, u1);
    std::swap(u1, u2);
  }
  return rep;
}

/// \brief Multiscale diffusion returning a new (times.size() × n) matrix.
template <laplacian_operator Op>
[[nodiscard]] row_matrix<typename Op::value_type> heat_diffuse_multiscale(
    const Op& op, std::span<const typename Op::value_type> x, std::span<const double> times,
    const diffusion_options& options = {}, diffusion_report* report = nullptr) {
  row_matrix<typename Op::value_type> out(static_cast<Eigen::Index>(times.size()),
                                          static_cast<Eigen::Index>(op.size()));
  const diffusion_report r = heat_diffuse_multiscale(op, x, times, out, options);
  if (report) *report = r;
  return out;
}

/// \brief out = exp(−tL)·x by `options.method`; `out` may alias `x`. Throws as
/// `heat_diffuse_multiscale` (and `dimension_mismatch` for out).
template <laplacian_operator Op>
diffusion_report heat_diffuse(const Op& op, std::span<const typename Op::value_type> x, double t,
                              std::span<typename Op::value_type> out,
                              const diffusion_options& options = {}) {
  require_dimension("out.size()", out.size(), op.size());
  const double times[1] = {t};
  return heat_diffuse_multiscale(op, x, std::span<const double>(times, 1),
                                 matrix_view(out.data(), out.empty() ? 0 : 1, out.size()), options);
}

/// \brief exp(−tL)·x as a new vector.
template <laplacian_operator Op>
[[nodiscard]] std::vector<typename Op::value_type> heat_diffuse(
    const Op& op, std::span<const typename Op::value_type> x, double t,
    const diffusion_options& options = {}, diffusion_report* report = nullptr) {
  std::vector<typename Op::value_type> out(op.size());
  const diffusion_report r =
      heat_diffuse(op, x, t, std::span<typename Op::value_type>(out), options);
  if (report) *report = r;
  return out;
}

/// \brief Explicit Euler with requested step `dt` (split automatically for stability).
template <laplacian_operator Op>
diffusion_report heat_euler(const Op& op, std::span<const typename Op::value_type> x, double t,
                            double dt, std::span<typename Op::value_type> out) {
  diffusion_options o;
  o.method = diffusion_method::euler;
  o.dt = dt;
  return heat_diffuse(op, x, t, out, o);
}

/// \brief Chebyshev expansion to `tolerance` (see the file comment for the error bound).
template <laplacian_operator Op>
diffusion_report heat_chebyshev(const Op& op, std::span<const typename Op::value_type> x, double t,
                                std::span<typename Op::value_type> out, double tolerance) {
  diffusion_options o;
  o.method = diffusion_method::chebyshev;
  o.tolerance = tolerance;
  return heat_diffuse(op, x, t, out, o);
}

/// \brief The diffusion energy of x under `op` (xᵀLx; xᵀD L_rw x for the random-walk form),
/// non-increasing along exp(−tL)x. Throws `dimension_mismatch`.
template <laplacian_operator Op>
[[nodiscard]] typename Op::value_type diffusion_energy(const Op& op,
                                                       std::span<const typename Op::value_type> x) {
  return op.energy(x);
}

}  // namespace ruvector::attention
