#pragma once
/// \file hyperbolic/hyperbolic_attention.hpp
/// \brief Attention between points of the Poincaré ball (Gulcehre et al. 2019, "Hyperbolic
/// Attention Networks"; geometry of Ganea et al. 2018, "Hyperbolic Neural Networks").
///
/// Queries, keys and values are points of the Poincaré ball of curvature −c (c > 0). With
///
///     a_j = 2c‖q − k_j‖² / ((1 − c‖q‖²)(1 − c‖k_j‖²))
///
/// the geodesic distance is d_c(q, k_j) = (1/√c)·arcosh(1 + a_j), evaluated as
/// (1/√c)·log1p(a_j + √(a_j(a_j + 2))) so close points keep their digits, and ‖q − k_j‖² is formed
/// from the difference (kernels::row_squared_distances), never from ‖q‖² + ‖k‖² − 2q·k.
///
/// Scores (`hyperbolic_score`):
/// - `distance`:                s_j = −d_c(q, k_j) / τ
/// - `lorentz_squared_distance`: s_j = −d_L²(q, k_j) / τ, the squared Lorentzian distance
///   d_L² = −2/c − 2⟨x, y⟩_L of the hyperboloid images (Law et al. 2019, "Lorentzian Distance
///   Learning for Hyperbolic Representations"); in ball coordinates d_L² = (2/c)·a_j, a monotone
///   function of d_c that needs no transcendental function.
///
/// Weights w = softmax(s) (max-subtracted; masked keys get weight 0). Aggregation of the values
/// (`hyperbolic_aggregation`):
/// - `tangent_origin`: out = exp₀(Σ_j w_j log₀(v_j)), with log₀(v) = artanh(√c‖v‖)·v/(√c‖v‖) and
///   exp₀(u) = tanh(√c‖u‖)·u/(√c‖u‖). One weighted row sum with per-value coefficients.
/// - `einstein_midpoint`: the weighted Einstein midpoint in the Klein model (Ungar 2008), mapped
///   back to the ball. With k_j = 2v_j/(1 + c‖v_j‖²) and γ_j = 1/√(1 − c‖k_j‖²)
///   = (1 + c‖v_j‖²)/(1 − c‖v_j‖²): m_K = Σ w_j γ_j k_j / Σ w_j γ_j
///   = Σ w_j (2/(1 − c‖v_j‖²)) v_j / Σ w_j γ_j, and out = m_K/(1 + √(1 − c‖m_K‖²)).
/// - `frechet_mean`: the weighted Fréchet (Karcher) mean argmin_m Σ w_j d_c(m, v_j)², by the
///   Riemannian fixed-point iteration of `frechet_mean` (geometry/means.hpp), started at the
///   tangent-space aggregate; the iteration count and convergence are reported by
///   `compute_detailed`.
///
/// Conventions:
/// - Inputs outside the ball are projected onto the ball of radius (1 − eps)/√c
///   (`poincare_ball<T>::default_eps`), as `poincare_ball::project` does; values are projected
///   implicitly (their coefficients are scaled), never copied, except for the Fréchet mean.
/// - A query whose keys are all masked returns the origin (zeros; DESIGN §4) and all-zero weights.
/// - `curvature` follows the seeds' sign convention (negative: −1 is the unit ball); it is a
///   value of the object, so a trainer can rebuild the mechanism with a new curvature.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/attention_args.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/geometry/means.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief How a query is compared with a key.
enum class hyperbolic_score {
  distance,                  ///< s = −d_c(q, k)/τ (geodesic distance of the ball)
  lorentz_squared_distance,  ///< s = −d_L²(q, k)/τ (squared Lorentzian distance, Law et al. 2019)
};

/// \brief How the weighted values are combined into one point of the ball.
enum class hyperbolic_aggregation {
  tangent_origin,     ///< exp₀(Σ w log₀ v) — one pass, the fast default
  einstein_midpoint,  ///< weighted Einstein midpoint in the Klein model — one pass
  frechet_mean,       ///< weighted Karcher mean — iterative (frechet_max_iterations)
};

/// \brief Configuration of `hyperbolic_attention` (the seeds' `HyperbolicAttentionConfig`).
struct hyperbolic_attention_config {
  std::size_t dim = 128;     ///< dimension of queries, keys and values (the ball's dimension)
  double curvature = -1.0;   ///< sectional curvature −c; must be < 0
  double temperature = 1.0;  ///< τ > 0
  hyperbolic_score score = hyperbolic_score::distance;
  hyperbolic_aggregation aggregation = hyperbolic_aggregation::tangent_origin;
  std::size_t frechet_max_iterations = 50;  ///< the seeds' default
  double frechet_tolerance = 1e-5;          ///< on the Riemannian gradient norm (seeds' default)
  bool check_finite = true;                 ///< diagnose NaN/Inf inputs (non_finite_input)
};

/// \brief Output of `hyperbolic_attention::compute_detailed`.
template <class T>
struct hyperbolic_attention_result {
  std::vector<T> output;   ///< aggregated point of the ball (size dim)
  std::vector<T> weights;  ///< attention weights (size n)
  /// Iterations and convergence of the Fréchet mean (`iterations == 0` for the one-pass modes).
  frechet_result frechet;
};

/// \brief Key-side terms of `hyperbolic_attention`, computed once per key set and reused across
/// queries: the (projected) keys' conformal terms 1/(1 − c‖k‖²), computed in double.
template <attention_scalar T>
class hyperbolic_key_set {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return inverse_conformal_.size(); }
  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  /// Keys as used (rows projected into the ball when they were outside it).
  [[nodiscard]] matrix_cref<T> keys() const noexcept {
    return projected_.rows() > 0 ? matrix_cref<T>(projected_) : keys_;
  }
  /// 1/(1 − c‖k_j‖²) per key.
  [[nodiscard]] std::span<const T> inverse_conformal() const noexcept { return inverse_conformal_; }

 private:
  template <attention_scalar>
  friend class hyperbolic_attention;

  hyperbolic_key_set(const matrix_cref<T>& keys, std::size_t dim)
      : keys_(keys), dim_(dim), inverse_conformal_(static_cast<std::size_t>(keys.rows())) {}

  matrix_cref<T> keys_;      // the caller's keys (valid while the caller keeps them alive)
  row_matrix<T> projected_;  // a projected copy, only when some key was outside the ball
  std::size_t dim_;
  std::vector<T> inverse_conformal_;
};

namespace detail {

/// artanh(t)/t for t = √c‖v‖ ∈ [0, 1): the log₀ coefficient (Taylor 1 + t²/3 near 0).
template <class T>
[[nodiscard]] inline T artanh_over(T t) noexcept {
  return t < T(1e-4) ? T(1) + t * t / T(3) : std::atanh(t) / t;
}

/// tanh(t)/t for t ≥ 0: the exp₀ coefficient (Taylor 1 − t²/3 near 0).
template <class T>
[[nodiscard]] inline T tanh_over(T t) noexcept {
  return t < T(1e-4) ? T(1) - t * t / T(3) : std::tanh(t) / t;
}

}  // namespace detail

/// \brief Attention in the Poincaré ball (the seeds' `HyperbolicAttention`), with the score and the
/// aggregation selectable. Models `attention_mechanism` and `masked_attention_mechanism`.
///
/// Cost per query: one pass over the keys (‖q − k‖², fused with ‖k‖² unless a key set is given),
/// O(n) transcendental functions in xsimd batches, one pass over the values for the one-pass
/// aggregations (plus their norms), or `iterations` passes for the Fréchet mean.
template <attention_scalar T>
class hyperbolic_attention {
 public:
  using value_type = T;

  explicit hyperbolic_attention(const hyperbolic_attention_config& config)
      : config_(validated(config)),
        ball_(static_cast<T>(-config.curvature)),
        c_(static_cast<T>(-config.curvature)),
        inv_temperature_(static_cast<T>(1.0 / config.temperature)) {}

  /// Convenience: `hyperbolic_attention(dim, curvature)` with the other fields at their defaults.
  hyperbolic_attention(std::size_t dim, double curvature)
      : hyperbolic_attention(hyperbolic_attention_config{.dim = dim, .curvature = curvature}) {}

  [[nodiscard]] const hyperbolic_attention_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// Sectional curvature −c (negative).
  [[nodiscard]] T curvature() const noexcept { return -c_; }
  [[nodiscard]] const poincare_ball<T>& ball() const noexcept { return ball_; }

  /// \brief Precomputes the key-side terms (and projects keys outside the ball). The key set keeps
  /// a view of `keys` (not a copy) unless a key had to be projected: keep `keys` alive.
  [[nodiscard]] hyperbolic_key_set<T> prepare_keys(const matrix_cref<T>& keys) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim());
    hyperbolic_key_set<T> set(keys, dim());
    const double c = static_cast<double>(c_);
    const double max_sq = static_cast<double>(ball_.max_norm()) * ball_.max_norm();
    for (std::size_t j = 0; j < n; ++j) {
      const T* row = keys.data() + j * static_cast<std::size_t>(keys.outerStride());
      // ‖k‖² by the vectorised kernel; 1 − c‖k‖² is then formed in double.
      double sq = static_cast<double>(kernels::dot(row, row, dim()));
      if (!std::isfinite(sq)) {
        require_finite("keys", keys.data(), n, dim(), keys.outerStride());
        throw non_finite_input("non-finite input: keys");
      }
      if (sq > max_sq) {
        if (set.projected_.rows() == 0) set.projected_ = keys;
        ball_.project(std::span<const T>(row, dim()),
                      std::span<T>(set.projected_.row(static_cast<Eigen::Index>(j)).data(), dim()));
        sq = max_sq;
      }
      set.inverse_conformal_[j] = static_cast<T>(1.0 / (1.0 - c * sq));
    }
    return set;
  }

  /// \brief Writes the attention weights for `query` over a prepared key set into `weights`.
  void weights_into(std::span<const T> query, const hyperbolic_key_set<T>& keys,
                    std::span<T> weights, std::span<const bool> key_mask = {}) const {
    require_dimension("query.size()", query.size(), dim());
    require_dimension("weights.size()", weights.size(), keys.size());
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), keys.size());
    scores(query, keys, weights.data());
    finish_weights(weights.data(), keys.size(), key_mask);
  }

  /// \brief The attention weights of one query (the seeds' `compute_manifold_weights`).
  [[nodiscard]] std::vector<T> compute_weights(std::span<const T> query,
                                               const matrix_cref<T>& keys) const {
    const auto set = prepare_keys(keys);
    std::vector<T> w(set.size());
    weights_into(query, set, w);
    return w;
  }

  /// \brief Attention output for one query over a prepared key set: a point of the ball (size dim).
  void compute_into(std::span<const T> query, const hyperbolic_key_set<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}, std::span<T> weights = {},
                    frechet_result* frechet = nullptr) const {
    const std::size_t n = keys.size();
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("values.cols()", static_cast<std::size_t>(values.cols()), dim());
    require_dimension("out.size()", out.size(), dim());
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);
    T* w = weights.empty() ? detail::thread_scratch<T, 0>(n) : weights.data();
    weights_into(query, keys, std::span<T>(w, n), key_mask);
    aggregate(std::span<const T>(w, n), values, out, frechet);
    if (config_.check_finite && !kernels::all_finite(out.data(), dim()))
      detail::diagnose_vector_inputs<T>(query, keys.keys(), values);
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(dim());
    compute_into(query, prepare_keys(keys), values, out);
    return out;
  }

  /// \brief Attention output for one query over a prepared key set.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const hyperbolic_key_set<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(dim());
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible; the seeds' `compute_with_mask`).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(dim());
    compute_into(query, prepare_keys(keys), values, out, key_mask);
    return out;
  }

  /// \brief Output, weights and the Fréchet-mean report in one call.
  [[nodiscard]] hyperbolic_attention_result<T> compute_detailed(
      std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
      std::span<const bool> key_mask = {}) const {
    hyperbolic_attention_result<T> r{
        std::vector<T>(dim()), std::vector<T>(static_cast<std::size_t>(keys.rows())), {}};
    compute_into(query, prepare_keys(keys), values, r.output, key_mask, r.weights, &r.frechet);
    return r;
  }

  /// \brief Every row of `queries` against one key set: row i of the result is the output of query
  /// i. Queries run in parallel (`parallel_for`); the key-side terms are computed once.
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            const matrix_cref<T>& keys,
                                            const matrix_cref<T>& values) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim());
    const auto set = prepare_keys(keys);
    row_matrix<T> out(queries.rows(), static_cast<Eigen::Index>(dim()));
    parallel_for(0, static_cast<std::size_t>(queries.rows()), [&](std::size_t i) {
      const auto row = static_cast<Eigen::Index>(i);
      compute_into(std::span<const T>(queries.row(row).data(), dim()), set, values,
                   std::span<T>(out.row(row).data(), dim()));
    });
    return out;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

 private:
  static const hyperbolic_attention_config& validated(const hyperbolic_attention_config& c) {
    require_config(c.dim > 0, "hyperbolic_attention: dim must be > 0");
    require_at_most("dim", c.dim, max_dimension);
    require_config(std::isfinite(c.curvature) && c.curvature < 0.0,
                   "hyperbolic_attention: curvature must be finite and < 0 (the ball has "
                   "curvature -c)");
    require_config(std::isfinite(c.temperature) && c.temperature > 0.0,
                   "hyperbolic_attention: temperature must be finite and > 0");
    require_config(c.frechet_max_iterations > 0,
                   "hyperbolic_attention: frechet_max_iterations must be > 0");
    require_config(std::isfinite(c.frechet_tolerance) && c.frechet_tolerance > 0.0,
                   "hyperbolic_attention: frechet_tolerance must be finite and > 0");
    return c;
  }

  /// The query projected into the ball if needed: returns the pointer to use and ‖q‖².
  const T* query_point(std::span<const T> query, T* scratch, T& sq) const {
    sq = kernels::dot(query.data(), query.data(), dim());
    if (!std::isfinite(sq)) {
      if (config_.check_finite) require_finite<T>("query", query);
      throw non_finite_input("non-finite input: query");
    }
    const T max_norm = ball_.max_norm();
    if (sq <= max_norm * max_norm) return query.data();
    ball_.project(query, std::span<T>(scratch, dim()));
    sq = max_norm * max_norm;
    return scratch;
  }

  /// s_j (before masking), written to `s`.
  void scores(std::span<const T> query, const hyperbolic_key_set<T>& keys, T* s) const {
    const std::size_t n = keys.size();
    T q_sq;
    const T* q = query_point(query, detail::thread_scratch<T, 1>(dim()), q_sq);
    const auto k = keys.keys();
    kernels::row_squared_distances(k.data(), n, dim(), static_cast<std::size_t>(k.outerStride()), q,
                                   s);
    // a_j = 2c‖q − k_j‖² · iq · ik_j with iq = 1/(1 − c‖q‖²) (formed in double: near the boundary
    // 1 − c‖q‖² is a small difference).
    const T factor = static_cast<T>(2.0 * static_cast<double>(c_) /
                                    (1.0 - static_cast<double>(c_) * static_cast<double>(q_sq)));
    const T* ik = keys.inverse_conformal().data();
    using B = kernels::batch<T>;
    constexpr std::size_t W = B::size;
    const bool lorentz = config_.score == hyperbolic_score::lorentz_squared_distance;
    // distance: −(1/(√c·τ))·log1p(a + √(a(a + 2)));  lorentz: −(2/(c·τ))·a.
    const T out_scale = lorentz ? -T(2) / c_ * inv_temperature_ : -inv_temperature_ / std::sqrt(c_);
    const B bf(factor), bs(out_scale), two(T(2));
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
      const B a = bf * B::load_unaligned(s + j) * B::load_unaligned(ik + j);
      const B t = lorentz ? a : xsimd::log1p(a + xsimd::sqrt(a * (a + two)));
      (bs * t).store_unaligned(s + j);
    }
    for (; j < n; ++j) {
      const T a = factor * s[j] * ik[j];
      s[j] = out_scale * (lorentz ? a : std::log1p(a + std::sqrt(a * (a + T(2)))));
    }
    if (config_.check_finite && !kernels::all_finite(s, n)) {
      require_finite<T>("query", query);
      require_finite("keys", k.data(), n, dim(), k.outerStride());
      throw non_finite_input("non-finite input: hyperbolic scores are not finite");
    }
  }

  static void finish_weights(T* s, std::size_t n, std::span<const bool> key_mask) {
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    (void)kernels::softmax(s, n);
  }

  /// Combines the values with weights `w` into `out` according to the aggregation mode.
  void aggregate(std::span<const T> w, const matrix_cref<T>& values, std::span<T> out,
                 frechet_result* frechet) const {
    if (frechet != nullptr) *frechet = frechet_result{};
    if (std::all_of(w.begin(), w.end(), [](T x) { return x == T(0); })) {
      std::fill(out.begin(), out.end(), T(0));  // every key masked: the origin
      return;
    }
    switch (config_.aggregation) {
      case hyperbolic_aggregation::tangent_origin:
        tangent_aggregate(w, values, out);
        return;
      case hyperbolic_aggregation::einstein_midpoint:
        with_values_in_ball(values, [&](const matrix_cref<T>& points) {
          einstein_midpoint(ball_, points, w, out);
        });
        return;
      case hyperbolic_aggregation::frechet_mean: {
        frechet_options options;
        options.max_iterations = config_.frechet_max_iterations;
        options.tolerance = config_.frechet_tolerance;
        frechet_result r;
        with_values_in_ball(values, [&](const matrix_cref<T>& points) {
          r = frechet_mean(ball_, points, w, out, options);
        });
        if (frechet != nullptr) *frechet = r;
        return;
      }
    }
  }

  /// exp₀(Σ_j w_j log₀(v_j)) in one pass over the values: Σ_j β_j v_j with
  /// β_j = w_j·artanh(√c‖v_j‖)/(√c‖v_j‖) (values outside the ball are projected by folding the
  /// radial scale into β_j), then the exp₀ scale.
  void tangent_aggregate(std::span<const T> w, const matrix_cref<T>& values,
                         std::span<T> out) const {
    const std::size_t n = w.size();
    const std::size_t ldv = static_cast<std::size_t>(values.outerStride());
    const std::size_t d = dim();
    const T max_norm = ball_.max_norm();
    const T sqrt_c = std::sqrt(c_);
    // ‖v_j‖² for every value in one vectorised pass (distances to the origin), then the
    // coefficients in xsimd batches.
    T* beta = detail::thread_scratch<T, 2>(n);
    T* origin = detail::thread_scratch<T, 3>(d);
    std::fill(origin, origin + d, T(0));
    kernels::row_squared_distances(values.data(), n, d, ldv, origin, beta);
    using B = kernels::batch<T>;
    constexpr std::size_t W = B::size;
    const B bmax(max_norm), bsqrt_c(sqrt_c), one(T(1)), third(T(1) / T(3)), small(T(1e-4));
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
      const B norm = xsimd::sqrt(B::load_unaligned(beta + j));
      const B clamped = xsimd::min(norm, bmax);
      const B radial = xsimd::select(norm > bmax, bmax / norm, one);
      const B t = bsqrt_c * clamped;
      const B coef = xsimd::select(t < small, one + t * t * third, xsimd::atanh(t) / t);
      (B::load_unaligned(w.data() + j) * coef * radial).store_unaligned(beta + j);
    }
    for (; j < n; ++j) {
      T norm = std::sqrt(beta[j]);
      T radial = T(1);
      if (norm > max_norm) {
        radial = max_norm / norm;
        norm = max_norm;
      }
      beta[j] = w[j] * detail::artanh_over(sqrt_c * norm) * radial;
    }
    kernels::weighted_row_sum(beta, n, values.data(), d, ldv, T(0), out.data());
    const T u_norm = std::sqrt(kernels::dot(out.data(), out.data(), d));
    kernels::scale(detail::tanh_over(sqrt_c * u_norm), out.data(), d);
    // Keep the result strictly inside the ball (tanh rounds to 1 for large tangent vectors).
    const T out_sq = kernels::dot(out.data(), out.data(), d);
    if (out_sq > max_norm * max_norm) kernels::scale(max_norm / std::sqrt(out_sq), out.data(), d);
  }

  /// Calls f(points) with the values, or with a projected copy when some value lies outside the
  /// ball (the means require points inside it).
  template <class F>
  void with_values_in_ball(const matrix_cref<T>& values, F&& f) const {
    const T max_sq = ball_.max_norm() * ball_.max_norm();
    bool outside = false;
    for (Eigen::Index j = 0; j < values.rows() && !outside; ++j)
      outside = values.row(j).squaredNorm() > max_sq;
    if (!outside) {
      f(values);
      return;
    }
    row_matrix<T> projected = values;
    for (Eigen::Index j = 0; j < values.rows(); ++j)
      ball_.project(std::span<const T>(values.row(j).data(), dim()),
                    std::span<T>(projected.row(j).data(), dim()));
    f(matrix_cref<T>(projected));
  }

  hyperbolic_attention_config config_;
  poincare_ball<T> ball_;
  T c_;
  T inv_temperature_;
};

}  // namespace ruvector::attention
