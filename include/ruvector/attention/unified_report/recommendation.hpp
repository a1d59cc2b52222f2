#pragma once
/// \file recommendation.hpp
/// \brief The unified report's recommendation: a concrete mechanism and a temperature change.
///
/// Rules, first match wins (thresholds in `recommendation_policy`, reasons recorded in words):
/// 1. **geometric** (hyperbolic / mixed-curvature attention) when the keys are hierarchical: the
///    H0 death scales spread over ≥ `hierarchy_octaves` octaves (a tree whose branches shrink by
///    ½ per level gives ≈ 0.75–1.3; Gaussian clouds and smooth curves ≤ 0.35). Hyperbolic space
///    embeds trees with low distortion where Euclidean space cannot (Sarkar 2011; Nickel & Kiela
///    2017).
/// 2. **local_global** (Longformer) when the sequence is long (n ≥ `long_sequence`) and smooth
///    (consecutive keys much closer than random pairs: smoothness < `smooth_below`): nearby
///    tokens carry the signal, so a window plus a few global tokens covers it in O(n·w).
/// 3. **flash_sparse** (top-k sparse / flash) when the sequence is long and the attention is
///    concentrated (normalised entropy < `concentrated_below`): few keys carry the mass.
/// 4. **diffusion** when the logits are rough over a coherent key graph (diffusion energy not
///    healthy while the topology coherence is healthy): heat diffusion on the graph smooths them.
/// 5. **linear** when the sequence is very long (n ≥ `very_long_sequence`) and the attention is
///    spread (normalised entropy > `spread_above`): a kernelised O(n) approximation loses little.
/// 6. **standard** otherwise.
///
/// **Temperature.** When the normalised entropy r = H/ln n is outside [`entropy_low`,
/// `entropy_high`], the report proposes multiplying the temperature by
/// f = σ / σ*, with σ the standard deviation of the current scores (from the weights: ln w_j =
/// s_j − lse) and σ*² = 2·ln n·(1 − r*) the spread that gives the target entropy r* under the
/// small-spread expansion H ≈ ln n − σ²/2 of Gaussian scores. f < 1 sharpens near-uniform
/// attention, f > 1 softens near-one-hot attention; f is clamped to [1/20, 20] and is 1 inside
/// the band.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ruvector/attention/core/validate.hpp"

namespace ruvector::attention {

/// \brief The mechanism a report recommends.
enum class recommended_mechanism {
  standard,
  flash_sparse,
  linear,
  local_global,
  geometric,
  diffusion
};

/// \brief Lower-case name of a recommended mechanism.
[[nodiscard]] constexpr std::string_view mechanism_name(recommended_mechanism m) noexcept {
  switch (m) {
    case recommended_mechanism::standard:
      return "standard";
    case recommended_mechanism::flash_sparse:
      return "flash_sparse";
    case recommended_mechanism::linear:
      return "linear";
    case recommended_mechanism::local_global:
      return "local_global";
    case recommended_mechanism::geometric:
      return "geometric";
    case recommended_mechanism::diffusion:
      return "diffusion";
  }
  return "unknown";
}

/// \brief Thresholds of the recommendation rules (see the file comment).
struct recommendation_policy {
  double hierarchy_octaves = 0.6;
  std::size_t long_sequence = 512;
  double smooth_below = 0.1;
  double concentrated_below = 0.5;
  std::size_t very_long_sequence = 16384;
  double spread_above = 0.8;
  double entropy_low = 0.1;
  double entropy_high = 0.97;
  double entropy_target = 0.8;  ///< r* of the temperature rule

  /// \brief Throws `invalid_config` for out-of-range thresholds.
  void validate() const {
    require_config(hierarchy_octaves > 0, "recommendation_policy: hierarchy_octaves must be > 0");
    require_config(long_sequence >= 2 && very_long_sequence >= long_sequence,
                   "recommendation_policy: need 2 <= long_sequence <= very_long_sequence");
    require_config(smooth_below > 0 && concentrated_below > 0 && concentrated_below < 1 &&
                       spread_above > 0 && spread_above < 1,
                   "recommendation_policy: smooth_below > 0, concentrated_below and spread_above "
                   "in (0, 1)");
    require_config(entropy_low >= 0 && entropy_low < entropy_target &&
                       entropy_target < entropy_high && entropy_high <= 1,
                   "recommendation_policy: need 0 <= entropy_low < entropy_target < entropy_high "
                   "<= 1");
  }
};

/// \brief What the report recommends.
struct recommendation {
  recommended_mechanism mechanism = recommended_mechanism::standard;
  double temperature_factor = 1.0;   ///< multiply the softmax temperature by this (1 = keep)
  std::vector<std::string> reasons;  ///< one sentence per rule that fired
};

namespace detail {

/// The temperature factor of the file comment; 1 inside [entropy_low, entropy_high] or when the
/// score spread is unknown (0).
inline double temperature_factor(double normalized_entropy, double logit_std, std::size_t n,
                                 const recommendation_policy& p) noexcept {
  if (n < 2 || (normalized_entropy >= p.entropy_low && normalized_entropy <= p.entropy_high))
    return 1.0;
  const double target_std =
      std::sqrt(2.0 * std::log(static_cast<double>(n)) * (1 - p.entropy_target));
  if (!(logit_std > 0)) return normalized_entropy > p.entropy_high ? 1.0 / 20 : 20.0;
  return std::clamp(logit_std / target_std, 1.0 / 20, 20.0);
}

}  // namespace detail

}  // namespace ruvector::attention
