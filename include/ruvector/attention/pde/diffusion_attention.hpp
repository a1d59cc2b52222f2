#pragma once
/// \file pde/diffusion_attention.hpp
/// \brief Diffusion attention (theory 6): the logits are smoothed by heat diffusion on the kNN
/// graph of the keys before the softmax, so keys that are close to each other share evidence.
///
///     s     = scale · K q                         (scale = 1/√d by default)
///     s(t)  = exp(−t L) s                         (L: Laplacian of the kNN key graph)
///     w(t)  = softmax(s(t)),   out(t) = Σ_j w_j(t) v_j
///     out   = (1/m) Σ_{r<m} out(t_r)              (several times: multiscale, averaged)
///
/// (heat-kernel smoothing of a graph signal: Kondor & Lafferty 2002; Hammond et al. 2011;
/// GRAND, Chamberlain et al. 2021, for diffusion as attention.) t = 0 reduces to scaled
/// dot-product attention.
///
/// The key graph (exact kNN, O(n²·d), plus the CSR Laplacian) is built once by `prepare_keys`
/// and reused for every query; each query then costs O(n·d) for the logits, K·O(nnz) for the
/// diffusion (K = Chebyshev degree or Euler steps) and O(n·dv) for the output.
///
/// Conventions: k ≥ n is clamped to n − 1 (complete kNN graph); n = 1 is one isolated node
/// (diffusion is the identity, the output is v_0). σ defaults to the median kNN distance (see
/// pde/laplacian.hpp, which also documents isolated nodes). Softmax is max-subtracted
/// (DESIGN §4). Times must be finite and ≥ 0; all numerical conventions of the diffusion are in
/// pde/diffusion.hpp. With `check_finite` (default) NaN/Inf in the query, keys or values throws
/// `non_finite_input` naming the first bad element (values are scanned only when a non-finite
/// output is seen).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/pde/diffusion.hpp"
#include "ruvector/attention/pde/laplacian.hpp"

namespace ruvector::attention {

/// \brief Configuration of `diffusion_attention`.
template <attention_scalar T>
struct diffusion_attention_config {
  /// Neighbours per key in the kNN graph (≥ 1; ≥ n is clamped to n − 1).
  std::size_t k = 16;
  /// Kernel width σ (> 0); default: median kNN distance.
  std::optional<T> sigma{};
  /// Laplacian normalisation.
  laplacian_type type = laplacian_type::symmetric_normalized;
  /// Symmetrisation of the kNN relation.
  knn_symmetrization symmetrize = knn_symmetrization::max;
  /// Diffusion times (non-empty, each finite and ≥ 0); several = multiscale, outputs averaged.
  std::vector<double> times{1.0};
  /// Diffusion method.
  diffusion_method method = diffusion_method::chebyshev;
  /// Chebyshev tolerance (see pde/diffusion.hpp); default 1e-7 (float) / 1e-12 (double).
  std::optional<double> tolerance{};
  /// Requested Euler step (split automatically for stability).
  double euler_dt = 0.1;
  /// Logit scale; default 1/√dim.
  std::optional<T> scale{};
  /// Throw `non_finite_input` on NaN/Inf in the inputs.
  bool check_finite = true;
};

/// \brief Keys prepared once for diffusion attention: a copy of the keys and their kNN
/// Laplacian. Immutable; safe to share across threads.
template <attention_scalar T>
class diffusion_key_graph {
 public:
  /// Number of keys.
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(keys_.rows()); }
  /// Key dimension.
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(keys_.cols()); }
  /// The keys (rows).
  [[nodiscard]] const row_matrix<T>& keys() const noexcept { return keys_; }
  /// The kNN Laplacian of the keys.
  [[nodiscard]] const sparse_laplacian<T>& laplacian() const noexcept { return lap_; }

 private:
  template <attention_scalar>
  friend class diffusion_attention;
  diffusion_key_graph(row_matrix<T> keys, sparse_laplacian<T> lap)
      : keys_(std::move(keys)), lap_(std::move(lap)) {}
  row_matrix<T> keys_;
  sparse_laplacian<T> lap_;
};

/// \brief Output of `diffusion_attention::compute_with_weights`.
template <attention_scalar T>
struct diffusion_attention_output {
  std::vector<T> output;    ///< average over the times of the per-time outputs (length dv)
  row_matrix<T> outputs;    ///< per-time outputs (times × dv)
  row_matrix<T> weights;    ///< per-time softmax weights (times × n)
  row_matrix<T> scores;     ///< per-time diffused logits exp(−tL)s (times × n)
  diffusion_report report;  ///< what the diffusion did
};

/// \brief Single-query diffusion attention over a prepared key graph (see the file comment).
/// Immutable and safe to share across threads.
template <attention_scalar T = float>
class diffusion_attention {
 public:
  using value_type = T;

  /// \param dim query/key dimension; \param config see `diffusion_attention_config`.
  /// Throws `invalid_config` for dim = 0, k = 0, no times, a bad time, σ, scale, dt or
  /// tolerance.
  explicit diffusion_attention(std::size_t dim, diffusion_attention_config<T> config = {})
      : dim_(dim), config_(std::move(config)) {
    require_config(dim_ > 0, "diffusion_attention: dim must be > 0");
    require_at_most("dim", dim_, max_dimension);
    require_config(config_.k >= 1, "diffusion_attention: k must be >= 1");
    require_config(!config_.times.empty(), "diffusion_attention: times must not be empty");
    for (double t : config_.times)
      require_config(std::isfinite(t) && t >= 0.0,
                     "diffusion_attention: every time must be finite and >= 0");
    require_config(!config_.sigma || (std::isfinite(*config_.sigma) && *config_.sigma > T(0)),
                   "diffusion_attention: sigma must be finite and > 0");
    require_config(!config_.scale || std::isfinite(*config_.scale),
                   "diffusion_attention: scale must be finite");
    require_config(std::isfinite(config_.euler_dt) && config_.euler_dt > 0.0,
                   "diffusion_attention: euler_dt must be finite and > 0");
    if (config_.tolerance) {
      const double tol = *config_.tolerance;
      require_config(std::isfinite(tol) && tol >= 1e-15 && tol < 1.0,
                     "diffusion_attention: tolerance must lie in [1e-15, 1)");
    }
    scale_ = config_.scale ? *config_.scale : T(1) / std::sqrt(static_cast<T>(dim_));
    options_.method = config_.method;
    options_.tolerance = config_.tolerance;
    options_.dt = config_.euler_dt;
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }
  [[nodiscard]] const diffusion_attention_config<T>& config() const noexcept { return config_; }

  /// \brief Builds the kNN Laplacian of `keys` (rows) once. Throws `dimension_mismatch`
  /// (keys.cols() ≠ dim), `invalid_argument` (no keys), `non_finite_input`, `input_too_large`.
  [[nodiscard]] diffusion_key_graph<T> prepare_keys(const matrix_cref<T>& keys) const {
    require_non_empty("keys", static_cast<std::size_t>(keys.rows()));
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    laplacian_options<T> lo;
    lo.type = config_.type;
    lo.sigma = config_.sigma;
    lo.symmetrize = config_.symmetrize;
    return diffusion_key_graph<T>(row_matrix<T>(keys),
                                  sparse_laplacian<T>::from_keys(keys, config_.k, lo));
  }

  /// \brief Writes the (time-averaged) output into `out` (size = values.cols()). Throws
  /// `dimension_mismatch` (query, values or out size), `non_finite_input`.
  void compute_into(std::span<const T> query, const diffusion_key_graph<T>& graph,
                    const matrix_cref<T>& values, std::span<T> out) const {
    const std::size_t m = config_.times.size(), dv = static_cast<std::size_t>(values.cols());
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    row_matrix<T> scores = diffused_scores(query, graph, values, nullptr);
    std::fill(out.begin(), out.end(), T(0));
    const std::size_t n = graph.size();
    const auto& v = values;
    for (std::size_t r = 0; r < m; ++r) {
      T* w = scores.data() + r * n;
      kernels::softmax(w, n);
      kernels::weighted_row_sum(w, n, v.data(), dv, static_cast<std::size_t>(v.outerStride()), T(1),
                                out.data());
    }
    if (m > 1) {
      const T inv = T(1) / static_cast<T>(m);
      for (T& o : out) o *= inv;
    }
    check_output(query, values, out);
  }

  /// \brief The (time-averaged) output for one query over prepared keys.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query,
                                       const diffusion_key_graph<T>& graph,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, graph, values, out);
    return out;
  }

  /// \brief The vector API of the other mechanisms: builds the key graph on every call
  /// (O(n²·d)); prefer `prepare_keys` + `compute(query, graph, values)` for repeated queries.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    return compute(query, prepare_keys(keys), values);
  }

  /// \brief Per-time outputs, weights and diffused logits, their average and the diffusion
  /// report.
  [[nodiscard]] diffusion_attention_output<T> compute_with_weights(
      std::span<const T> query, const diffusion_key_graph<T>& graph,
      const matrix_cref<T>& values) const {
    const std::size_t m = config_.times.size(), dv = static_cast<std::size_t>(values.cols());
    const std::size_t n = graph.size();
    diffusion_attention_output<T> r;
    r.scores = diffused_scores(query, graph, values, &r.report);
    r.weights = r.scores;
    r.outputs.resize(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(dv));
    r.output.assign(dv, T(0));
    for (std::size_t t = 0; t < m; ++t) {
      T* w = r.weights.data() + t * n;
      T* o = r.outputs.data() + t * dv;
      kernels::softmax(w, n);
      kernels::weighted_row_sum(w, n, values.data(), dv,
                                static_cast<std::size_t>(values.outerStride()), T(0), o);
      for (std::size_t c = 0; c < dv; ++c) r.output[c] += o[c];
    }
    const T inv = T(1) / static_cast<T>(m);
    for (T& o : r.output) o *= inv;
    check_output(query, values, r.output);
    return r;
  }

  /// \brief Outputs for a batch of queries (rows), in parallel: (queries.rows() × dv).
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries,
                                      const diffusion_key_graph<T>& graph,
                                      const matrix_cref<T>& values) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim_);
    const auto lq = static_cast<std::size_t>(queries.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    row_matrix<T> out(queries.rows(), values.cols());
    parallel_for(0, lq, [&](std::size_t i) {
      const T* row = queries.data() + static_cast<std::ptrdiff_t>(i) * queries.outerStride();
      compute_into(std::span<const T>(row, dim_), graph, values,
                   std::span<T>(out.data() + i * dv, dv));
    });
    return out;
  }

 private:
  // Validates, forms s = scale·K q and diffuses it to every time: (times × n).
  row_matrix<T> diffused_scores(std::span<const T> query, const diffusion_key_graph<T>& graph,
                                const matrix_cref<T>& values, diffusion_report* report) const {
    const std::size_t n = graph.size();
    require_dimension("query.size()", query.size(), dim_);
    require_dimension("graph.dim() (keys prepared for another dimension)", graph.dim(), dim_);
    require_dimension("values.rows() (must equal the number of keys)",
                      static_cast<std::size_t>(values.rows()), n);
    if (config_.check_finite) require_finite("query", query);
    std::vector<T> s(n);
    const auto& k = graph.keys();
    kernels::row_dots(k.data(), n, dim_, dim_, query.data(), scale_, s.data());
    if (!kernels::all_finite(s.data(), n)) require_finite("query", query);  // NaN without check
    const std::span<const double> times(config_.times);
    row_matrix<T> scores(static_cast<Eigen::Index>(times.size()), static_cast<Eigen::Index>(n));
    const diffusion_report rep =
        heat_diffuse_multiscale(graph.laplacian(), std::span<const T>(s), times, scores, options_);
    if (report) *report = rep;
    return scores;
  }

  // Names the first non-finite value if the output is not finite.
  void check_output(std::span<const T> query, const matrix_cref<T>& values,
                    std::span<const T> out) const {
    if (!config_.check_finite || kernels::all_finite(out.data(), out.size())) return;
    require_finite("query", query);
    require_finite("values", values.data(), static_cast<std::size_t>(values.rows()),
                   static_cast<std::size_t>(values.cols()), values.outerStride());
  }

  std::size_t dim_;
  diffusion_attention_config<T> config_;
  T scale_ = T(1);
  diffusion_options options_{};
};

}  // namespace ruvector::attention
