#pragma once
/// \file report.hpp
/// \brief The unified geometry report (theory 7): metrics measured on real queries and keys,
/// banded, scored and turned into a recommendation.
///
/// `analyze(queries, keys[, weights][, ib])` measures, on the rows of `keys` (n × d) and
/// `queries` (L × d):
/// | metric | definition | family |
/// |---|---|---|
/// | `ot_shift` | SW₂²(Q, K) / mean_r SW₂²(K_r, K): the sliced-Wasserstein cost (P seeded
/// directions) between the query set and the keys, over the same cost for R bootstrap samples K_r
/// of L keys. ≈ 1 when the queries look like keys; the raw SW₂ is reported as `ot_distance` |
/// transport | | `topology_coherence` | the combined window coherence of each query's attention on
/// the keys' kNN graph, averaged over the queries | topology | | `ib_kl` | mean over queries and
/// latent dimensions of KL(q(z|x) ‖ N(0, I)) of a given `variational_bottleneck` (absent without
/// one) | info_bottleneck | | `diffusion_energy` | ½Σ W_ij (x_i − x_j)² / Σ d_i (x_i − x̄)², x = the
/// dot-product logits s_j = scale·q·k_j, x̄ = Σ d_i x_i / Σ d_i, W the Gaussian kNN graph of the
/// keys: the Rayleigh quotient of L_rw, in [0, 2] (0 = logits constant along the graph), averaged
/// over queries | pde | | `attention_entropy` | H/ln n of each query's weights, averaged (raw H
/// reported too) | — | | `h0_scale_spread` | std of log₂ of the keys' H0 death scales, octaves |
/// structure.hpp | | `gromov_delta` | 2δ/diam of the keys (four-point condition) | structure.hpp |
/// | `sequence_smoothness` | median consecutive / median random-pair key distance | structure.hpp |
///
/// Without weights, the weights are softmax(scale·Q Kᵀ) with scale = `config.scale` or 1/√d.
/// The kNN graph (k = `config.knn_k`, clamped to n − 1) is built once and shared by the
/// coherence and diffusion metrics. Bands, health and recommendation: metrics.hpp and
/// recommendation.hpp. `report_builder` accepts precomputed metric values instead.
///
/// Cost: O(n²·d) for the kNN graph and the H0 tree (n capped by `max_points` for H0), O(L·n·d)
/// for the logits, O((R + 1)·P·(n log n + n·d)) for the transport.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/info_bottleneck/bottleneck.hpp"
#include "ruvector/attention/kernels/knn.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/pde/laplacian.hpp"
#include "ruvector/attention/topology/coherence.hpp"
#include "ruvector/attention/transport/sliced_wasserstein.hpp"
#include "ruvector/attention/unified_report/metrics.hpp"
#include "ruvector/attention/unified_report/recommendation.hpp"
#include "ruvector/attention/unified_report/structure.hpp"

namespace ruvector::attention {

/// \brief Parameters of `analyze` and of the report's bands and rules.
struct report_config {
  std::size_t ot_projections = 64;       ///< P, directions of the sliced-Wasserstein cost
  std::size_t ot_reference_samples = 8;  ///< R, bootstrap key samples of the OT normaliser
  std::size_t knn_k = 8;                 ///< neighbours of the kNN graph (clamped to n − 1)
  std::size_t max_points = 2048;         ///< H0 and δ use a seeded subsample beyond this
  std::optional<double> scale{};         ///< logit scale (default 1/√d)
  std::uint64_t seed = 42;               ///< directions, bootstrap and subsamples
  report_bands bands{};
  recommendation_policy policy{};

  /// \brief Throws `invalid_config` for out-of-range values.
  void validate() const {
    require_config(ot_projections >= 1, "report_config.ot_projections must be >= 1");
    require_config(ot_reference_samples >= 1, "report_config.ot_reference_samples must be >= 1");
    require_config(knn_k >= 1, "report_config.knn_k must be >= 1");
    require_config(max_points >= 4, "report_config.max_points must be >= 4");
    require_config(!scale || (std::isfinite(*scale) && *scale > 0),
                   "report_config.scale must be finite and > 0");
    bands.validate();
    policy.validate();
  }
};

/// \brief A unified geometry report.
struct geometry_report {
  std::size_t num_keys = 0;           ///< n (0 when built from precomputed values without it)
  std::size_t num_queries = 0;        ///< L
  std::size_t dim = 0;                ///< d
  std::vector<metric_value> metrics;  ///< in `metric_kind` order, present ones only
  double health_score = 1.0;          ///< mean score of the banded metrics, [0, 1]
  recommendation advice;              ///< mechanism and temperature change

  // Raw quantities behind the metrics (NaN when not measured).
  double ot_distance = std::numeric_limits<double>::quiet_NaN();           ///< SW₂(Q, K)
  double entropy_nats = std::numeric_limits<double>::quiet_NaN();          ///< mean raw entropy H
  double logit_std = std::numeric_limits<double>::quiet_NaN();             ///< mean score spread σ
  double h0_total_persistence = std::numeric_limits<double>::quiet_NaN();  ///< Σ H0 deaths

  /// \brief The metric of kind `k`, or nullptr when the report does not hold it.
  [[nodiscard]] const metric_value* find(metric_kind k) const noexcept {
    for (const auto& m : metrics)
      if (m.kind == k) return &m;
    return nullptr;
  }
};

/// \brief Builds a report from metric values (measured by `analyze` or given by the caller, as in
/// the seeds' `ReportBuilder::new(cfg).with_ot_distance(0.15)...build()`).
class report_builder {
 public:
  explicit report_builder(report_config config = {}) : config_(std::move(config)) {
    config_.validate();
  }

  /// \brief The OT shift (see report.hpp; ≈ 1 in-distribution).
  report_builder& with_ot_distance(double shift) { return set(metric_kind::ot_shift, shift); }
  /// \brief Combined topology coherence in [0, 1].
  report_builder& with_topology_coherence(double c) {
    return set(metric_kind::topology_coherence, c);
  }
  /// \brief Mean per-dimension KL of an IB layer, nats.
  report_builder& with_ib_kl(double kl) { return set(metric_kind::ib_kl, kl); }
  /// \brief Logit roughness on the key graph, [0, 2].
  report_builder& with_diffusion_energy(double e) { return set(metric_kind::diffusion_energy, e); }
  /// \brief Attention entropy in nats over `num_keys` keys (normalised by ln n here), with the
  /// score spread σ when known (enables the temperature rule's factor).
  report_builder& with_attention_entropy(double nats, std::size_t num_keys,
                                         std::optional<double> logit_std = std::nullopt) {
    require_argument(num_keys >= 1, "with_attention_entropy: num_keys must be >= 1");
    require_argument(std::isfinite(nats) && nats >= 0,
                     "with_attention_entropy: entropy must be finite and >= 0");
    num_keys_ = num_keys;
    entropy_nats_ = nats;
    logit_std_ = logit_std.value_or(std::numeric_limits<double>::quiet_NaN());
    const double norm =
        num_keys > 1 ? std::clamp(nats / std::log(static_cast<double>(num_keys)), 0.0, 1.0) : 0.0;
    return set(metric_kind::attention_entropy, norm);
  }
  /// \brief H0 scale spread of the keys, octaves.
  report_builder& with_h0_scale_spread(double octaves) {
    return set(metric_kind::h0_scale_spread, octaves);
  }
  /// \brief Relative Gromov δ of the keys.
  report_builder& with_gromov_delta(double relative) {
    return set(metric_kind::gromov_delta, relative);
  }
  /// \brief Sequence smoothness of the keys.
  report_builder& with_sequence_smoothness(double s) {
    return set(metric_kind::sequence_smoothness, s);
  }
  /// \brief The number of keys n (used by the length rules); set by `with_attention_entropy` too.
  report_builder& with_num_keys(std::size_t n) {
    num_keys_ = n;
    return *this;
  }

  /// \brief The report: statuses, health score and recommendation of the values given.
  [[nodiscard]] geometry_report build() const {
    geometry_report r;
    r.num_keys = num_keys_;
    r.entropy_nats = entropy_nats_;
    r.logit_std = logit_std_;
    double score_sum = 0;
    std::size_t scored = 0;
    for (std::size_t k = 0; k < kinds; ++k) {
      if (!values_[k]) continue;
      metric_value m;
      m.kind = static_cast<metric_kind>(k);
      m.value = *values_[k];
      const auto band = config_.bands.band(m.kind);
      m.status = band ? band->classify(m.value) : metric_status::info;
      if (const auto s = m.score()) score_sum += *s, ++scored;
      r.metrics.push_back(m);
    }
    r.health_score = scored > 0 ? score_sum / static_cast<double>(scored) : 1.0;
    r.advice = recommend(r);
    return r;
  }

  /// \brief The configuration.
  [[nodiscard]] const report_config& config() const noexcept { return config_; }

 private:
  static constexpr std::size_t kinds = 8;

  report_builder& set(metric_kind k, double v) {
    require_argument(!std::isnan(v), "report_builder: a metric value must not be NaN");
    values_[static_cast<std::size_t>(k)] = v;
    return *this;
  }

  [[nodiscard]] recommendation recommend(const geometry_report& r) const {
    const recommendation_policy& p = config_.policy;
    recommendation out;
    const auto value = [&](metric_kind k) -> std::optional<double> {
      if (const auto* m = r.find(k)) return m->value;
      return std::nullopt;
    };
    const auto status = [&](metric_kind k) -> std::optional<metric_status> {
      if (const auto* m = r.find(k)) return m->status;
      return std::nullopt;
    };
    const auto entropy = value(metric_kind::attention_entropy);
    const auto spread = value(metric_kind::h0_scale_spread);
    const auto smooth = value(metric_kind::sequence_smoothness);
    const bool is_long = r.num_keys >= p.long_sequence;
    const bool is_very_long = r.num_keys >= p.very_long_sequence;
    const auto diffusion = status(metric_kind::diffusion_energy);
    const auto coherence = status(metric_kind::topology_coherence);

    if (spread && *spread >= p.hierarchy_octaves) {
      out.mechanism = recommended_mechanism::geometric;
      out.reasons.emplace_back(
          "keys are hierarchical: H0 merge scales spread over many octaves (tree-like), which "
          "hyperbolic space embeds with low distortion");
    } else if (is_long && smooth && *smooth < p.smooth_below) {
      out.mechanism = recommended_mechanism::local_global;
      out.reasons.emplace_back(
          "long, smooth sequence: consecutive keys are far closer than random pairs, so a local "
          "window plus global tokens covers the signal");
    } else if (is_long && entropy && *entropy < p.concentrated_below) {
      out.mechanism = recommended_mechanism::flash_sparse;
      out.reasons.emplace_back(
          "long sequence with concentrated attention: a few keys carry the mass (top-k sparse or "
          "flash attention)");
    } else if (diffusion && *diffusion != metric_status::healthy && coherence &&
               *coherence == metric_status::healthy) {
      out.mechanism = recommended_mechanism::diffusion;
      out.reasons.emplace_back(
          "logits are rough over a coherent key graph: heat diffusion on the graph smooths them");
    } else if (is_very_long && entropy && *entropy > p.spread_above) {
      out.mechanism = recommended_mechanism::linear;
      out.reasons.emplace_back(
          "very long sequence with spread-out attention: a linear-time kernel approximation "
          "loses little");
    } else {
      out.mechanism = recommended_mechanism::standard;
      out.reasons.emplace_back("no structure that a specialised mechanism exploits");
    }
    if (entropy) {
      const double sigma = std::isnan(r.logit_std) ? 0.0 : r.logit_std;
      out.temperature_factor = detail::temperature_factor(*entropy, sigma, r.num_keys, p);
      if (out.temperature_factor < 1)
        out.reasons.emplace_back("attention is near uniform: lower the temperature (sharpen)");
      else if (out.temperature_factor > 1)
        out.reasons.emplace_back("attention is near one-hot: raise the temperature (soften)");
    }
    return out;
  }

  report_config config_;
  std::optional<double> values_[kinds]{};
  std::size_t num_keys_ = 0;
  double entropy_nats_ = std::numeric_limits<double>::quiet_NaN();
  double logit_std_ = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

/// SW₂²(Q, K) and its normaliser mean_r SW₂²(K_r, K) over R bootstrap samples of |Q| keys.
template <class T>
std::pair<double, double> ot_shift_terms(const matrix_cref<T>& q, const matrix_cref<T>& k,
                                         const report_config& c) {
  const auto n = static_cast<std::size_t>(k.rows());
  const auto L = static_cast<std::size_t>(q.rows());
  const row_matrix<T> dirs =
      random_directions<T>(static_cast<std::size_t>(k.cols()), c.ot_projections, c.seed);
  const double cost = static_cast<double>(sliced_wasserstein_pp<T>(q, k, dirs, T(2)));
  rng gen(c.seed + 1);
  row_matrix<T> sample(static_cast<Eigen::Index>(L), k.cols());
  double reference = 0;
  for (std::size_t r = 0; r < c.ot_reference_samples; ++r) {
    for (std::size_t i = 0; i < L; ++i)
      sample.row(static_cast<Eigen::Index>(i)) = k.row(static_cast<Eigen::Index>(gen.below(n)));
    reference += static_cast<double>(sliced_wasserstein_pp<T>(sample, k, dirs, T(2)));
  }
  return {cost, reference / static_cast<double>(c.ot_reference_samples)};
}

/// ½Σ W_ij (x_i − x_j)² / Σ d_i (x_i − x̄)² (0 when the denominator is 0).
template <class T>
double logit_roughness(const sparse_laplacian<T>& lap, std::span<const T> x) {
  const auto deg = lap.degrees();
  double dsum = 0, mean = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    dsum += static_cast<double>(deg[i]);
    mean += static_cast<double>(deg[i]) * static_cast<double>(x[i]);
  }
  if (!(dsum > 0)) return 0.0;
  mean /= dsum;
  double denom = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double c = static_cast<double>(x[i]) - mean;
    denom += static_cast<double>(deg[i]) * c * c;
  }
  if (!(denom > 0)) return 0.0;
  return std::clamp(static_cast<double>(lap.dirichlet_form(x)) / denom, 0.0, 2.0);
}

}  // namespace detail

/// \brief Measures every metric of the file comment on `queries` (L × d) and `keys` (n × d) with
/// the attention `weights` (L × n, rows summing to 1; empty = softmax of the scaled logits) and
/// an optional IB layer (its input width must be d), and builds the report. Throws
/// `dimension_mismatch`, `non_finite_input`, `invalid_argument` or `invalid_config`.
template <attention_scalar T>
[[nodiscard]] geometry_report analyze(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const std::type_identity_t<matrix_cref<T>>& weights,
                                      const report_config& config = {},
                                      const variational_bottleneck<T>* ib = nullptr) {
  config.validate();
  const auto n = static_cast<std::size_t>(keys.rows());
  const auto L = static_cast<std::size_t>(queries.rows());
  const auto d = static_cast<std::size_t>(keys.cols());
  detail::require_points("keys", keys);
  detail::require_points("queries", queries);
  require_dimension("queries.cols() (must equal keys.cols())",
                    static_cast<std::size_t>(queries.cols()), d);
  const double scale = config.scale.value_or(1.0 / std::sqrt(static_cast<double>(d)));

  // Logits (always the dot-product ones) and weights (given, or their softmax).
  row_matrix<T> logits = static_cast<T>(scale) * (queries * keys.transpose());
  row_matrix<T> w;
  if (weights.size() > 0) {
    require_dimension("weights.rows() (must equal queries.rows())",
                      static_cast<std::size_t>(weights.rows()), L);
    require_dimension("weights.cols() (must equal keys.rows())",
                      static_cast<std::size_t>(weights.cols()), n);
    w = weights;
  } else {
    w = logits;
    for (std::size_t i = 0; i < L; ++i)
      (void)kernels::softmax(w.row(static_cast<Eigen::Index>(i)).data(), n);
  }

  report_builder builder(config);
  builder.with_num_keys(n);

  // Transport.
  const auto [cost, reference] = detail::ot_shift_terms<T>(queries, keys, config);
  const double shift =
      reference > 0 ? cost / reference : (cost > 0 ? std::numeric_limits<double>::infinity() : 1.0);
  builder.with_ot_distance(shift);

  // Entropy.
  double h = 0, sigma = 0;
  for (std::size_t i = 0; i < L; ++i) {
    const auto s =
        attention_entropy<T>(std::span<const T>(w.row(static_cast<Eigen::Index>(i)).data(), n));
    h += s.entropy;
    sigma += s.logit_std;
  }
  builder.with_attention_entropy(h / static_cast<double>(L), n, sigma / static_cast<double>(L));

  // Topology and diffusion on one kNN graph.
  if (n >= 2) {
    const knn_lists<T> knn = exact_knn<T>(keys, std::min(config.knn_k, n - 1));
    const coherence_keys<T> graph(keys, knn);
    const auto lap = sparse_laplacian<T>::from_knn(
        knn, laplacian_options<T>{.type = laplacian_type::combinatorial});
    double coherence = 0, roughness = 0;
    for (std::size_t i = 0; i < L; ++i) {
      const auto row = static_cast<Eigen::Index>(i);
      coherence += compute_coherence(graph, std::span<const T>(w.row(row).data(), n)).coherence;
      roughness += detail::logit_roughness(lap, std::span<const T>(logits.row(row).data(), n));
    }
    builder.with_topology_coherence(coherence / static_cast<double>(L));
    builder.with_diffusion_energy(roughness / static_cast<double>(L));
  }

  // Information bottleneck.
  if (ib != nullptr) {
    require_dimension("ib.input_dim() (must equal keys.cols())", ib->input_dim(), d);
    const auto fwd = ib->forward(queries);
    builder.with_ib_kl(static_cast<double>(fwd.kl_mean) / static_cast<double>(ib->latent_dim()));
  }

  // Structure of the keys.
  double h0_total = std::numeric_limits<double>::quiet_NaN();
  if (n >= 2) {
    const auto h0 = h0_persistence<T>(keys, config.max_points, config.seed);
    builder.with_h0_scale_spread(h0.scale_spread);
    h0_total = h0.total;
    builder.with_gromov_delta(
        gromov_delta<T>(keys, std::min<std::size_t>(config.max_points, 256), 20000, config.seed)
            .relative);
    builder.with_sequence_smoothness(sequence_smoothness<T>(keys, 4096, config.seed));
  }

  geometry_report r = builder.build();
  r.num_queries = L;
  r.dim = d;
  r.ot_distance = std::sqrt(std::max(cost, 0.0));
  r.h0_total_persistence = h0_total;
  return r;
}

/// \brief `analyze` with the weights computed as softmax(scale·Q Kᵀ).
template <attention_scalar T>
[[nodiscard]] geometry_report analyze(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const report_config& config = {},
                                      const variational_bottleneck<T>* ib = nullptr) {
  const row_matrix<T> none(0, 0);
  return analyze<T>(queries, keys, none, config, ib);
}

/// \brief `analyze` for one query vector with its weights (empty = computed).
template <attention_scalar T>
[[nodiscard]] geometry_report analyze(std::span<const T> query, const matrix_cref<T>& keys,
                                      std::type_identity_t<std::span<const T>> weights = {},
                                      const report_config& config = {},
                                      const variational_bottleneck<T>* ib = nullptr) {
  const Eigen::Map<const row_matrix<T>> q(query.data(), 1, static_cast<Eigen::Index>(query.size()));
  if (weights.empty()) return analyze<T>(q, keys, config, ib);
  const Eigen::Map<const row_matrix<T>> w(weights.data(), 1,
                                          static_cast<Eigen::Index>(weights.size()));
  return analyze<T>(q, keys, w, config, ib);
}

}  // namespace ruvector::attention
