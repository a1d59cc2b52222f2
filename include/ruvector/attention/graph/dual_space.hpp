#pragma once
/// \file graph/dual_space.hpp
/// \brief Dual-space attention: one score that mixes Euclidean similarity (flat, local structure)
/// with hyperbolic distance (hierarchies), the seeds' `DualSpaceAttention`. Geometry of the
/// Poincaré ball as in Ganea, Bécigneul & Hofmann 2018, "Hyperbolic Neural Networks"; mixing
/// Euclidean and hyperbolic similarity in one attention logit as in Gu et al. 2019, "Learning
/// Mixed-Curvature Representations in Product Spaces".
///
///     s_j = ( w_e·⟨q_e, k_e,j⟩/√d − w_h·d_c(P(q_h), P(k_h,j)) ) / τ
///     w   = softmax(s),   out = Σ_j w_j v_j            (then W_out·out with `output_projection`)
///
/// - q_e = W_e q, k_e = W_e k and q_h = W_h q, k_h = W_h k with `learned_projections`
///   (W_e, W_h are d×d), otherwise q_e = q_h = q and k_e = k_h = k.
/// - P projects onto the closed Poincaré ball of curvature −c (c = −curvature) of radius
///   r = (1 − eps)/√c, eps = `poincare_ball<T>::default_eps` (1e-5 float, 1e-10 double):
///   P(x) = x if ‖x‖ ≤ r, else r·x/‖x‖ (`poincare_ball::project`). Vectors are Euclidean
///   features, so P is applied to every query and key, as the seeds do.
/// - d_c(x, y) = (1/√c)·arcosh(1 + a), a = 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)), evaluated as
///   (1/√c)·log1p(a + √(a(a + 2))) in xsimd batches (accurate for close points).
/// - w_e = `euclidean_weight`, w_h = `hyperbolic_weight` (any finite values; parameters a trainer
///   may update through `set_space_weights`), τ = `temperature` > 0, d = `dim`.
///
/// Evaluation (per query, n keys): the Euclidean part is one `kernels::row_dots` pass; with
/// learned projections it uses ⟨W_e q, W_e k⟩ = ⟨W_eᵀW_e q, k⟩, so the keys are not projected for
/// it. The hyperbolic part is one `kernels::row_squared_distances` pass (‖q_h − k_h‖², formed from
/// the difference, and ‖k_h‖²); keys outside the ball get one extra difference pass for
/// ‖P(q_h) − r·k/‖k‖‖². The conformal terms 1/(1 − c‖·‖²) are formed in double (near the
/// boundary they are small differences); a projected point has ‖P(x)‖ = r exactly by convention.
/// With learned projections the keys are first multiplied by W_hᵀ (one GEMM, O(n·d²)); batch
/// calls (`compute_batch`) do that once for all queries. w_e = 0 skips the Euclidean pass and
/// w_h = 0 the hyperbolic one, so w_h = 0, w_e = 1, τ = 1 is scaled dot-product attention through
/// the same kernels (the scale w_e/(√d·τ) is formed in double, so it may differ from SDPA's 1/√d
/// by one rounding).
///
/// Conventions: max-subtracted softmax; masked keys (`false`) get weight 0 and a query whose keys
/// are all masked outputs zeros (DESIGN §4); with `check_finite` NaN/Inf inputs throw
/// `non_finite_input` naming the first bad element (inputs are scanned only after a non-finite
/// score or output). Near the boundary a distance resolves ~λ·ulp (poincare.hpp): about 6e-3 in
/// float for points at radius r, so use double when hyperbolic scores must resolve finer.
///
/// Differences from the Rust crate (deliberate): its W_e, W_h, W_out were always applied
/// (untrained, from an LCG) and its `learn_weights` flag was never read; here the maps are opt-in
/// and Xavier-uniform from `seed` (core/rng.hpp). Its output projection W_out was applied only when
/// the values happened to be `dim` wide, so the output space depended on the value width; here
/// `output_projection` applies W_out (value_dim × value_dim) always, and then values must be
/// `value_dim` wide (`dimension_mismatch` otherwise). The seeds' curvature was a positive number
/// used as |c|; here it is the (negative) sectional curvature, as elsewhere in the library.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/attention_args.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Configuration of `dual_space_attention` (the seeds' `DualSpaceConfig`).
struct dual_space_config {
  std::size_t dim = 256;             ///< d: query/key dimension
  double curvature = -1.0;           ///< sectional curvature −c of the ball; finite and < 0
  double euclidean_weight = 0.5;     ///< w_e (finite)
  double hyperbolic_weight = 0.5;    ///< w_h (finite)
  double temperature = 1.0;          ///< τ; finite and > 0
  bool learned_projections = false;  ///< apply W_e, W_h (d × d) to queries and keys
  bool output_projection = false;    ///< apply W_out (value_dim × value_dim) to the output
  std::size_t value_dim = 0;         ///< value width with `output_projection` (0 = dim)
  std::uint64_t seed = 42;           ///< seed of the Xavier-uniform initialisation
  bool check_finite = true;          ///< diagnose NaN/Inf inputs (non_finite_input)
};

/// \brief The linear maps of `dual_space_attention` in `[out, in]` layout (y = W x). A map that
/// the configuration does not use is an empty matrix.
template <class T>
struct dual_space_weights {
  row_matrix<T> w_e;    ///< Euclidean map, d × d
  row_matrix<T> w_h;    ///< hyperbolic map, d × d
  row_matrix<T> w_out;  ///< output map, value_dim × value_dim
};

/// \brief The two unweighted score terms per key (`dual_space_attention::space_terms`).
template <class T>
struct dual_space_terms {
  std::vector<T> euclidean;   ///< ⟨q_e, k_e,j⟩/√d
  std::vector<T> hyperbolic;  ///< d_c(P(q_h), P(k_h,j))
};

/// \brief Dual-space (Euclidean + Poincaré) attention; see the file comment. Models
/// `attention_mechanism` and `masked_attention_mechanism`. Forward calls are const and
/// thread-safe; `set_weights` / `set_space_weights` are not (do not call them concurrently with
/// a forward call).
template <attention_scalar T>
class dual_space_attention {
 public:
  using value_type = T;

  /// Builds the mechanism and Xavier-initialises the configured maps from `config.seed`
  /// (order W_e, W_h, W_out; U(±√(6/(fan_in + fan_out))), Glorot & Bengio 2010). Throws
  /// `invalid_config` on a bad field.
  explicit dual_space_attention(const dual_space_config& config)
      : config_(validated(config)), ball_(static_cast<T>(-config.curvature)) {
    c_ = static_cast<double>(ball_.c());
    r_ = static_cast<double>(ball_.max_norm());
    set_space_weights(config_.euclidean_weight, config_.hyperbolic_weight);
    rng gen(config_.seed);
    const std::size_t d = config_.dim;
    if (config_.learned_projections) {
      w_.w_e = xavier(gen, d, d);
      w_.w_h = xavier(gen, d, d);
      gram_ = w_.w_e.transpose() * w_.w_e;
    }
    if (config_.output_projection) w_.w_out = xavier(gen, value_dim(), value_dim());
  }

  /// Convenience: `dual_space_attention(dim, curvature)` with the other fields at their defaults.
  dual_space_attention(std::size_t dim, double curvature)
      : dual_space_attention(dual_space_config{.dim = dim, .curvature = curvature}) {}

  [[nodiscard]] const dual_space_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// Sectional curvature −c (negative).
  [[nodiscard]] T curvature() const noexcept { return ball_.curvature(); }
  [[nodiscard]] const poincare_ball<T>& ball() const noexcept { return ball_; }
  /// w_e (as set by the config or `set_space_weights`).
  [[nodiscard]] double euclidean_weight() const noexcept { return config_.euclidean_weight; }
  /// w_h (as set by the config or `set_space_weights`).
  [[nodiscard]] double hyperbolic_weight() const noexcept { return config_.hyperbolic_weight; }
  /// Width of values and output with `output_projection` (value_dim, or dim when 0); 0 otherwise.
  [[nodiscard]] std::size_t value_dim() const noexcept {
    if (!config_.output_projection) return 0;
    return config_.value_dim == 0 ? config_.dim : config_.value_dim;
  }
  /// The linear maps (empty matrices for the unused ones).
  [[nodiscard]] const dual_space_weights<T>& weights() const noexcept { return w_; }

  /// \brief Replaces the linear maps. Shapes must match the configuration (an unused map must be
  /// empty) and values must be finite. Not thread-safe with concurrent forward calls.
  void set_weights(dual_space_weights<T> w) {
    const std::size_t d = dim();
    check_map("w_e", w.w_e, config_.learned_projections ? d : 0);
    check_map("w_h", w.w_h, config_.learned_projections ? d : 0);
    check_map("w_out", w.w_out, value_dim());
    w_ = std::move(w);
    if (config_.learned_projections) gram_ = w_.w_e.transpose() * w_.w_e;
  }

  /// \brief Replaces w_e and w_h (finite; `invalid_argument` otherwise). Not thread-safe with
  /// concurrent forward calls.
  void set_space_weights(double euclidean_weight, double hyperbolic_weight) {
    require_argument(std::isfinite(euclidean_weight) && std::isfinite(hyperbolic_weight),
                     "dual_space_attention: euclidean_weight and hyperbolic_weight must be finite");
    config_.euclidean_weight = euclidean_weight;
    config_.hyperbolic_weight = hyperbolic_weight;
  }

  /// \brief The unweighted terms ⟨q_e, k_e,j⟩/√d and d_c(P(q_h), P(k_h,j)) of every key (the
  /// seeds' `get_space_contributions`, unscaled by w and τ): s_j = (w_e·E_j − w_h·H_j)/τ. These
  /// are also ∂s_j/∂w_e·τ and −∂s_j/∂w_h·τ.
  [[nodiscard]] dual_space_terms<T> space_terms(std::span<const T> query,
                                                const matrix_cref<T>& keys) const {
    const std::size_t n = validate_keys(query, keys);
    dual_space_terms<T> r{std::vector<T>(n), std::vector<T>(n)};
    const matrix_cref<T> hkeys = hyperbolic_keys(keys, nullptr, true);
    euclidean_part(query, keys, T(1) / std::sqrt(static_cast<T>(dim())), r.euclidean.data());
    std::fill(r.hyperbolic.begin(), r.hyperbolic.end(), T(0));
    hyperbolic_part(query, hkeys, 1.0 / std::sqrt(c_), r.hyperbolic.data());
    if (config_.check_finite && !(kernels::all_finite(r.euclidean.data(), n) &&
                                  kernels::all_finite(r.hyperbolic.data(), n)))
      diagnose(query, keys, nullptr);
    return r;
  }

  /// \brief Writes the output (size values.cols()) and optionally the weights (size n) of one
  /// query; returns the log-sum-exp of the visible scores. `key_mask` (empty = all visible) holds
  /// `true` for visible keys.
  T compute_into(std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
                 std::span<T> out, std::span<const bool> key_mask = {},
                 std::span<T> weights = {}) const {
    const std::size_t n = validate_keys(query, keys);
    validate_values(n, values, out, key_mask, weights);
    return compute_core(query, keys, hyperbolic_keys(keys, nullptr), values, out, key_mask,
                        weights);
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible; the seeds' `compute_with_mask`).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out, key_mask);
    return out;
  }

  /// \brief Output, weights and log-sum-exp in one call.
  [[nodiscard]] attention_output<T> compute_with_weights(
      std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
      std::span<const bool> key_mask = {}) const {
    attention_output<T> r{std::vector<T>(static_cast<std::size_t>(values.cols())),
                          std::vector<T>(static_cast<std::size_t>(keys.rows())), T(0)};
    r.lse = compute_into(query, keys, values, r.output, key_mask, r.weights);
    return r;
  }

  /// \brief Every row of `queries` against one key set (row i of the result is the output of
  /// query i). The keys' hyperbolic projection K·W_hᵀ is computed once; queries run in parallel
  /// (`parallel_for`). `key_mask` (empty = all visible) is shared by every query.
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            const matrix_cref<T>& keys,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> key_mask = {}) const {
    const std::size_t d = dim();
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), d);
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    row_matrix<T> out(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(dv));
    if (lq == 0) return out;
    const std::size_t n = validate_keys(std::span<const T>(queries.row(0).data(), d), keys);
    validate_values(n, values, std::span<T>(out.row(0).data(), dv), key_mask, {});
    row_matrix<T> projected;
    const matrix_cref<T> hkeys = hyperbolic_keys(keys, &projected);
    parallel_for(0, lq, [&](std::size_t i) {
      const auto row = static_cast<Eigen::Index>(i);
      compute_core(std::span<const T>(queries.row(row).data(), d), keys, hkeys, values,
                   std::span<T>(out.row(row).data(), dv), key_mask, {});
    });
    return out;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief Seeds-shaped adapter with a `std::vector<bool>` mask.
  [[nodiscard]] std::vector<T> compute_with_mask(const std::vector<T>& query,
                                                 const std::vector<std::vector<T>>& keys,
                                                 const std::vector<std::vector<T>>& values,
                                                 const std::vector<bool>& key_mask) const {
    const std::unique_ptr<bool[]> m(new bool[key_mask.size()]);
    std::copy(key_mask.begin(), key_mask.end(), m.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(m.get(), key_mask.size()));
  }

 private:
  using vector_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
  using const_vector_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

  static const dual_space_config& validated(const dual_space_config& c) {
    require_config(c.dim > 0, "dual_space_attention: dim must be > 0");
    require_at_most("dim", c.dim, max_dimension);
    require_at_most("value_dim", c.value_dim, max_dimension);
    require_config(std::isfinite(c.curvature) && c.curvature < 0.0,
                   "dual_space_attention: curvature must be finite and < 0 (the ball has "
                   "curvature -c)");
    require_config(std::isfinite(c.euclidean_weight) && std::isfinite(c.hyperbolic_weight),
                   "dual_space_attention: euclidean_weight and hyperbolic_weight must be finite");
    require_config(std::isfinite(c.temperature) && c.temperature > 0.0,
                   "dual_space_attention: temperature must be finite and > 0");
    return c;
  }

  static row_matrix<T> xavier(rng& gen, std::size_t out, std::size_t in) {
    const double a = std::sqrt(6.0 / static_cast<double>(in + out));
    row_matrix<T> w(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  static void check_map(const char* name, const row_matrix<T>& m, std::size_t size) {
    require_dimension(std::string("dual_space_weights::").append(name).append(".rows()"),
                      static_cast<std::size_t>(m.rows()), size);
    require_dimension(std::string("dual_space_weights::").append(name).append(".cols()"),
                      static_cast<std::size_t>(m.cols()), size);
    require_finite(std::string("dual_space_weights::").append(name), m.data(), size, size,
                   static_cast<std::ptrdiff_t>(size));
  }

  std::size_t validate_keys(std::span<const T> query, const matrix_cref<T>& keys) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    require_dimension("query.size()", query.size(), dim());
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim());
    return n;
  }

  void validate_values(std::size_t n, const matrix_cref<T>& values, std::span<const T> out,
                       std::span<const bool> key_mask, std::span<const T> weights) const {
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    if (config_.output_projection)
      require_dimension("values.cols() (must equal value_dim with output_projection)", dv,
                        value_dim());
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);
  }

  /// The keys as used by the hyperbolic term: `keys` itself, or K·W_hᵀ (into `owned` when given,
  /// else into thread scratch slot 8).
  /// Skipped (returns `keys`) when the hyperbolic term is unused (w_h = 0) unless `always`.
  matrix_cref<T> hyperbolic_keys(const matrix_cref<T>& keys, row_matrix<T>* owned,
                                 bool always = false) const {
    if (!config_.learned_projections || (config_.hyperbolic_weight == 0.0 && !always)) return keys;
    const auto n = keys.rows();
    const auto d = static_cast<Eigen::Index>(dim());
    if (owned != nullptr) {
      owned->noalias() = keys * w_.w_h.transpose();
      return matrix_cref<T>(*owned);
    }
    Eigen::Map<row_matrix<T>> m(detail::thread_scratch<T, 8>(static_cast<std::size_t>(n) * dim()),
                                n, d);
    m.noalias() = keys * w_.w_h.transpose();
    return matrix_cref<T>(m);
  }

  /// out_j = alpha·⟨q_e, k_e,j⟩, or 0 when alpha = 0.
  void euclidean_part(std::span<const T> query, const matrix_cref<T>& keys, T alpha, T* out) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t d = dim();
    if (alpha == T(0)) {
      std::fill(out, out + n, T(0));
      return;
    }
    const T* q = query.data();
    if (config_.learned_projections) {
      // ⟨W_e q, W_e k⟩ = ⟨(W_eᵀW_e) q, k⟩
      T* g = detail::thread_scratch<T, 1>(d);
      vector_map(g, static_cast<Eigen::Index>(d)).noalias() =
          gram_ * const_vector_map(q, static_cast<Eigen::Index>(d));
      q = g;
    }
    kernels::row_dots(keys.data(), n, d, static_cast<std::size_t>(keys.outerStride()), q, alpha,
                      out);
  }

  /// out_j += coef·arcosh(1 + a_j) with a_j as in the file comment (the distance d_c times
  /// coef·√c). Non-finite inputs leave NaN in `out` (diagnosed by the caller).
  void hyperbolic_part(std::span<const T> query, const matrix_cref<T>& hkeys, double coef,
                       T* out) const {
    const std::size_t n = static_cast<std::size_t>(hkeys.rows());
    const std::size_t d = dim();
    // q_h = W_h q (slot 2), then P(q_h) (slot 3).
    const T* qh = query.data();
    if (config_.learned_projections) {
      T* h = detail::thread_scratch<T, 2>(d);
      vector_map(h, static_cast<Eigen::Index>(d)).noalias() =
          w_.w_h * const_vector_map(query.data(), static_cast<Eigen::Index>(d));
      qh = h;
    }
    const T max_sq = ball_.max_norm() * ball_.max_norm();
    const T qq = kernels::dot(qh, qh, d);
    if (!std::isfinite(qq)) {
      std::fill(out, out + n, std::numeric_limits<T>::quiet_NaN());
      return;
    }
    double q_sq = static_cast<double>(qq);
    if (qq > max_sq) {
      T* p = detail::thread_scratch<T, 3>(d);
      const T f = ball_.max_norm() / std::sqrt(qq);
      for (std::size_t m = 0; m < d; ++m) p[m] = f * qh[m];
      qh = p;
      q_sq = r_ * r_;
    }
    // ‖q_h − k_j‖² (slot 4) and ‖k_j‖² (slot 5) in one pass.
    T* dist = detail::thread_scratch<T, 4>(n);
    T* ik = detail::thread_scratch<T, 5>(n);
    const std::size_t ldk = static_cast<std::size_t>(hkeys.outerStride());
    kernels::row_squared_distances(hkeys.data(), n, d, ldk, qh, dist, ik);
    const T ik_boundary = static_cast<T>(1.0 / (1.0 - c_ * r_ * r_));
    for (std::size_t j = 0; j < n; ++j) {
      const T kk = ik[j];
      if (kk > max_sq) {
        // P(k) = α·k with α = r/‖k‖: ‖P(q) − αk‖² from the difference, ‖P(k)‖ = r.
        const T alpha = ball_.max_norm() / std::sqrt(kk);
        dist[j] = detail::geo_pair_norms(qh, hkeys.data() + j * ldk, -alpha, d).zz;
        ik[j] = ik_boundary;
      } else {
        ik[j] = static_cast<T>(1.0 / (1.0 - c_ * static_cast<double>(kk)));  // NaN stays NaN
      }
    }
    // a_j = (2c/(1 − c‖q‖²))·‖q − k_j‖²/(1 − c‖k_j‖²); out_j += coef·log1p(a + √(a(a + 2))).
    const T factor = static_cast<T>(2.0 * c_ / (1.0 - c_ * q_sq));
    const T tcoef = static_cast<T>(coef);
    using B = kernels::batch<T>;
    constexpr std::size_t W = B::size;
    const B bf(factor), bc(tcoef), two(T(2));
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
      const B a = bf * B::load_unaligned(dist + j) * B::load_unaligned(ik + j);
      const B t = xsimd::log1p(a + xsimd::sqrt(a * (a + two)));
      xsimd::fma(bc, t, B::load_unaligned(out + j)).store_unaligned(out + j);
    }
    for (; j < n; ++j) {
      const T a = factor * dist[j] * ik[j];
      out[j] += tcoef * std::log1p(a + std::sqrt(a * (a + T(2))));
    }
  }

  /// Scores, softmax and the weighted value sum for validated arguments.
  T compute_core(std::span<const T> query, const matrix_cref<T>& keys, const matrix_cref<T>& hkeys,
                 const matrix_cref<T>& values, std::span<T> out, std::span<const bool> key_mask,
                 std::span<T> weights) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const double tau = config_.temperature;
    T* s = weights.empty() ? detail::thread_scratch<T, 0>(n) : weights.data();
    euclidean_part(
        query, keys,
        static_cast<T>(config_.euclidean_weight / (std::sqrt(static_cast<double>(dim())) * tau)),
        s);
    if (config_.hyperbolic_weight != 0.0)
      hyperbolic_part(query, hkeys, -config_.hyperbolic_weight / (std::sqrt(c_) * tau), s);
    if (config_.check_finite && !kernels::all_finite(s, n)) diagnose(query, keys, &values);
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    const T lse = kernels::softmax(s, n);
    const auto ldv = static_cast<std::size_t>(values.outerStride());
    if (config_.output_projection) {
      T* tmp = detail::thread_scratch<T, 6>(dv);
      kernels::weighted_row_sum(s, n, values.data(), dv, ldv, T(0), tmp);
      vector_map(out.data(), static_cast<Eigen::Index>(dv)).noalias() =
          w_.w_out * const_vector_map(tmp, static_cast<Eigen::Index>(dv));
    } else {
      kernels::weighted_row_sum(s, n, values.data(), dv, ldv, T(0), out.data());
    }
    if (config_.check_finite && !kernels::all_finite(out.data(), dv))
      diagnose(query, keys, &values);
    return lse;
  }

  [[noreturn]] static void diagnose(std::span<const T> query, const matrix_cref<T>& keys,
                                    const matrix_cref<T>* values) {
    if (values != nullptr) detail::diagnose_vector_inputs<T>(query, keys, *values);
    require_finite<T>("query", query);
    require_finite("keys", keys.data(), static_cast<std::size_t>(keys.rows()),
                   static_cast<std::size_t>(keys.cols()), keys.outerStride());
    throw non_finite_input(
        "non-finite input: a dual-space score overflowed although query and keys are finite");
  }

  dual_space_config config_;
  poincare_ball<T> ball_;
  double c_ = 1.0;  // c = −curvature, as stored by the ball (rounded to T)
  double r_ = 1.0;  // ball radius (1 − eps)/√c as stored by the ball
  dual_space_weights<T> w_;
  row_matrix<T> gram_;  // W_eᵀW_e (learned projections only)
};

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
