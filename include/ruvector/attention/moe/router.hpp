#pragma once
/// \file moe/router.hpp
/// \brief Learned top-k token router with expert capacity and the auxiliary losses of sparse
/// mixtures of experts: noisy top-k gating (Shazeer et al. 2017), Switch routing and load balancing
/// (Fedus et al. 2021, "Switch Transformers", §2.1–2.2, §2.4), GShard capacity (Lepikhin et al.
/// 2020), batch-prioritised routing (Riquelme et al. 2021, V-MoE) and the router z-loss (Zoph et
/// al. 2022, "ST-MoE", §3.1). For N tokens x_t ∈ ℝ^d and E experts:
///
///     logits  l = x W_rᵀ (+ b)                      W_r [E × d], b [E]          [N × E]
///     probs   p_t = softmax(l_t)                    (max-subtracted)
///     top-k   S_t = the k experts of largest l_te   (ties → lower expert index), slot order =
///                                                   descending probability
///     gates   g_ts = p_t,e_s / Σ_{s'<k} p_t,e_s'    (renormalize = true;  default for k > 1)
///             g_ts = p_t,e_s                        (renormalize = false; Switch's k = 1 gate)
///     capacity C = ⌈capacity_factor · N · k / E⌉    (clamped to [1, N]; +inf → N)
///     L_aux   = E · Σ_e f_e · P_e,  P_e = (1/N) Σ_t p_te,
///             f_e = (1/N) Σ_t 1[e_t,0 = e]          (balance_fraction::top1, Switch's dispatch
///                                                   fraction of the first choice; default) or
///             f_e = (1/(N·k)) Σ_t Σ_s 1[e_ts = e]   (balance_fraction::top_k)
///     L_z     = (1/N) Σ_t (log Σ_e exp l_te)²
///
/// L_aux = 1 when P and f are both uniform and E·P_e when every token picks expert e; L_z = (ln E)²
/// for all-zero logits. Both are reported, not added: scale them (Switch α = 1e-2, ST-MoE
/// c_z = 1e-3) in the training loss. They and P_e are accumulated in double and rounded to T.
///
/// **Capacity and overflow.** Each expert accepts at most C assignments. Assignments are admitted
/// slot-major (all first choices, then all second choices, ..., as in GShard), and within a slot in
/// the order of `capacity_priority`: `token_order` (token index; Switch/GShard) or `gate_value`
/// (batch-prioritised routing: tokens by descending top-1 probability, ties → lower token index).
/// An assignment arriving at a full expert is **dropped**: it contributes nothing to the token's
/// output (its term is zero; the remaining gates are not renormalised), and it is listed in
/// `stats.dropped` in admission order. A token whose every slot is dropped gets a zero output;
/// with the usual residual connection y = x + moe(x) it passes through unchanged, as in Switch.
///
/// **Jitter** (training only; `routing_call::train`): `multiplicative` multiplies the router's
/// input element-wise by u ~ U(1 − ε, 1 + ε) (Switch's jitter; experts still see the clean token);
/// `additive` adds ε·N(0, 1) to each logit (noisy top-k with a fixed noise scale ε instead of
/// Shazeer's learned softplus(x W_noise)). Draws come from `rng(call.seed)` in token-major order
/// (for multiplicative: token, then input coordinate; for additive: token, then expert), serially,
/// so the result is bit-identical for a seed on any thread count; pass a different seed per
/// training step. With `train = false` routing is deterministic and the seed is ignored. Losses,
/// top-k and gates all use the jittered logits.
///
/// **Initialisation.** W_r ~ N(0, σ²) with σ = √(0.1/d), truncated to ±2σ by resampling (Switch
/// §2.4's reduced initialisation scale), drawn row-major from `rng(config.seed)`; b = 0.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief Training-time noise of the router (see the file comment).
enum class router_jitter {
  none,            ///< no noise
  multiplicative,  ///< router input ⊙ U(1 − ε, 1 + ε) (Switch)
  additive         ///< logits + ε·N(0, 1) (noisy top-k, fixed scale)
};

/// \brief Order in which assignments claim expert capacity within a slot.
enum class capacity_priority {
  token_order,  ///< by token index (Switch / GShard)
  gate_value    ///< by descending top-1 probability (batch-prioritised routing, V-MoE)
};

/// \brief Which dispatch fraction f_e enters the load-balancing loss.
enum class balance_fraction {
  top1,  ///< fraction of tokens whose first choice is e (Switch)
  top_k  ///< fraction of all N·k assignments that go to e
};

/// \brief Configuration of `top_k_router`.
struct router_config {
  std::size_t dim = 0;                ///< token width d
  std::size_t num_experts = 0;        ///< E
  std::size_t top_k = 1;              ///< k (1 ≤ k ≤ E)
  double capacity_factor = 1.25;      ///< > 0; +inf = unlimited (C = N)
  std::optional<bool> renormalize{};  ///< renormalise gates over the k selected (default k > 1)
  router_jitter jitter = router_jitter::none;
  double jitter_eps = 1e-2;  ///< ε of the jitter (≥ 0; < 1 for multiplicative)
  capacity_priority priority = capacity_priority::token_order;
  balance_fraction balance = balance_fraction::top1;
  bool bias = false;       ///< learn a router bias b (initialised to zero)
  std::uint64_t seed = 0;  ///< seed of the router initialisation
};

/// \brief Per-call options of routing (and of `moe_attention::forward`).
struct routing_call {
  bool train = false;        ///< apply the configured jitter (training mode)
  std::uint64_t seed = 0;    ///< seed of the jitter draws (ignored when train = false)
  bool check_finite = true;  ///< throw `non_finite_input` on NaN/Inf tokens
};

/// \brief One (token, slot) → expert assignment.
struct moe_assignment {
  std::size_t token = 0;   ///< token index t
  std::size_t slot = 0;    ///< slot s < k (0 = first choice)
  std::size_t expert = 0;  ///< expert index e
  friend bool operator==(const moe_assignment&, const moe_assignment&) = default;
};

/// \brief Summary statistics of one routing of a batch.
template <class T>
struct moe_stats {
  T load_balance_loss = T(0);  ///< L_aux = E · Σ_e f_e P_e (0 for an empty batch)
  T router_z_loss = T(0);      ///< L_z = mean_t logsumexp(l_t)² (0 for an empty batch)
  std::size_t capacity = 0;    ///< C, the per-expert capacity
  std::vector<std::size_t> tokens_per_expert;    ///< [E] assignments kept (≤ C)
  std::vector<std::size_t> assigned_per_expert;  ///< [E] assignments before capacity
  std::vector<T> expert_fraction;                ///< [E] f_e of the balance loss
  std::vector<T> mean_probability;               ///< [E] P_e of the balance loss
  std::vector<moe_assignment> dropped;  ///< assignments beyond capacity, in admission order
  std::size_t dropped_tokens = 0;       ///< tokens none of whose slots was kept (zero output)
};

/// \brief The full routing decision of a batch of N tokens.
template <class T>
struct router_output {
  std::size_t num_tokens = 0, num_experts = 0, top_k = 0;
  row_matrix<T> logits;              ///< [N × E] the logits used (after bias and jitter)
  row_matrix<T> probs;               ///< [N × E] softmax of `logits`
  std::vector<std::size_t> experts;  ///< [N·k] expert of slot s of token t at t·k + s
  std::vector<T> gates;              ///< [N·k] gate of each slot (before capacity)
  std::vector<std::uint8_t> kept;    ///< [N·k] 1 = admitted within capacity, 0 = dropped
  std::vector<T> lse;                ///< [N] log Σ_e exp(l_te) (the z-loss term before squaring)
  /// [E + 1] `dispatch[expert_offsets[e] .. expert_offsets[e+1])` are expert e's kept assignments.
  std::vector<std::size_t> expert_offsets;
  std::vector<moe_assignment> dispatch;  ///< kept assignments grouped by expert, admission order
  moe_stats<T> stats;                    ///< losses, counts and dropped assignments

  /// Expert of slot s of token t.
  [[nodiscard]] std::size_t expert(std::size_t t, std::size_t s) const {
    return experts[t * top_k + s];
  }
  /// Gate of slot s of token t.
  [[nodiscard]] T gate(std::size_t t, std::size_t s) const { return gates[t * top_k + s]; }
  /// Whether slot s of token t was admitted.
  [[nodiscard]] bool is_kept(std::size_t t, std::size_t s) const {
    return kept[t * top_k + s] != 0;
  }
};

/// \brief Learned linear top-k router (see the file comment). Immutable after construction except
/// through `set_weights`; `route` is const and thread-safe.
template <attention_scalar T = float>
class top_k_router {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief Validates `config` (throws `invalid_config`) and initialises W_r (and b) from its seed.
  explicit top_k_router(const router_config& config) : cfg_(config) {
    const router_config& c = cfg_;
    std::ostringstream os;
    require_config(c.dim > 0, "top_k_router: dim must be > 0");
    require_at_most("top_k_router dim", c.dim, max_dimension);
    require_config(c.num_experts > 0, "top_k_router: num_experts must be > 0");
    require_at_most("top_k_router num_experts", c.num_experts, max_dimension);
    if (c.top_k == 0 || c.top_k > c.num_experts) {
      os << "top_k_router: top_k must be in [1, num_experts = " << c.num_experts << "], got "
         << c.top_k;
      require_config(false, os.str());
    }
    if (!(c.capacity_factor > 0.0)) {
      os << "top_k_router: capacity_factor must be > 0 (or +inf for no limit), got "
         << c.capacity_factor;
      require_config(false, os.str());
    }
    if (!(c.jitter_eps >= 0.0) || !std::isfinite(c.jitter_eps) ||
        (c.jitter == router_jitter::multiplicative && c.jitter_eps >= 1.0)) {
      os << "top_k_router: jitter_eps must be finite, >= 0 (and < 1 for multiplicative jitter), "
            "got "
         << c.jitter_eps;
      require_config(false, os.str());
    }
    renormalize_ = c.renormalize.value_or(c.top_k > 1);
    initialise();
  }

  [[nodiscard]] const router_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t dim() const noexcept { return cfg_.dim; }
  [[nodiscard]] std::size_t num_experts() const noexcept { return cfg_.num_experts; }
  [[nodiscard]] std::size_t top_k() const noexcept { return cfg_.top_k; }
  /// Whether gates are renormalised over the k selected experts.
  [[nodiscard]] bool renormalize() const noexcept { return renormalize_; }
  /// W_r [E × d].
  [[nodiscard]] const row_matrix<T>& weight() const noexcept { return w_; }
  /// b [E] (empty = no bias).
  [[nodiscard]] const vector_type& bias() const noexcept { return b_; }

  /// \brief Replaces W_r [E × d] and b ([E], or empty for none). Throws `dimension_mismatch` on
  /// wrong shapes, `non_finite_input` on NaN/Inf. Not thread-safe with concurrent `route` calls.
  void set_weights(row_matrix<T> w, vector_type b = {}) {
    require_dimension("router weight.rows()", static_cast<std::size_t>(w.rows()), cfg_.num_experts);
    require_dimension("router weight.cols()", static_cast<std::size_t>(w.cols()), cfg_.dim);
    if (b.size() != 0)
      require_dimension("router bias.size()", static_cast<std::size_t>(b.size()), cfg_.num_experts);
    require_finite("router weight", w.data(), cfg_.num_experts, cfg_.dim, w.cols());
    require_finite("router bias", std::span<const T>(b.data(), static_cast<std::size_t>(b.size())));
    w_ = std::move(w);
    b_ = std::move(b);
  }

  /// \brief C = ⌈capacity_factor · N · k / E⌉ clamped to [1, N] (0 for N = 0). The product is
  /// evaluated in double and shrunk by a relative 1e-12 before the ceiling, so a value that is an
  /// integer up to rounding (e.g. 1.25 · 8 · 2 / 4) is not bumped to the next integer.
  [[nodiscard]] std::size_t capacity(std::size_t num_tokens) const noexcept {
    if (num_tokens == 0) return 0;
    if (std::isinf(cfg_.capacity_factor)) return num_tokens;
    const double x = cfg_.capacity_factor * static_cast<double>(num_tokens) *
                     static_cast<double>(cfg_.top_k) / static_cast<double>(cfg_.num_experts);
    const double c = std::ceil(x * (1.0 - 1e-12));
    if (c >= static_cast<double>(num_tokens)) return num_tokens;
    return std::max<std::size_t>(1, static_cast<std::size_t>(c));
  }

  /// \brief Routes the N rows of `tokens` [N × d] (see the file comment). An empty batch gives an
  /// empty decision with zero losses. Throws `dimension_mismatch` when tokens.cols() ≠ d and
  /// `non_finite_input` on NaN/Inf tokens (with `call.check_finite`) or overflowing logits.
  [[nodiscard]] router_output<T> route(const matrix_cref<T>& tokens,
                                       const routing_call& call = {}) const {
    router_output<T> out;
    route_into(tokens, out, call);
    return out;
  }

  /// \brief `route` into a caller-owned result whose buffers are reused (no allocation when the
  /// batch shape repeats, which avoids page faults on large batches). Every field is overwritten;
  /// after an exception the contents of `out` are unspecified.
  void route_into(const matrix_cref<T>& tokens, router_output<T>& out,
                  const routing_call& call = {}) const {
    const std::size_t N = static_cast<std::size_t>(tokens.rows());
    const std::size_t d = cfg_.dim, E = cfg_.num_experts, k = cfg_.top_k;
    require_dimension("tokens.cols() (router dim)", static_cast<std::size_t>(tokens.cols()), d);
    require_at_most("tokens.rows()", N, max_sequence_length);
    if (call.check_finite) {
      // Vectorised scan; the element-wise diagnosis (which names the first bad element) runs only
      // on failure.
      for (std::size_t t = 0; t < N; ++t) {
        if (!kernels::all_finite(tokens.data() + t * static_cast<std::size_t>(tokens.outerStride()),
                                 d)) {
          require_finite("tokens", tokens.data(), N, d,
                         static_cast<std::ptrdiff_t>(tokens.outerStride()));
        }
      }
    }

    const auto idx = [](std::size_t v) { return static_cast<Eigen::Index>(v); };
    out.num_tokens = N;
    out.num_experts = E;
    out.top_k = k;
    out.logits.resize(idx(N), idx(E));
    out.probs.resize(idx(N), idx(E));
    out.experts.assign(N * k, 0);
    out.gates.assign(N * k, T(0));
    out.kept.assign(N * k, 0);
    out.lse.assign(N, T(0));
    out.dispatch.clear();
    out.stats.dropped.clear();
    out.stats.dropped_tokens = 0;
    out.stats.load_balance_loss = T(0);
    out.stats.router_z_loss = T(0);
    out.stats.capacity = capacity(N);

    // ---- jitter draws (serial, token-major: independent of the thread count) -------------------
    const bool jitter = call.train && cfg_.jitter != router_jitter::none && cfg_.jitter_eps > 0.0;
    row_matrix<T> jittered;
    row_matrix<T> noise;
    if (jitter) {
      rng gen(call.seed);
      const double eps = cfg_.jitter_eps;
      if (cfg_.jitter == router_jitter::multiplicative) {
        jittered = tokens;
        for (Eigen::Index i = 0; i < jittered.size(); ++i)
          jittered.data()[i] *= gen.uniform<T>(T(1.0 - eps), T(1.0 + eps));
      } else {
        noise.resize(idx(N), idx(E));
        for (Eigen::Index i = 0; i < noise.size(); ++i)
          noise.data()[i] = static_cast<T>(eps * gen.normal<double>());
      }
    }
    const matrix_cref<T> src = jittered.size() != 0 ? matrix_cref<T>(jittered) : tokens;

    // ---- logits, softmax, top-k and gates per block of tokens ----------------------------------
    std::vector<T>& lse = out.lse;
    constexpr std::size_t block = 256;
    const std::size_t blocks = (N + block - 1) / block;
    parallel_for(0, blocks, [&](std::size_t bi) {
      const std::size_t r0 = bi * block, rows = std::min(block, N - r0);
      out.logits.middleRows(idx(r0), idx(rows)).noalias() =
          src.middleRows(idx(r0), idx(rows)) * w_.transpose();
      std::vector<std::size_t> order(E);
      for (std::size_t t = r0; t < r0 + rows; ++t) {
        T* l = out.logits.data() + t * E;
        if (b_.size() != 0)
          for (std::size_t e = 0; e < E; ++e) l[e] += b_[idx(e)];
        if (noise.size() != 0)
          for (std::size_t e = 0; e < E; ++e) l[e] += noise(idx(t), idx(e));
        if (!kernels::all_finite(l, E)) {
          std::ostringstream os;
          os << "non-finite input: router logits of token " << t
             << " are not finite (the token or the router weights overflow)";
          throw non_finite_input(os.str());
        }
        T* p = out.probs.data() + t * E;
        std::copy(l, l + E, p);
        lse[t] = kernels::softmax(p, E);
        // Top-k by logit, ties → lower index (a strict weak order on finite logits).
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::partial_sort(
            order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
            [l](std::size_t a, std::size_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
        T sum = T(0);
        for (std::size_t s = 0; s < k; ++s) {
          out.experts[t * k + s] = order[s];
          out.gates[t * k + s] = p[order[s]];
          sum += p[order[s]];
        }
        if (renormalize_)  // sum ≥ p_max ≥ 1/E > 0
          for (std::size_t s = 0; s < k; ++s) out.gates[t * k + s] /= sum;
      }
    });

    // ---- auxiliary losses (serial sums in double, token order) ---------------------------------
    moe_stats<T>& st = out.stats;
    st.tokens_per_expert.assign(E, 0);
    st.assigned_per_expert.assign(E, 0);
    st.expert_fraction.assign(E, T(0));
    st.mean_probability.assign(E, T(0));
    out.expert_offsets.assign(E + 1, 0);
    if (N == 0) return;
    std::vector<double> P(E, 0.0), f(E, 0.0);
    double z = 0.0;
    for (std::size_t t = 0; t < N; ++t) {
      z = std::fma(static_cast<double>(lse[t]), static_cast<double>(lse[t]), z);
      for (std::size_t e = 0; e < E; ++e) P[e] += static_cast<double>(out.probs(idx(t), idx(e)));
      for (std::size_t s = 0; s < k; ++s) ++st.assigned_per_expert[out.experts[t * k + s]];
      if (cfg_.balance == balance_fraction::top1) {
        f[out.experts[t * k]] += 1.0;
      } else {
        for (std::size_t s = 0; s < k; ++s) f[out.experts[t * k + s]] += 1.0;
      }
    }
    const double fnorm = cfg_.balance == balance_fraction::top1
                             ? static_cast<double>(N)
                             : static_cast<double>(N) * static_cast<double>(k);
    double aux = 0.0;
    for (std::size_t e = 0; e < E; ++e) {
      P[e] /= static_cast<double>(N);
      f[e] /= fnorm;
      // Explicit fma: with implicit contraction GCC's runtime-versioned copies of this loop
      // (chosen by the vectors' addresses) rounded differently, so equal inputs gave results 1 ulp
      // apart from call to call.
      aux = std::fma(f[e], P[e], aux);
      st.expert_fraction[e] = static_cast<T>(f[e]);
      st.mean_probability[e] = static_cast<T>(P[e]);
    }
    st.load_balance_loss = static_cast<T>(static_cast<double>(E) * aux);
    st.router_z_loss = static_cast<T>(z / static_cast<double>(N));

    // ---- capacity: slot-major admission in priority order ---------------------------------------
    std::vector<std::size_t> order(N);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (cfg_.priority == capacity_priority::gate_value) {
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return out.probs(idx(a), idx(out.experts[a * k])) >
               out.probs(idx(b), idx(out.experts[b * k]));
      });
    }
    const std::size_t C = st.capacity;
    for (std::size_t s = 0; s < k; ++s) {
      for (const std::size_t t : order) {
        const std::size_t e = out.experts[t * k + s];
        if (st.tokens_per_expert[e] < C) {
          ++st.tokens_per_expert[e];
          out.kept[t * k + s] = 1;
        } else {
          st.dropped.push_back(moe_assignment{t, s, e});
        }
      }
    }
    // Dispatch lists (grouped by expert, admission order): a second pass in the same order.
    for (std::size_t e = 0; e < E; ++e)
      out.expert_offsets[e + 1] = out.expert_offsets[e] + st.tokens_per_expert[e];
    out.dispatch.resize(out.expert_offsets[E]);
    std::vector<std::size_t> fill(out.expert_offsets.begin(), out.expert_offsets.end() - 1);
    for (std::size_t s = 0; s < k; ++s)
      for (const std::size_t t : order)
        if (out.kept[t * k + s] != 0) {
          const std::size_t e = out.experts[t * k + s];
          out.dispatch[fill[e]++] = moe_assignment{t, s, e};
        }
    for (std::size_t t = 0; t < N; ++t) {
      bool any = false;
      for (std::size_t s = 0; s < k; ++s) any = any || out.kept[t * k + s] != 0;
      if (!any) ++st.dropped_tokens;
    }
  }

 private:
  void initialise() {
    rng gen(cfg_.seed);
    const double sigma = std::sqrt(0.1 / static_cast<double>(cfg_.dim));
    w_.resize(static_cast<Eigen::Index>(cfg_.num_experts), static_cast<Eigen::Index>(cfg_.dim));
    for (Eigen::Index i = 0; i < w_.size(); ++i) {
      double v = gen.normal<double>();
      while (std::abs(v) > 2.0) v = gen.normal<double>();
      w_.data()[i] = static_cast<T>(sigma * v);
    }
    if (cfg_.bias) b_ = vector_type::Zero(static_cast<Eigen::Index>(cfg_.num_experts));
  }

  router_config cfg_;
  bool renormalize_ = false;
  row_matrix<T> w_;
  vector_type b_;
};

}  // namespace ruvector::attention
