#pragma once
/// \file topology/policy.hpp
/// \brief The gating policy of topology-gated attention: a three-mode state machine driven by the
/// window-coherence score (topology/coherence.hpp), with hysteresis, an update period and an
/// optional minimum dwell.
///
/// ## Modes (from least to most restrictive)
/// - `stable`   — coherent window: full softmax attention.
/// - `cautious` — doubtful window: top-k sparse attention.
/// - `freeze`   — incoherent window: a conservative fallback (see gated_attention.hpp).
///
/// ## State machine (`next_mode`), thresholds c2 < c1, hysteresis h ≥ 0, coherence c ∈ [0, 1]
/// - stable:   c < c2 → freeze; else c < c1 → cautious; else stable.
/// - cautious: c < c2 → freeze; else c > c1 + h → stable; else cautious.
/// - freeze:   c > c2 + h → cautious; else freeze.
/// Entering a more restrictive mode uses the bare thresholds (strict `<`); leaving one needs the
/// score to clear the threshold by more than h (strict `>`), so a score oscillating around a
/// threshold by less than h cannot make the mode flap. Recovery from freeze is one step per update
/// (freeze → cautious → stable), degradation may jump (stable → freeze).
///
/// ## Update period and dwell (`topology_policy`)
/// Calls are numbered 0, 1, 2, … since construction or `reset()`. Call t is an *update* iff
/// t mod N = 0 (N = `update_period` ≥ 1): only then is the coherence computed and the state
/// machine stepped; between updates the mode is held. So the mode can change only at calls
/// 0, N, 2N, …, and the first call is always an update.
/// With `min_dwell` = D ≥ 1, a *relaxing* transition (freeze → cautious, cautious → stable) is
/// suppressed until the mode has been held for at least D updates after the one that entered it;
/// tightening transitions are never delayed. `dwell()` counts the updates since the current mode
/// was entered (the entering update excluded; 0 after construction/reset, mode `stable`).
///
/// Validation (`policy_config::validate`, `invalid_config`): all values finite,
/// 0 ≤ c2 < c1 ≤ 1, h ≥ 0, N ≥ 1. (c1 + h ≥ 1 is legal and means cautious never returns to
/// stable.)

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/validate.hpp"

namespace ruvector::attention {

/// \brief The three gate modes, ordered from least to most restrictive.
enum class topology_mode : std::uint8_t { stable = 0, cautious = 1, freeze = 2 };

/// \brief "stable", "cautious" or "freeze".
[[nodiscard]] constexpr const char* to_string(topology_mode m) noexcept {
  switch (m) {
    case topology_mode::stable:
      return "stable";
    case topology_mode::cautious:
      return "cautious";
    case topology_mode::freeze:
      return "freeze";
  }
  return "unknown";
}

/// \brief Thresholds, hysteresis, update period and dwell of the policy (see the file comment).
struct policy_config {
  double cautious_threshold = 0.5;  ///< c1: enter cautious when coherence < c1
  double freeze_threshold = 0.3;    ///< c2 < c1: enter freeze when coherence < c2
  double hysteresis = 0.05;         ///< h ≥ 0: leave a mode only when coherence > threshold + h
  std::size_t update_period = 1;    ///< N ≥ 1: metrics recomputed on calls 0, N, 2N, …
  std::size_t min_dwell = 0;        ///< D: updates to hold a mode before relaxing it (0 = none)

  /// Throws `invalid_config` naming the offending field.
  void validate() const {
    require_config(std::isfinite(cautious_threshold) && std::isfinite(freeze_threshold) &&
                       std::isfinite(hysteresis),
                   "policy_config thresholds and hysteresis must be finite");
    require_config(freeze_threshold >= 0.0 && freeze_threshold < cautious_threshold &&
                       cautious_threshold <= 1.0,
                   "policy_config requires 0 <= freeze_threshold < cautious_threshold <= 1");
    require_config(hysteresis >= 0.0, "policy_config.hysteresis must be >= 0");
    require_config(update_period >= 1, "policy_config.update_period must be >= 1");
  }
};

/// \brief One step of the state machine (pure; no period or dwell). Throws `invalid_argument`
/// for a NaN coherence and `invalid_config` for an invalid `config`.
[[nodiscard]] inline topology_mode next_mode(topology_mode current, double coherence,
                                             const policy_config& config) {
  config.validate();
  require_argument(!std::isnan(coherence), "next_mode: coherence is NaN");
  const double c1 = config.cautious_threshold, c2 = config.freeze_threshold, h = config.hysteresis;
  switch (current) {
    case topology_mode::stable:
      if (coherence < c2) return topology_mode::freeze;
      if (coherence < c1) return topology_mode::cautious;
      return topology_mode::stable;
    case topology_mode::cautious:
      if (coherence < c2) return topology_mode::freeze;
      if (coherence > c1 + h) return topology_mode::stable;
      return topology_mode::cautious;
    case topology_mode::freeze:
      if (coherence > c2 + h) return topology_mode::cautious;
      return topology_mode::freeze;
  }
  throw invalid_argument("invalid argument: next_mode: unknown current mode");
}

/// \brief What one call to `topology_policy::step` did.
struct policy_step {
  topology_mode mode = topology_mode::stable;  ///< the mode for this call (after any update)
  bool updated = false;                        ///< this call was an update call
  std::size_t call_index = 0;                  ///< the call's number since construction/reset
};

/// \brief The stateful policy: counts calls, steps `next_mode` on update calls, applies the
/// minimum dwell. Not synchronised: guard it externally when shared (topology_gated_attention
/// does, with a mutex).
class topology_policy {
 public:
  /// Throws `invalid_config` for an invalid `config`.
  explicit topology_policy(const policy_config& config = {}) : config_(config) {
    config_.validate();
  }

  [[nodiscard]] const policy_config& config() const noexcept { return config_; }
  [[nodiscard]] topology_mode mode() const noexcept { return mode_; }
  /// Calls counted since construction or `reset()`.
  [[nodiscard]] std::size_t calls() const noexcept { return calls_; }
  /// Updates the current mode has been held for (the entering update excluded).
  [[nodiscard]] std::size_t dwell() const noexcept { return dwell_; }
  /// True iff the next call is an update call.
  [[nodiscard]] bool update_due() const noexcept { return calls_ % config_.update_period == 0; }
  /// The coherence of the last update (empty before the first).
  [[nodiscard]] std::optional<double> last_coherence() const noexcept { return last_; }

  /// Counts one call. On an update call, invokes `coherence_fn()` (→ double) and steps the state
  /// machine; otherwise does not invoke it and holds the mode. If `coherence_fn` throws, the
  /// state is unchanged (the call is not counted).
  template <class F>
  policy_step step(F&& coherence_fn) {
    policy_step r{mode_, update_due(), calls_};
    if (r.updated) {
      const double c = static_cast<double>(std::forward<F>(coherence_fn)());
      topology_mode proposed = next_mode(mode_, c, config_);  // throws on NaN: state unchanged
      const bool relaxing = static_cast<int>(proposed) < static_cast<int>(mode_);
      if (relaxing && dwell_ < config_.min_dwell) proposed = mode_;
      if (proposed != mode_) {
        mode_ = proposed;
        dwell_ = 0;
      } else {
        ++dwell_;
      }
      last_ = c;
      r.mode = mode_;
    }
    ++calls_;
    return r;
  }

  /// Counts one call with an already computed coherence (used only if the call is an update).
  policy_step observe(double coherence) {
    return step([coherence] { return coherence; });
  }

  /// Back to mode `stable`, call 0, dwell 0, no last coherence.
  void reset() noexcept {
    mode_ = topology_mode::stable;
    calls_ = 0;
    dwell_ = 0;
    last_.reset();
  }

 private:
  policy_config config_;
  topology_mode mode_ = topology_mode::stable;
  std::size_t calls_ = 0;
  std::size_t dwell_ = 0;
  std::optional<double> last_{};
};

}  // namespace ruvector::attention
