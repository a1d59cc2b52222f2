#pragma once
/// \file metrics.hpp
/// \brief Metric values of the unified report and their healthy / warning / critical bands.
///
/// A band is two nested intervals: healthy = [healthy_lo, healthy_hi] ⊆ warning =
/// [warning_lo, warning_hi]; a value in the healthy interval is healthy, else in the warning
/// interval a warning, else critical. Open sides are ±∞, so one shape covers metrics where higher
/// is worse (OT shift), lower is worse (coherence) and both sides are bad (entropy: a one-hot or a
/// uniform distribution). Each metric scores 1 (healthy), ½ (warning) or 0 (critical); the health
/// score of a report is the mean score of its banded metrics. Informational metrics (H0 scale
/// spread, Gromov δ, sequence smoothness) carry no band: they describe structure, not health, and
/// steer the recommendation only.
///
/// The Rust original compared every metric with `value > critical`, so coherence and entropy —
/// where *low* values are bad — were flagged critical when healthy; bands here state both sides.

#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include "ruvector/attention/core/validate.hpp"

namespace ruvector::attention {

/// \brief The quantities a geometry report can hold.
enum class metric_kind {
  ot_shift,  ///< SW₂² (queries, keys) over that of a same-size key sample (≈ 1 in-distribution)
  topology_coherence,   ///< combined window coherence of the keys' kNN graph, [0, 1], 1 = coherent
  ib_kl,                ///< mean per-dimension KL(q(z|x) ‖ N(0, I)) of an IB layer, nats
  diffusion_energy,     ///< logit roughness over the key graph: xᵀLx / xᵀDx, [0, 2]
  attention_entropy,    ///< normalised attention entropy H / ln n, [0, 1]
  h0_scale_spread,      ///< std of log₂ of the H0 death scales, octaves (informational)
  gromov_delta,         ///< 2δ/diam of the keys (informational)
  sequence_smoothness,  ///< median step / median pair distance of the keys in order (informational)
};

/// \brief Lower-case name of a metric (used in JSON and messages).
[[nodiscard]] constexpr std::string_view metric_name(metric_kind k) noexcept {
  switch (k) {
    case metric_kind::ot_shift:
      return "ot_shift";
    case metric_kind::topology_coherence:
      return "topology_coherence";
    case metric_kind::ib_kl:
      return "ib_kl";
    case metric_kind::diffusion_energy:
      return "diffusion_energy";
    case metric_kind::attention_entropy:
      return "attention_entropy";
    case metric_kind::h0_scale_spread:
      return "h0_scale_spread";
    case metric_kind::gromov_delta:
      return "gromov_delta";
    case metric_kind::sequence_smoothness:
      return "sequence_smoothness";
  }
  return "unknown";
}

/// \brief Status of a metric value within its band.
enum class metric_status { healthy, warning, critical, info };

/// \brief Lower-case name of a status.
[[nodiscard]] constexpr std::string_view status_name(metric_status s) noexcept {
  switch (s) {
    case metric_status::healthy:
      return "healthy";
    case metric_status::warning:
      return "warning";
    case metric_status::critical:
      return "critical";
    case metric_status::info:
      return "info";
  }
  return "unknown";
}

/// \brief Nested healthy ⊆ warning intervals (see the file comment).
struct metric_band {
  double healthy_lo = -std::numeric_limits<double>::infinity();
  double healthy_hi = std::numeric_limits<double>::infinity();
  double warning_lo = -std::numeric_limits<double>::infinity();
  double warning_hi = std::numeric_limits<double>::infinity();

  /// \brief Throws `invalid_config` unless warning_lo ≤ healthy_lo ≤ healthy_hi ≤ warning_hi.
  void validate() const {
    require_config(!std::isnan(healthy_lo) && !std::isnan(healthy_hi) && !std::isnan(warning_lo) &&
                       !std::isnan(warning_hi),
                   "metric_band: bounds must not be NaN");
    require_config(warning_lo <= healthy_lo && healthy_lo <= healthy_hi && healthy_hi <= warning_hi,
                   "metric_band: need warning_lo <= healthy_lo <= healthy_hi <= warning_hi");
  }

  /// \brief The status of `value` (NaN is critical).
  [[nodiscard]] metric_status classify(double value) const noexcept {
    if (value >= healthy_lo && value <= healthy_hi) return metric_status::healthy;
    if (value >= warning_lo && value <= warning_hi) return metric_status::warning;
    return metric_status::critical;
  }
};

/// \brief The band of a metric where higher is worse: healthy ≤ warn_at, warning ≤ critical_at.
[[nodiscard]] constexpr metric_band higher_is_worse(double warn_at, double critical_at) noexcept {
  return {-std::numeric_limits<double>::infinity(), warn_at,
          -std::numeric_limits<double>::infinity(), critical_at};
}

/// \brief The band of a metric where lower is worse: healthy ≥ warn_at, warning ≥ critical_at.
[[nodiscard]] constexpr metric_band lower_is_worse(double warn_at, double critical_at) noexcept {
  return {warn_at, std::numeric_limits<double>::infinity(), critical_at,
          std::numeric_limits<double>::infinity()};
}

/// \brief Default bands, with the reasoning for each threshold.
struct report_bands {
  /// Queries within the key distribution give ≈ 1; 2 means the queries are as far from the keys
  /// again as a key sample of the same size, 4 a clear distribution shift.
  metric_band ot_shift = higher_is_worse(2.0, 4.0);
  /// Coherence in [0, 1]: below ½ the attention mass cuts across the keys' neighbourhoods.
  metric_band topology_coherence = lower_is_worse(0.5, 0.3);
  /// Per-dimension KL: ≈ 0 is posterior collapse (the code carries nothing), large values mean
  /// little compression (Alemi et al. 2017 train at 0.1–2 nats per dimension).
  metric_band ib_kl = {0.01, 2.0, 1e-3, 10.0};
  /// Rayleigh quotient of the logits on the key graph, in [0, 2]: an independent random value per
  /// key gives ≈ 1 (the mean eigenvalue of L_rw); dot-product logits of Gaussian keys give
  /// 0.55–0.8 (d = 16–64; kNN graphs in high dimension are less informative), smooth or clustered
  /// data ≈ 0. Above 0.9 the logits are about as rough as noise over the graph.
  metric_band diffusion_energy = higher_is_worse(0.9, 1.1);
  /// Normalised entropy: near 0 is one-hot (gradients vanish), near 1 is uniform (no selection).
  metric_band attention_entropy = {0.1, 0.97, 0.03, 0.995};

  /// \brief The band of a banded metric; nullopt for informational ones.
  [[nodiscard]] std::optional<metric_band> band(metric_kind k) const noexcept {
    switch (k) {
      case metric_kind::ot_shift:
        return ot_shift;
      case metric_kind::topology_coherence:
        return topology_coherence;
      case metric_kind::ib_kl:
        return ib_kl;
      case metric_kind::diffusion_energy:
        return diffusion_energy;
      case metric_kind::attention_entropy:
        return attention_entropy;
      default:
        return std::nullopt;
    }
  }

  /// \brief Validates every band.
  void validate() const {
    ot_shift.validate();
    topology_coherence.validate();
    ib_kl.validate();
    diffusion_energy.validate();
    attention_entropy.validate();
  }
};

/// \brief One metric of a report.
struct metric_value {
  metric_kind kind{};
  double value = 0;
  metric_status status = metric_status::info;

  /// \brief 1 healthy, ½ warning, 0 critical; informational metrics have no score.
  [[nodiscard]] std::optional<double> score() const noexcept {
    switch (status) {
      case metric_status::healthy:
        return 1.0;
      case metric_status::warning:
        return 0.5;
      case metric_status::critical:
        return 0.0;
      case metric_status::info:
        return std::nullopt;
    }
    return std::nullopt;
  }
};

}  // namespace ruvector::attention
