#pragma once
/// \file moe/moe_attention.hpp
/// \brief Token-routed sparse mixture of experts (Shazeer et al. 2017; Switch Transformer, Fedus et
/// al. 2021; ST-MoE, Zoph et al. 2022). A batch of N tokens is routed in one call:
///
///     y_t = Σ_{s < k, slot (t, s) kept} g_ts · expert_{e_ts}(x_t)
///
/// with the router, gates, capacity, overflow policy and auxiliary losses of moe/router.hpp and the
/// experts of moe/expert.hpp (feed-forward experts, attention experts that treat the routed token
/// as a query over the call's context keys/values, or any `moe_expert`). Each token runs only
/// through the experts that kept it, so the work is k/E of a dense layer of E experts (plus the
/// router); a dropped assignment contributes zero (see router.hpp), so a token dropped by all its
/// experts outputs a zero row — add the residual (x + y) outside the layer for Switch's
/// pass-through.
///
/// This replaces the seeds' `MoEAttention`, which routed *mechanisms* (every expert saw all keys
/// and the router chose mechanisms per query) and used the non-standard balance loss
/// E·Σ_e(count_e/B − 1/E)². The seeds' shapes survive as adapters: `compute(query, keys, values)`
/// routes one token (so `moe_attention<T>` models `attention_mechanism`) and
/// `compute_with_loss(queries, keys, values)` returns the outputs and the Switch balance loss.
///
/// Execution: the router runs in blocks of 256 tokens; each expert's kept tokens are gathered
/// (in admission order) into blocks of `expert_block` rows, and `parallel_for` runs the (expert,
/// block) tasks, each writing its own rows of `expert_outputs` [assignments × d_out]; a second
/// `parallel_for` over tokens adds the gated rows in slot order. The blocking does not depend on
/// the thread count, so results are bit-identical for any number of threads. The layer is
/// immutable after construction; `forward` is const and thread-safe.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/moe/expert.hpp"
#include "ruvector/attention/moe/router.hpp"

namespace ruvector::attention {

/// \brief Configuration of a `moe_attention` layer of E seeded feed-forward experts. (The seeds'
/// `expert_capacity` is `capacity_factor`, `jitter_noise` is `jitter_eps`.)
struct moe_config {
  std::size_t dim = 0;          ///< token width d
  std::size_t num_experts = 4;  ///< E
  std::size_t top_k = 2;        ///< k
  std::size_t hidden_dim = 0;   ///< expert hidden width h (0 = 4·d)
  expert_activation activation = expert_activation::gelu;
  bool expert_bias = true;            ///< feed-forward biases (initialised to zero)
  double capacity_factor = 1.25;      ///< C = ⌈capacity_factor·N·k/E⌉; +inf = unlimited
  std::optional<bool> renormalize{};  ///< default: k > 1
  router_jitter jitter = router_jitter::none;
  double jitter_eps = 1e-2;
  capacity_priority priority = capacity_priority::token_order;
  balance_fraction balance = balance_fraction::top1;
  bool router_bias = false;
  /// Router seed; expert e is initialised from seed + 1 + e.
  std::uint64_t seed = 0;
  std::size_t expert_block = 256;  ///< tokens per (expert, block) task; > 0
};

/// \brief The output of one routed batch.
template <class T>
struct moe_result {
  row_matrix<T> output;      ///< [N × d_out]
  moe_stats<T> stats;        ///< losses, per-expert counts, dropped assignments (= routing.stats)
  router_output<T> routing;  ///< the full routing decision (logits, probs, experts, gates, kept)
  /// [assignments × d_out] the un-gated expert outputs, row i for `routing.dispatch[i]` (what a
  /// backward pass needs for ∂L/∂g_ts = ⟨∂L/∂y_t, expert_{e_ts}(x_t)⟩).
  row_matrix<T> expert_outputs;
};

/// \brief The seeds' `compute_with_loss` result.
template <class T>
struct moe_loss_output {
  std::vector<std::vector<T>> outputs;  ///< one output per query
  T loss = T(0);                        ///< the Switch load-balancing loss L_aux
  moe_stats<T> stats;                   ///< every other statistic of the call
};

/// \brief Token-routed mixture of experts (see the file comment).
template <attention_scalar T = float>
class moe_attention {
 public:
  using value_type = T;

  /// \brief A router and E feed-forward experts d → h → d, all seeded from `config`.
  explicit moe_attention(const moe_config& config)
      : router_(make_router_config(config)), block_(config.expert_block) {
    require_config(block_ > 0, "moe_attention: expert_block must be > 0");
    experts_.reserve(config.num_experts);
    for (std::size_t e = 0; e < config.num_experts; ++e) {
      experts_.emplace_back(feed_forward_expert<T>(
          feed_forward_config{.dim = config.dim,
                              .hidden = config.hidden_dim,
                              .activation = config.activation,
                              .bias = config.expert_bias,
                              .seed = config.seed + 1 + static_cast<std::uint64_t>(e)}));
    }
  }

  /// \brief The seeds' shape: d = `dim`, E = `num_experts`, k = `top_k`, defaults otherwise.
  moe_attention(std::size_t dim, std::size_t num_experts, std::size_t top_k)
      : moe_attention(moe_config{.dim = dim, .num_experts = num_experts, .top_k = top_k}) {}

  /// \brief A router and caller-supplied experts (experts.size() must equal the router's E; every
  /// expert's input width must be d and all output widths equal — checked per call, since
  /// attention experts take their widths from the call's context).
  moe_attention(top_k_router<T> router, std::vector<any_expert<T>> experts,
                std::size_t expert_block = 256)
      : router_(std::move(router)), experts_(std::move(experts)), block_(expert_block) {
    std::ostringstream os;
    if (experts_.size() != router_.num_experts()) {
      os << "moe_attention: got " << experts_.size() << " experts, the router has "
         << router_.num_experts();
      require_config(false, os.str());
    }
    for (std::size_t e = 0; e < experts_.size(); ++e) {
      if (experts_[e].empty()) {
        os << "moe_attention: experts[" << e << "] is empty";
        require_config(false, os.str());
      }
    }
    require_config(block_ > 0, "moe_attention: expert_block must be > 0");
  }

  [[nodiscard]] const top_k_router<T>& router() const noexcept { return router_; }
  [[nodiscard]] const std::vector<any_expert<T>>& experts() const noexcept { return experts_; }
  [[nodiscard]] std::size_t dim() const noexcept { return router_.dim(); }
  [[nodiscard]] std::size_t num_experts() const noexcept { return router_.num_experts(); }
  [[nodiscard]] std::size_t top_k() const noexcept { return router_.top_k(); }

  /// \brief Routes the rows of `tokens` [N × d] through token-wise experts (no context).
  [[nodiscard]] moe_result<T> forward(const matrix_cref<T>& tokens,
                                      const routing_call& call = {}) const {
    moe_result<T> result;
    forward_into(tokens, result, call);
    return result;
  }

  /// \brief Routes the rows of `tokens` [N × d]; attention experts attend over `keys` [Lk × d_k]
  /// and `values` [Lk × d_v] (feed-forward experts ignore them).
  [[nodiscard]] moe_result<T> forward(const matrix_cref<T>& tokens, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values,
                                      const routing_call& call = {}) const {
    moe_result<T> result;
    forward_into(tokens, keys, values, result, call);
    return result;
  }

  /// \brief `forward` into a caller-owned result whose buffers are reused (no large allocation
  /// when the batch shape repeats). Every field is overwritten; after an exception the contents
  /// of `result` are unspecified.
  void forward_into(const matrix_cref<T>& tokens, moe_result<T>& result,
                    const routing_call& call = {}) const {
    run(tokens, expert_context<T>{}, call, result);
  }

  /// \brief `forward` with a context, into a caller-owned, reused result.
  void forward_into(const matrix_cref<T>& tokens, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, moe_result<T>& result,
                    const routing_call& call = {}) const {
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    run(tokens, expert_context<T>{&keys, &values}, call, result);
  }

  /// \brief One token routed in inference mode (the seeds' vector API; models
  /// `attention_mechanism`). A single token is never dropped (C ≥ 1).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    require_dimension("query.size()", query.size(), dim());
    const Eigen::Map<const row_matrix<T>> q(query.data(), 1, static_cast<Eigen::Index>(dim()));
    const moe_result<T> r = forward(q, keys, values);
    return std::vector<T>(r.output.data(), r.output.data() + r.output.size());
  }

  /// \brief Seeds-shaped single query with vector-of-vector keys/values.
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief The seeds' `compute_with_loss(queries, keys, values)`: every query routed as one batch;
  /// returns the outputs and the Switch load-balancing loss (and the full statistics).
  [[nodiscard]] moe_loss_output<T> compute_with_loss(const std::vector<std::vector<T>>& queries,
                                                     const std::vector<std::vector<T>>& keys,
                                                     const std::vector<std::vector<T>>& values,
                                                     const routing_call& call = {}) const {
    row_matrix<T> qm = to_matrix(queries, "queries");
    if (queries.empty()) qm.resize(0, static_cast<Eigen::Index>(dim()));
    moe_result<T> r = forward(qm, to_matrix(keys, "keys"), to_matrix(values, "values"), call);
    moe_loss_output<T> out;
    out.outputs.resize(queries.size());
    for (std::size_t t = 0; t < queries.size(); ++t) {
      const T* row = r.output.data() + t * static_cast<std::size_t>(r.output.cols());
      out.outputs[t].assign(row, row + r.output.cols());
    }
    out.loss = r.stats.load_balance_loss;
    out.stats = std::move(r.stats);
    return out;
  }

 private:
  static router_config make_router_config(const moe_config& c) {
    return router_config{.dim = c.dim,
                         .num_experts = c.num_experts,
                         .top_k = c.top_k,
                         .capacity_factor = c.capacity_factor,
                         .renormalize = c.renormalize,
                         .jitter = c.jitter,
                         .jitter_eps = c.jitter_eps,
                         .priority = c.priority,
                         .balance = c.balance,
                         .bias = c.router_bias,
                         .seed = c.seed};
  }

  void run(const matrix_cref<T>& tokens, const expert_context<T>& ctx, const routing_call& call,
           moe_result<T>& result) const {
    const std::size_t d = dim(), E = num_experts(), k = top_k();
    require_dimension("tokens.cols() (model dim)", static_cast<std::size_t>(tokens.cols()), d);
    const std::size_t dout = experts_.front().output_dim(ctx);
    for (std::size_t e = 0; e < E; ++e) {
      std::ostringstream name;
      name << "experts[" << e << "] input width";
      require_dimension(name.str(), experts_[e].input_dim(ctx), d);
      name.str("");
      name << "experts[" << e << "] output width (must equal experts[0]'s)";
      require_dimension(name.str(), experts_[e].output_dim(ctx), dout);
    }

    router_.route_into(tokens, result.routing, call);
    const router_output<T>& rt = result.routing;
    const std::size_t N = rt.num_tokens, M = rt.dispatch.size();
    const auto idx = [](std::size_t v) { return static_cast<Eigen::Index>(v); };

    // Expert outputs, one row per kept assignment, grouped by expert.
    row_matrix<T>& y = result.expert_outputs;
    y.resize(idx(M), idx(dout));
    constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> pos(N * k, npos);
    for (std::size_t i = 0; i < M; ++i) pos[rt.dispatch[i].token * k + rt.dispatch[i].slot] = i;
    struct task {
      std::size_t expert, begin, end;
    };
    std::vector<task> tasks;
    for (std::size_t e = 0; e < E; ++e)
      for (std::size_t b = rt.expert_offsets[e]; b < rt.expert_offsets[e + 1]; b += block_)
        tasks.push_back({e, b, std::min(b + block_, rt.expert_offsets[e + 1])});
    parallel_for(0, tasks.size(), [&](std::size_t ti) {
      const task& tk = tasks[ti];
      const std::size_t n = tk.end - tk.begin;
      row_matrix<T> xs(idx(n), idx(d));  // gathered tokens (Eigen-aligned, per task)
      for (std::size_t i = 0; i < n; ++i)
        xs.row(idx(i)) = tokens.row(idx(rt.dispatch[tk.begin + i].token));
      Eigen::Map<row_matrix<T>, 0, Eigen::OuterStride<>> yb(
          y.data() + tk.begin * dout, idx(n), idx(dout), Eigen::OuterStride<>(idx(dout)));
      experts_[tk.expert].forward(xs, yb, ctx);
    });

    // y_t = Σ_s g_ts · expert output, slot order (kept slots only).
    result.output.setZero(idx(N), idx(dout));
    constexpr std::size_t token_block = 256;
    parallel_for(0, (N + token_block - 1) / token_block, [&](std::size_t bi) {
      const std::size_t t1 = std::min(N, (bi + 1) * token_block);
      for (std::size_t t = bi * token_block; t < t1; ++t)
        for (std::size_t s = 0; s < k; ++s)
          if (const std::size_t p = pos[t * k + s]; p != npos)
            result.output.row(idx(t)).noalias() += rt.gates[t * k + s] * y.row(idx(p));
    });
    result.stats = rt.stats;
  }

  top_k_router<T> router_;
  std::vector<any_expert<T>> experts_;
  std::size_t block_;
};

}  // namespace ruvector::attention
