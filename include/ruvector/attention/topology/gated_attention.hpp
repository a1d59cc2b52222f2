#pragma once
/// \file topology/gated_attention.hpp
/// \brief Topology-gated attention: single-query attention whose form is chosen by a persistent
/// gate driven by the window coherence of the keys and the query's attention weights.
///
/// Per call, with scores s_j = scale·(q·k_j) (scale = 1/√d by default) and the mode m chosen by
/// the policy (topology/policy.hpp):
/// - **stable**: full scaled dot-product attention (Vaswani et al. 2017),
///       w_j = softmax(s)_j = exp(s_j − max s) / Σ_l exp(s_l − max s),   out = Σ_j w_j·v_j.
/// - **cautious**: top-k sparse attention: T = the k' = min(top_k, n) keys with the largest
///   scores (ties to the smaller index), w_j = exp(s_j − max_T s) / Σ_{l∈T} exp(s_l − max_T s)
///   for j ∈ T and 0 otherwise (the full softmax restricted to T and renormalised).
/// - **freeze**: the uniform average of the values of the f' = min(freeze_k, n) keys nearest to
///   the query in Euclidean distance ‖q − k_j‖ (ties to the smaller index): w_j = 1/f' on them.
///   Why: when the window is incoherent the scores themselves are suspect (their sharpness depends
///   on scale and magnitudes that the gate just judged unreliable). The fallback ignores score
///   magnitudes entirely, is a convex combination of a few values of keys that are *geometrically*
///   close to the query (a kNN-regression estimate: bounded by the values, no amplification,
///   low variance), and does not move abruptly under small perturbations of distant keys.
///
/// ## The gate (state persists across calls)
/// The policy state (mode, call counter, dwell, last metrics) lives in a block shared by the
/// object and its copies and guarded by a `std::mutex`; `compute*` are `const` because the
/// *configuration* is immutable, and so the type models `attention_mechanism`, but each call
/// advances the shared gate. Copies share the gate (a copied handle never forgets its state);
/// `fork()` makes an independent gate starting from a snapshot of the current state.
///
/// Call t (numbered from 0 since construction or `reset()`) is an update call iff
/// t mod update_period = 0. On an update call the full softmax weights a of *this* query are
/// computed, the coherence metrics (topology/coherence.hpp) of (keys, a) are computed and the
/// policy is stepped; the mode after the step is used for this call's output. Other calls use the
/// held mode and skip the metrics. Concurrent calls are safe: each call takes the next position
/// in one shared call sequence under the lock; an update call keeps the lock while it computes the
/// metrics, so the modes observed by concurrent calls are exactly those of some serial order of
/// the calls (which order is up to the scheduler). The output itself is computed outside the lock.
///
/// ## Cost per call (n keys, d = key width, dv = value width, k = kNN neighbours)
/// scores O(n·d); stable O(n·dv); cautious O(n + k' log k' + k'·dv); freeze O(n·d + f'·dv).
/// Update calls add O(n log n + n·k) for the metrics plus, with a raw key matrix, the kNN graph
/// O(n²·d) and edge cosines O(n·k·d) — rebuilt on every update because the key set may change
/// between calls. To pay that once per key set, build `coherence_keys` (coherence.hpp: a copy of
/// the keys with their kNN graph) and pass it instead of the key matrix; it owns its keys, so it
/// can never describe a different key set than the one the scores use.
///
/// ## Validation and errors
/// `dimension_mismatch` for a query/key/value shape mismatch, `invalid_argument` for empty keys or
/// values, `non_finite_input` (with `check_finite`, the default) for NaN/Inf in the query, keys or
/// values — all before the gate is touched, so a call that throws on its inputs leaves the gate
/// unchanged. `invalid_config` for a bad configuration (dim = 0, top_k = 0, freeze_k = 0,
/// non-positive/non-finite scale, bad coherence or policy config). n = 1 is valid (every mode
/// returns v_0; the kNN graph is empty, so the metrics are 0 and the coherence is 1); top_k ≥ n
/// or freeze_k ≥ n clamp to n (cautious then equals stable).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/attention_args.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/topology/coherence.hpp"
#include "ruvector/attention/topology/policy.hpp"

namespace ruvector::attention {

/// \brief Configuration of `topology_gated_attention` (the key width is a constructor argument).
template <attention_scalar T>
struct topology_gated_config {
  std::optional<T> scale{};      ///< logit scale; default 1/√dim (must be finite and > 0)
  std::size_t top_k = 8;         ///< cautious: keys kept (≥ 1; clamped to n)
  std::size_t freeze_k = 4;      ///< freeze: nearest keys averaged (≥ 1; clamped to n)
  coherence_config coherence{};  ///< metrics of the gate (k of the kNN graph, τ, weights)
  policy_config policy{};        ///< thresholds, hysteresis, update period, dwell
  bool check_finite = true;      ///< throw `non_finite_input` on NaN/Inf inputs
};

/// \brief Everything one gated call did.
template <attention_scalar T>
struct gated_output {
  std::vector<T> output;                       ///< attention output (length dv)
  std::vector<T> weights;                      ///< the weights used (length n, zeros off-support)
  topology_mode mode = topology_mode::stable;  ///< the mode used for this call
  bool updated = false;                        ///< metrics recomputed (an update call)
  std::optional<coherence_metrics> metrics;    ///< the metrics, on update calls only
  std::size_t call_index = 0;                  ///< position in the gate's call sequence
};

namespace detail {

// Indices of the `kk` best of n keys under `better(a, b)` (a strict total order), sorted by index.
template <class Better>
void select_best(std::size_t n, std::size_t kk, std::vector<std::uint32_t>& idx, Better better) {
  idx.resize(n);
  std::iota(idx.begin(), idx.end(), 0u);
  if (kk < n) {
    std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(), better);
    idx.resize(kk);
  }
  std::sort(idx.begin(), idx.end());
}

}  // namespace detail

/// \brief Topology-gated single-query attention (see the file comment). Thread-safe; copies
/// share the gate.
template <attention_scalar T = float>
class topology_gated_attention {
 public:
  using value_type = T;

  /// \param dim query/key width (> 0). Throws `invalid_config` for a bad configuration.
  explicit topology_gated_attention(std::size_t dim, const topology_gated_config<T>& config = {})
      : dim_(dim), config_(config) {
    require_config(dim > 0, "topology_gated_attention: dim must be > 0");
    require_at_most("dim", dim, max_dimension);
    require_config(config.top_k >= 1, "topology_gated_config.top_k must be >= 1");
    require_config(config.freeze_k >= 1, "topology_gated_config.freeze_k must be >= 1");
    if (config.scale) {
      require_config(std::isfinite(*config.scale) && *config.scale > T(0),
                     "topology_gated_config.scale must be finite and > 0");
    }
    config.coherence.validate();
    config.policy.validate();
    scale_ = config.scale ? *config.scale : T(1) / std::sqrt(static_cast<T>(dim));
    state_ = std::make_shared<gate_state>(config.policy);
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }
  [[nodiscard]] const topology_gated_config<T>& config() const noexcept { return config_; }

  /// The gate's current mode (the one the next non-update call would use).
  [[nodiscard]] topology_mode mode() const {
    std::lock_guard lock(state_->mutex);
    return state_->policy.mode();
  }
  /// Calls counted since construction or `reset()`.
  [[nodiscard]] std::size_t calls() const {
    std::lock_guard lock(state_->mutex);
    return state_->policy.calls();
  }
  /// The metrics of the last update call (empty before the first).
  [[nodiscard]] std::optional<coherence_metrics> last_metrics() const {
    std::lock_guard lock(state_->mutex);
    return state_->last_metrics;
  }
  /// Resets the shared gate: mode stable, call 0, no metrics (affects every copy).
  void reset() const {
    std::lock_guard lock(state_->mutex);
    state_->policy.reset();
    state_->last_metrics.reset();
  }
  /// An independent gate with the same configuration, starting from a snapshot of this state.
  [[nodiscard]] topology_gated_attention fork() const {
    topology_gated_attention copy(dim_, config_);
    std::lock_guard lock(state_->mutex);
    copy.state_->policy = state_->policy;
    copy.state_->last_metrics = state_->last_metrics;
    return copy;
  }

  /// \brief Gated attention output for one query over a raw key matrix (kNN rebuilt on update
  /// calls).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, keys, nullptr, values, out, {});
    return out;
  }

  /// \brief Gated attention output over prepared keys (kNN graph reused on update calls).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const coherence_keys<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, keys.keys(), &keys, values, out, {});
    return out;
  }

  /// \brief Output, weights used, mode, and (on update calls) the metrics.
  [[nodiscard]] gated_output<T> compute_detailed(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values) const {
    gated_output<T> r;
    r.output.resize(static_cast<std::size_t>(values.cols()));
    r.weights.resize(static_cast<std::size_t>(keys.rows()));
    run(query, keys, nullptr, values, r.output, r.weights, &r);
    return r;
  }

  /// \brief `compute_detailed` over prepared keys.
  [[nodiscard]] gated_output<T> compute_detailed(std::span<const T> query,
                                                 const coherence_keys<T>& keys,
                                                 const matrix_cref<T>& values) const {
    gated_output<T> r;
    r.output.resize(static_cast<std::size_t>(values.cols()));
    r.weights.resize(keys.size());
    run(query, keys.keys(), &keys, values, r.output, r.weights, &r);
    return r;
  }

 private:
  struct gate_state {
    explicit gate_state(const policy_config& p) : policy(p) {}
    std::mutex mutex;
    topology_policy policy;
    std::optional<coherence_metrics> last_metrics;
  };

  void validate(std::span<const T> query, const matrix_cref<T>& keys,
                const matrix_cref<T>& values) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_dimension("query.size()", query.size(), dim_);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_non_empty("values.cols()", static_cast<std::size_t>(values.cols()));
  }

  // The whole call; `weights` (empty or length n) receives the weights used; `info` (optional)
  // receives mode/updated/metrics/call index.
  void run(std::span<const T> query, const matrix_cref<T>& keys, const coherence_keys<T>* prepared,
           const matrix_cref<T>& values, std::span<T> out, std::span<T> weights,
           gated_output<T>* info = nullptr) const {
    validate(query, keys, values);
    const auto n = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    const auto ldk = static_cast<std::size_t>(keys.outerStride());
    const auto ldv = static_cast<std::size_t>(values.outerStride());

    // Scores s_j = scale·q·k_j. Finite scores ⇔ finite q and keys (0·Inf = NaN propagates); an
    // overflow of finite inputs is reported by the diagnosis.
    T* s = detail::thread_scratch<T, 0>(n);
    kernels::row_dots(keys.data(), n, dim_, ldk, query.data(), scale_, s);
    if (config_.check_finite) {
      if (!kernels::all_finite(s, n)) detail::diagnose_vector_inputs<T>(query, keys, values);
      // Values are scanned up front (every mode; O(n·dv)) so a bad input never advances the gate.
      bool values_ok = true;
      if (ldv == dv) {
        values_ok = kernels::all_finite(values.data(), n * dv);
      } else {
        for (std::size_t j = 0; j < n && values_ok; ++j)
          values_ok = kernels::all_finite(values.data() + j * ldv, dv);
      }
      if (!values_ok) require_finite("values", values.data(), n, dv, values.outerStride());
    }

    // Full softmax weights, computed at most once per call (update calls and stable mode).
    T* full = detail::thread_scratch<T, 1>(n);
    bool have_full = false;
    const auto full_weights = [&] {
      if (!have_full) {
        std::copy(s, s + n, full);
        kernels::softmax(full, n);
        have_full = true;
      }
    };

    policy_step step;
    std::optional<coherence_metrics> metrics;
    {
      std::lock_guard lock(state_->mutex);
      step = state_->policy.step([&] {
        full_weights();
        const std::span<const T> a(full, n);
        metrics = prepared ? compute_coherence(*prepared, a, config_.coherence)
                           : compute_coherence(coherence_keys<T>(keys, config_.coherence.k), a,
                                               config_.coherence);
        return metrics->coherence;
      });
      if (step.updated) state_->last_metrics = metrics;
    }

    // Output of the chosen mode.
    std::fill(out.begin(), out.end(), T(0));
    if (!weights.empty()) std::fill(weights.begin(), weights.end(), T(0));
    switch (step.mode) {
      case topology_mode::stable: {
        full_weights();
        kernels::weighted_row_sum(full, n, values.data(), dv, ldv, T(0), out.data());
        if (!weights.empty()) std::copy(full, full + n, weights.begin());
        break;
      }
      case topology_mode::cautious: {
        thread_local std::vector<std::uint32_t> idx;
        const std::size_t kk = std::min(config_.top_k, n);
        detail::select_best(n, kk, idx, [s](std::uint32_t a, std::uint32_t b) {
          return s[a] > s[b] || (s[a] == s[b] && a < b);
        });
        T m = -std::numeric_limits<T>::infinity();
        for (auto j : idx) m = std::max(m, s[j]);
        T* e = full;  // reuse as the k' exponentials (full weights are not needed any more)
        T l = T(0);
        for (std::size_t r = 0; r < kk; ++r) {
          e[r] = std::exp(s[idx[r]] - m);
          l += e[r];
        }
        for (std::size_t r = 0; r < kk; ++r) {
          const T w = e[r] / l;
          kernels::axpy(w, values.data() + idx[r] * ldv, out.data(), dv);
          if (!weights.empty()) weights[idx[r]] = w;
        }
        break;
      }
      case topology_mode::freeze: {
        thread_local std::vector<std::uint32_t> idx;
        const std::size_t kk = std::min(config_.freeze_k, n);
        T* dist = full;
        kernels::row_squared_distances(keys.data(), n, dim_, ldk, query.data(), dist);
        detail::select_best(n, kk, idx, [dist](std::uint32_t a, std::uint32_t b) {
          return dist[a] < dist[b] || (dist[a] == dist[b] && a < b);
        });
        const T w = T(1) / static_cast<T>(kk);
        for (auto j : idx) {
          kernels::axpy(w, values.data() + j * ldv, out.data(), dv);
          if (!weights.empty()) weights[j] = w;
        }
        break;
      }
    }
    if (config_.check_finite && !kernels::all_finite(out.data(), dv))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    if (info) {
      info->mode = step.mode;
      info->updated = step.updated;
      info->metrics = metrics;
      info->call_index = step.call_index;
    }
  }

  std::size_t dim_;
  topology_gated_config<T> config_;
  T scale_{};
  std::shared_ptr<gate_state> state_;
};

}  // namespace ruvector::attention
