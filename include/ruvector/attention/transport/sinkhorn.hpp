#pragma once
/// \file transport/sinkhorn.hpp
/// \brief Entropic optimal transport by Sinkhorn's algorithm (Cuturi 2013, "Sinkhorn Distances"),
/// in the log-domain stabilised form of Peyré & Cuturi, "Computational Optimal Transport" §4.4.
///
/// Problem (cost C ∈ R^{n×m}, marginals a ∈ R^n_{>0}, b ∈ R^m_{>0}, Σa = Σb, ε > 0):
///
///     OT_ε = min_{P ≥ 0, P1 = a, Pᵀ1 = b}  ⟨P, C⟩ + ε·KL(P ‖ a bᵀ),
///     KL(P ‖ Q) = Σ_ij P_ij log(P_ij / Q_ij) − P_ij + Q_ij.
///
/// (On the feasible set this differs from ⟨P, C⟩ − ε·H(P) only by a constant, so the plan is the
/// usual Sinkhorn plan.) The solution has the form P_ij = a_i b_j exp((f_i + g_j − C_ij)/ε) with
/// dual potentials f, g, and the log-domain Sinkhorn updates are
///
///     f_i ← −ε · LSE_j( log b_j + (g_j − C_ij)/ε ),     g_j ← −ε · LSE_i( log a_i + (f_i − C_ij)/ε
///     ),
///
/// with LSE the max-subtracted log-sum-exp, so nothing overflows however small ε is (costs of
/// 10³·ε and more are fine). At the optimum OT_ε = ⟨a, f⟩ + ⟨b, g⟩.
///
/// Small ε: Sinkhorn's convergence degrades (sublinear at first) when ε is small against the gaps
/// between costs, because the plan is then close to a sparse (permutation-like) matrix. By default
/// the iterations are preceded by ε-scaling (Schmitzer 2019, "Stabilized sparse scaling
/// algorithms"; Feydy et al. 2019, GeomLoss): one warm-started sweep at each of
/// e_k = (max C − min C)·θ^k for e_k > ε (θ = `epsilon_scaling`, default 0.8), so the potentials
/// reach the final ε already nearly optimal. This only changes the starting point: the fixed point
/// (the plan) is the same.
///
/// Numerical conventions:
/// - All iterations run in double precision whatever T is (C/ε is stored once in double, together
///   with its transpose so both updates stream contiguous rows); the plan is rounded to T at the
///   end.
/// - `epsilon` is absolute, in the units of C; for a regularisation relative to the cost scale pass
///   ε·max|C_ij|.
/// - The marginal error is ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁. After each g-update the column marginals are
///   exact and the row error is Σ_i a_i |exp((f_i − f_i')/ε) − 1| (f' the next f-update), so the
///   stopping test costs nothing extra. `converged` means that error ≤ `tolerance`; the reported
///   `marginal_error` is recomputed from the returned plan.
/// - The total masses must agree to within 1e-6 relative (or 4·(n + m) ulps of T, whichever is
///   larger); b is then rescaled to Σb = Σa exactly, so rounding in the inputs does not put a floor
///   under the attainable marginal error.
/// - Inputs are validated: non-empty C; a.size() = rows, b.size() = cols (`dimension_mismatch`);
///   a, b finite and > 0, masses equal (`invalid_argument`, or `non_finite_input` for NaN/Inf);
///   C finite (`non_finite_input`, when `check_finite`); ε > 0 finite, max_iterations ≥ 1,
///   tolerance ≥ 0 (`invalid_config`).
///
/// Cost: O(n·m) per iteration, parallel over rows/columns with `parallel_for` when n·m ≥ 2¹⁸.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief Parameters of `sinkhorn`.
template <class T>
struct sinkhorn_options {
  /// Entropic regularisation ε > 0, absolute (same units as the cost).
  T epsilon = T(0.05);
  /// Upper bound on the number of (f, g) sweeps at the target ε (ε-scaling sweeps come on top);
  /// ≥ 1.
  std::size_t max_iterations = 1000;
  /// Stop once the marginal L1 error ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ ≤ tolerance (≥ 0; 0 = run to the cap).
  T tolerance = T(1e-6);
  /// ε-scaling factor θ ∈ [0, 1): before the iterations at ε, one warm-started sweep is run at
  /// each e = (max C − min C)·θ^k > ε (Schmitzer 2019; Feydy et al. 2019). 0 disables it.
  T epsilon_scaling = T(0.8);
  /// Throw `non_finite_input` on NaN/Inf in the cost matrix.
  bool check_finite = true;
};

/// \brief The result of `sinkhorn`.
template <class T>
struct sinkhorn_result {
  row_matrix<T> plan;          ///< P, n × m
  T cost = T(0);               ///< ⟨P, C⟩ (accumulated in double)
  T objective = T(0);          ///< ⟨P, C⟩ + ε·KL(P ‖ a bᵀ)
  std::vector<T> f;            ///< row potentials (length n)
  std::vector<T> g;            ///< column potentials (length m)
  std::size_t iterations = 0;  ///< (f, g) sweeps performed (including ε-scaling sweeps)
  T marginal_error = T(0);     ///< ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ of the returned plan
  bool converged = false;      ///< the error reached `tolerance` before `max_iterations`
};

namespace detail {

/// LSE_j(base[j] − row[j]) for j < n, max-subtracted; −inf when every term is −inf.
/// `scratch` holds n doubles.
inline double transport_lse_minus(const double* base, const double* row, std::size_t n,
                                  double* scratch) noexcept {
  for (std::size_t j = 0; j < n; ++j) scratch[j] = base[j] - row[j];
  const double mx = kernels::max(scratch, n);
  if (!(mx > -std::numeric_limits<double>::infinity())) return mx;
  return mx + std::log(kernels::exp_shift_sum(scratch, n, mx));
}

/// out[i] = −LSE_j(base[j] − ce[i·m + j]) for i < n (one Sinkhorn half-step on scaled potentials).
inline void transport_half_step(const double* ce, std::size_t n, std::size_t m, const double* base,
                                double* out) {
  // ≥ 2^17 log-sum-exp terms per chunk (~100 µs): smaller problems stay on the calling thread.
  const std::size_t grain =
      std::max<std::size_t>(1, (std::size_t{1} << 17) / std::max<std::size_t>(m, 1));
  parallel_ranges(n, grain, [&](std::size_t b, std::size_t e) {
    double* scratch = thread_scratch<double, 5>(m);
    for (std::size_t i = b; i < e; ++i) out[i] = -transport_lse_minus(base, ce + i * m, m, scratch);
  });
}

/// Validates a marginal vector: length, finite, > 0; returns its sum.
template <class T>
double validate_marginal(std::string_view what, std::span<const T> x, std::size_t expected) {
  require_dimension(std::string(what).append(".size()"), x.size(), expected);
  double s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) detail::throw_non_finite(what, i, x[i]);
    if (!(x[i] > T(0))) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << i << "] = " << x[i] << ", expected > 0";
      throw invalid_argument(os.str());
    }
    s += static_cast<double>(x[i]);
  }
  return s;
}

/// Throws `invalid_argument` unless the masses agree to the documented tolerance.
template <class T>
void require_equal_mass(double sa, double sb, std::size_t n, std::size_t m) {
  const double tol =
      std::max(1e-6, 4.0 * static_cast<double>(n + m) * std::numeric_limits<T>::epsilon());
  if (std::abs(sa - sb) > tol * std::max(sa, sb)) {
    std::ostringstream os;
    os.precision(17);
    os << "invalid argument: marginals have different total mass: sum(a) = " << sa
       << ", sum(b) = " << sb << ", expected equal within relative " << tol;
    throw invalid_argument(os.str());
  }
}

}  // namespace detail

/// \brief Entropic OT plan between marginals `a` (rows) and `b` (columns) for the cost `cost`;
/// see the file comment for the formulation, stopping rule and validation.
template <attention_scalar T>
[[nodiscard]] sinkhorn_result<T> sinkhorn(
    const std::type_identity_t<matrix_cref<T>>& cost, std::type_identity_t<std::span<const T>> a,
    std::type_identity_t<std::span<const T>> b,
    const std::type_identity_t<sinkhorn_options<T>>& options = {}) {
  const auto n = static_cast<std::size_t>(cost.rows());
  const auto m = static_cast<std::size_t>(cost.cols());
  require_config(std::isfinite(options.epsilon) && options.epsilon > T(0),
                 "sinkhorn: epsilon must be finite and > 0");
  require_config(options.max_iterations >= 1, "sinkhorn: max_iterations must be >= 1");
  require_config(options.tolerance >= T(0) && !std::isnan(options.tolerance),
                 "sinkhorn: tolerance must be >= 0");
  require_config(options.epsilon_scaling >= T(0) && options.epsilon_scaling < T(1),
                 "sinkhorn: epsilon_scaling must be in [0, 1)");
  require_non_empty("cost.rows()", n);
  require_non_empty("cost.cols()", m);
  require_at_most("cost.rows()", n, max_sequence_length);
  require_at_most("cost.cols()", m, max_sequence_length);
  const double sa = detail::validate_marginal<T>("a", a, n);
  const double sb = detail::validate_marginal<T>("b", b, m);
  detail::require_equal_mass<T>(sa, sb, n, m);
  if (options.check_finite)
    require_finite("cost", cost.data(), n, m, static_cast<std::ptrdiff_t>(cost.outerStride()));

  const double eps = static_cast<double>(options.epsilon);
  // C/e in double, row-major (n × m) and transposed (m × n), for the current e of the schedule.
  std::vector<double> ce(n * m), cet(m * n);
  double cmin = std::numeric_limits<double>::infinity(), cmax = -cmin;
  const auto build = [&](double e) {
    for (std::size_t i = 0; i < n; ++i) {
      const T* row = cost.data() + static_cast<std::ptrdiff_t>(i) * cost.outerStride();
      for (std::size_t j = 0; j < m; ++j) {
        const double c = static_cast<double>(row[j]);
        cmin = std::min(cmin, c);
        cmax = std::max(cmax, c);
        ce[i * m + j] = c / e;
        cet[j * n + i] = c / e;
      }
    }
  };
  build(eps);
  std::vector<double> ad(n), loga(n), bd(m), logb(m);
  for (std::size_t i = 0; i < n; ++i) {
    ad[i] = static_cast<double>(a[i]);
    loga[i] = std::log(ad[i]);
  }
  for (std::size_t j = 0; j < m; ++j) {
    bd[j] = static_cast<double>(b[j]) * (sa / sb);
    logb[j] = std::log(bd[j]);
  }

  // Scaled potentials φ = f/ε, ψ = g/ε; base vectors log a + φ and log b + ψ.
  std::vector<double> phi(n), phi_next(n), psi(m, 0.0), base_a(n), base_b(m);
  const auto f_update = [&](std::vector<double>& out) {
    for (std::size_t j = 0; j < m; ++j) base_b[j] = logb[j] + psi[j];
    detail::transport_half_step(ce.data(), n, m, base_b.data(), out.data());
  };
  const auto g_update = [&] {
    for (std::size_t i = 0; i < n; ++i) base_a[i] = loga[i] + phi[i];
    detail::transport_half_step(cet.data(), m, n, base_a.data(), psi.data());
  };

  sinkhorn_result<T> r;
  const double tol = static_cast<double>(options.tolerance);
  // ε-scaling: one sweep at each e_k = max(C) − min(C), ×θ, ... while e_k > ε, warm-starting the
  // potentials (f = e·φ is kept when e changes).
  const double theta = static_cast<double>(options.epsilon_scaling);
  if (theta > 0.0 && cmax - cmin > eps) {
    std::vector<double> schedule;
    for (double e = cmax - cmin; e > eps; e *= theta) schedule.push_back(e);
    double current = eps;
    std::fill(phi.begin(), phi.end(), 0.0);
    for (double e : schedule) {
      build(e);
      for (auto& x : phi) x *= current / e;
      for (auto& x : psi) x *= current / e;
      current = e;
      f_update(phi);
      g_update();
      ++r.iterations;
    }
    build(eps);
    for (auto& x : psi) x *= current / eps;
  }
  f_update(phi);
  for (std::size_t it = 0; it < options.max_iterations; ++it) {
    g_update();  // columns now exact
    ++r.iterations;
    f_update(phi_next);
    // Row marginal error of the plan (φ, ψ): row i sums to a_i·exp(φ_i − φ'_i).
    double err = 0.0;
    for (std::size_t i = 0; i < n; ++i) err += ad[i] * std::abs(std::expm1(phi[i] - phi_next[i]));
    if (err <= tol) {
      r.converged = true;
      break;
    }
    phi.swap(phi_next);
  }

  // Plan, cost, KL and marginal error in double.
  r.plan.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(m));
  std::vector<double> colsum(m, 0.0);
  double total_cost = 0.0, kl = 0.0, mass = 0.0, row_err = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double rs = 0.0;
    for (std::size_t j = 0; j < m; ++j) {
      const double lr = phi[i] + psi[j] - ce[i * m + j];  // log(P_ij / (a_i b_j))
      const double p = ad[i] * bd[j] * std::exp(lr);
      r.plan(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<T>(p);
      rs += p;
      colsum[j] += p;
      total_cost += p * ce[i * m + j] * eps;
      if (p > 0.0) kl += p * lr;
    }
    mass += rs;
    row_err += std::abs(rs - ad[i]);
  }
  double col_err = 0.0;
  for (std::size_t j = 0; j < m; ++j) col_err += std::abs(colsum[j] - bd[j]);
  kl += sa * sa - mass;  // Σ a_i b_j = sa·sb' = sa²
  r.cost = static_cast<T>(total_cost);
  r.objective = static_cast<T>(total_cost + eps * kl);
  r.marginal_error = static_cast<T>(row_err + col_err);
  r.f.resize(n);
  r.g.resize(m);
  for (std::size_t i = 0; i < n; ++i) r.f[i] = static_cast<T>(eps * phi[i]);
  for (std::size_t j = 0; j < m; ++j) r.g[j] = static_cast<T>(eps * psi[j]);
  return r;
}

/// \brief `sinkhorn` with the marginals given as `std::vector`s.
template <attention_scalar T>
[[nodiscard]] sinkhorn_result<T> sinkhorn(
    const std::type_identity_t<matrix_cref<T>>& cost, const std::vector<T>& a,
    const std::vector<T>& b, const std::type_identity_t<sinkhorn_options<T>>& options = {}) {
  return sinkhorn<T>(cost, std::span<const T>(a), std::span<const T>(b), options);
}

}  // namespace ruvector::attention
