#pragma once
/// \file moe/expert.hpp
/// \brief Experts of a token-routed mixture of experts (Shazeer et al. 2017, "Outrageously Large
/// Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer"; Fedus et al. 2021, "Switch
/// Transformers"). An expert maps each routed token (a row) to an output row:
///
///     feed_forward_expert:  y = act(x W_1ᵀ + b_1) W_2ᵀ + b_2   W_1 [h, d], W_2 [d_out, h]
///     attention_expert<M>:  y = M.compute(x, K, V)   x = the query, K/V = the call's context
///     function_expert<T>:   y = f(x)                 any caller callable
///
/// Activations: `relu(z) = max(z, 0)` and the exact `gelu(z) = ½ z (1 + erf(z/√2))` (Hendrycks &
/// Gimpel 2016; not the tanh approximation), vectorised with xsimd's erf.
///
/// **Expert interface.** An expert is any type modelling `moe_expert<E, T>`: const member functions
/// `input_dim(ctx)`, `output_dim(ctx)` and `forward(x, out, ctx)` that maps the rows of `x` [n ×
/// input_dim] to the rows of `out` [n × output_dim]. The experts of one layer are stored
/// type-erased in `any_expert<T>`, a value-semantic handle that shares one immutable expert
/// (`std::shared_ptr<const ...>`), so copies are cheap and the same expert may be called from many
/// threads at once. Every expert in this header is immutable after construction and its `forward`
/// is const and thread-safe (scratch memory is thread-local). A `function_expert`'s callable must
/// be safe to call concurrently. Rows are independent: an expert's output for a row must not depend
/// on the other rows of the batch (the layer runs experts on blocks of tokens).
///
/// `expert_context<T>` carries the call's context keys/values (absent for a purely token-wise
/// layer). Feed-forward and function experts ignore it; an attention expert requires it and throws
/// `invalid_argument` from `input_dim`/`output_dim` when it is absent.
///
/// Initialisation: `feed_forward_expert(feed_forward_config)` draws W_1 and W_2 Xavier-uniform,
/// U(±√(6/(fan_in + fan_out))) (Glorot & Bengio 2010), from `core/rng.hpp` seeded with `seed`
/// (W_1 first, row-major, then W_2); biases start at zero. Caller weights replace them exactly.
/// `forward` does not check for NaN/Inf (non-finite inputs propagate); the layer checks its tokens.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/simd.hpp"

namespace ruvector::attention {

/// \brief Hidden-layer activation of a `feed_forward_expert`.
enum class expert_activation {
  relu,  ///< max(z, 0)
  gelu   ///< ½ z (1 + erf(z/√2)) (exact form)
};

/// \brief The context of one expert call: keys/values that attention experts attend over.
/// Default-constructed = no context. The pointers must outlive the call.
template <class T>
struct expert_context {
  const matrix_cref<T>* keys = nullptr;    ///< [Lk × d_k] context keys (rows = keys)
  const matrix_cref<T>* values = nullptr;  ///< [Lk × d_v] context values
  /// True when both keys and values are present.
  [[nodiscard]] bool has_context() const noexcept { return keys != nullptr && values != nullptr; }
};

/// \brief What an expert must provide: dimensions (which may depend on the context) and a const,
/// thread-safe, row-wise `forward(x [n × in], out [n × out], ctx)`.
template <class E, class T>
concept moe_expert = attention_scalar<T> && std::move_constructible<E> &&
    requires(const E& e, const matrix_cref<T>& x, matrix_ref<T> out, const expert_context<T>& ctx) {
  { e.input_dim(ctx) } -> std::convertible_to<std::size_t>;
  { e.output_dim(ctx) } -> std::convertible_to<std::size_t>;
  e.forward(x, out, ctx);
};

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace detail {

/// x[i] = act(x[i] + bias[i]) for i < n (`bias` may be null). ReLU is max(z, 0); GELU is the
/// exact ½ z (1 + erf(z/√2)) with xsimd's vector erf (a few ulp; compared with std::erf in tests).
template <class T, class Arch = kernels::default_arch>
void bias_activation(T* x, const T* bias, std::size_t n, expert_activation act) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const auto run = [&](auto f) {
    std::size_t i = 0;
    if (bias != nullptr) {
      for (; i + W <= n; i += W)
        f(B::load_unaligned(x + i) + B::load_unaligned(bias + i)).store_unaligned(x + i);
      if (i < n) {
        const B z = kernels::detail::load_partial<T, Arch>(x + i, n - i, T(0)) +
                    kernels::detail::load_partial<T, Arch>(bias + i, n - i, T(0));
        kernels::detail::store_partial(f(z), x + i, n - i);
      }
    } else {
      for (; i + W <= n; i += W) f(B::load_unaligned(x + i)).store_unaligned(x + i);
      if (i < n) {
        kernels::detail::store_partial(
            f(kernels::detail::load_partial<T, Arch>(x + i, n - i, T(0))), x + i, n - i);
      }
    }
  };
  if (act == expert_activation::relu) {
    run([](const B& z) { return xsimd::max(z, B(T(0))); });
  } else {
    run([](const B& z) {
      return B(T(0.5)) * z * (B(T(1)) + xsimd::erf(z * B(T(0.70710678118654752440))));
    });
  }
}

}  // namespace detail

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

namespace detail {

/// Xavier-uniform [out × in] matrix drawn row-major from `gen`.
template <class T>
row_matrix<T> xavier_uniform(rng& gen, std::size_t out, std::size_t in) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  row_matrix<T> w(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
  return w;
}

/// Throws `dimension_mismatch` unless `m` is rows × cols.
template <class M>
void require_shape(std::string_view name, const M& m, std::size_t rows, std::size_t cols) {
  require_dimension(std::string(name).append(".rows()"), static_cast<std::size_t>(m.rows()), rows);
  require_dimension(std::string(name).append(".cols()"), static_cast<std::size_t>(m.cols()), cols);
}

}  // namespace detail

/// \brief Configuration of a seeded `feed_forward_expert`.
struct feed_forward_config {
  std::size_t dim = 0;     ///< input and output width d
  std::size_t hidden = 0;  ///< hidden width h (0 = 4·d, the Transformer's ratio)
  expert_activation activation = expert_activation::gelu;
  bool bias = true;        ///< learn b_1 and b_2 (initialised to zero)
  std::uint64_t seed = 0;  ///< seed of the Xavier initialisation
};

/// \brief Parameters of a feed-forward expert in `[out_features, in_features]` layout.
template <class T>
struct feed_forward_weights {
  row_matrix<T> w1;                        ///< [h × d]
  Eigen::Matrix<T, Eigen::Dynamic, 1> b1;  ///< [h] (empty = no bias)
  row_matrix<T> w2;                        ///< [d_out × h]
  Eigen::Matrix<T, Eigen::Dynamic, 1> b2;  ///< [d_out] (empty = no bias)
};

/// \brief Two-layer feed-forward expert y = act(x W_1ᵀ + b_1) W_2ᵀ + b_2 (see the file comment).
/// Both products are Eigen GEMMs over the whole block of routed tokens.
template <attention_scalar T = float>
class feed_forward_expert {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief d → h → d expert, Xavier-initialised from `config.seed`, zero biases.
  explicit feed_forward_expert(const feed_forward_config& config) : act_(config.activation) {
    require_config(config.dim > 0, "feed_forward_expert: dim must be > 0");
    require_at_most("feed_forward_expert dim", config.dim, max_dimension);
    const std::size_t h = config.hidden == 0 ? 4 * config.dim : config.hidden;
    require_at_most("feed_forward_expert hidden", h, max_dimension);
    rng gen(config.seed);
    w_.w1 = detail::xavier_uniform<T>(gen, h, config.dim);
    w_.w2 = detail::xavier_uniform<T>(gen, config.dim, h);
    if (config.bias) {
      w_.b1 = vector_type::Zero(static_cast<Eigen::Index>(h));
      w_.b2 = vector_type::Zero(static_cast<Eigen::Index>(config.dim));
    }
  }

  /// \brief Expert with caller weights (w1 [h × d], w2 [d_out × h], biases empty or [h], [d_out]).
  /// Throws `dimension_mismatch` on inconsistent shapes, `invalid_config` on empty matrices and
  /// `non_finite_input` on NaN/Inf parameters.
  feed_forward_expert(feed_forward_weights<T> weights, expert_activation activation)
      : w_(std::move(weights)), act_(activation) {
    const auto h = static_cast<std::size_t>(w_.w1.rows());
    const auto d = static_cast<std::size_t>(w_.w1.cols());
    require_config(h > 0 && d > 0, "feed_forward_expert: w1 must be non-empty [hidden x dim]");
    require_config(w_.w2.rows() > 0, "feed_forward_expert: w2 must be non-empty [out x hidden]");
    require_dimension("feed_forward_expert w2.cols() (must equal w1.rows())",
                      static_cast<std::size_t>(w_.w2.cols()), h);
    if (w_.b1.size() != 0)
      require_dimension("feed_forward_expert b1.size()", static_cast<std::size_t>(w_.b1.size()), h);
    if (w_.b2.size() != 0)
      require_dimension("feed_forward_expert b2.size()", static_cast<std::size_t>(w_.b2.size()),
                        static_cast<std::size_t>(w_.w2.rows()));
    require_finite("feed_forward_expert w1", w_.w1.data(), h, d, w_.w1.cols());
    require_finite("feed_forward_expert w2", w_.w2.data(), static_cast<std::size_t>(w_.w2.rows()),
                   h, w_.w2.cols());
    require_finite("feed_forward_expert b1", std::span<const T>(w_.b1.data(), w_.b1.size()));
    require_finite("feed_forward_expert b2", std::span<const T>(w_.b2.data(), w_.b2.size()));
  }

  /// Input width d.
  [[nodiscard]] std::size_t dim() const noexcept { return static_cast<std::size_t>(w_.w1.cols()); }
  /// Hidden width h.
  [[nodiscard]] std::size_t hidden_dim() const noexcept {
    return static_cast<std::size_t>(w_.w1.rows());
  }
  /// Output width d_out (= d for a configured expert).
  [[nodiscard]] std::size_t out_dim() const noexcept {
    return static_cast<std::size_t>(w_.w2.rows());
  }
  /// The activation.
  [[nodiscard]] expert_activation activation() const noexcept { return act_; }
  /// The parameters.
  [[nodiscard]] const feed_forward_weights<T>& weights() const noexcept { return w_; }
  /// Multiply-add FLOPs per token of the two products: 2·d·h + 2·h·d_out.
  [[nodiscard]] double flops_per_token() const noexcept {
    return 2.0 * static_cast<double>(hidden_dim()) * static_cast<double>(dim() + out_dim());
  }

  /// Input width (the context is ignored).
  [[nodiscard]] std::size_t input_dim(const expert_context<T>& = {}) const noexcept {
    return dim();
  }
  /// Output width (the context is ignored).
  [[nodiscard]] std::size_t output_dim(const expert_context<T>& = {}) const noexcept {
    return out_dim();
  }

  /// \brief out = act(x W_1ᵀ + b_1) W_2ᵀ + b_2 for the n rows of `x` [n × d]; `out` is [n × d_out]
  /// and must not alias `x`. Throws `dimension_mismatch` on wrong shapes.
  void forward(const matrix_cref<T>& x, matrix_ref<T> out, const expert_context<T>& = {}) const {
    const auto n = static_cast<std::size_t>(x.rows());
    require_dimension("feed_forward_expert x.cols()", static_cast<std::size_t>(x.cols()), dim());
    require_dimension("feed_forward_expert out.rows()", static_cast<std::size_t>(out.rows()), n);
    require_dimension("feed_forward_expert out.cols()", static_cast<std::size_t>(out.cols()),
                      out_dim());
    if (n == 0) return;
    const std::size_t h = hidden_dim(), dout = out_dim();
    const auto idx = [](std::size_t v) { return static_cast<Eigen::Index>(v); };
    // Thread-local, Eigen-aligned scratch (slots 20/21 are this header's), so the rounding does
    // not depend on where the caller's `out` sits and concurrent calls do not share memory.
    Eigen::Map<row_matrix<T>, Eigen::Aligned16> hid(detail::thread_scratch<T, 20>(n * h), idx(n),
                                                    idx(h));
    Eigen::Map<row_matrix<T>, Eigen::Aligned16> y(detail::thread_scratch<T, 21>(n * dout), idx(n),
                                                  idx(dout));
    hid.noalias() = x * w_.w1.transpose();
    const T* b1 = w_.b1.size() != 0 ? w_.b1.data() : nullptr;
    for (std::size_t r = 0; r < n; ++r) detail::bias_activation(hid.data() + r * h, b1, h, act_);
    y.noalias() = hid * w_.w2.transpose();
    if (w_.b2.size() != 0) y.rowwise() += w_.b2.transpose();
    out = y;
  }

 private:
  feed_forward_weights<T> w_;
  expert_activation act_;
};

/// \brief An expert that runs any attention mechanism (`attention_mechanism` concept, e.g.
/// `scaled_dot_product_attention<T>`) with the routed token as the query over the call's context
/// keys/values: out_r = mechanism.compute(x_r, K, V). Uses the mechanism's `compute_into` when it
/// has one (no allocation per row). Input width = keys.cols(), output width = values.cols().
template <attention_mechanism M>
class attention_expert {
 public:
  using value_type = typename M::value_type;
  using mechanism_type = M;

  /// Wraps `mechanism` (copied/moved in; it must be immutable and thread-safe, as every
  /// mechanism of the library is).
  explicit attention_expert(M mechanism) : m_(std::move(mechanism)) {}

  /// The wrapped mechanism.
  [[nodiscard]] const M& mechanism() const noexcept { return m_; }

  /// keys.cols() of the context; throws `invalid_argument` without a context.
  [[nodiscard]] std::size_t input_dim(const expert_context<value_type>& ctx) const {
    require_context(ctx);
    return static_cast<std::size_t>(ctx.keys->cols());
  }
  /// values.cols() of the context; throws `invalid_argument` without a context.
  [[nodiscard]] std::size_t output_dim(const expert_context<value_type>& ctx) const {
    require_context(ctx);
    return static_cast<std::size_t>(ctx.values->cols());
  }

  /// \brief out_r = mechanism.compute(x_r, K, V) for each row r of `x`.
  void forward(const matrix_cref<value_type>& x, matrix_ref<value_type> out,
               const expert_context<value_type>& ctx) const {
    require_context(ctx);
    const auto n = static_cast<std::size_t>(x.rows());
    const auto dq = static_cast<std::size_t>(x.cols());
    const auto dv = static_cast<std::size_t>(ctx.values->cols());
    require_dimension("attention_expert out.rows()", static_cast<std::size_t>(out.rows()), n);
    require_dimension("attention_expert out.cols() (must equal values.cols())",
                      static_cast<std::size_t>(out.cols()), dv);
    for (std::size_t r = 0; r < n; ++r) {
      const auto ri = static_cast<Eigen::Index>(r);
      const std::span<const value_type> q(x.data() + ri * x.outerStride(), dq);
      value_type* o = out.data() + ri * out.outerStride();
      if constexpr (has_compute_into) {
        (void)m_.compute_into(q, *ctx.keys, *ctx.values, std::span<value_type>(o, dv));
      } else {
        const std::vector<value_type> y = m_.compute(q, *ctx.keys, *ctx.values);
        require_dimension("attention_expert mechanism output size", y.size(), dv);
        std::copy(y.begin(), y.end(), o);
      }
    }
  }

 private:
  static constexpr bool has_compute_into =
      requires(const M& m, std::span<const value_type> q, const matrix_cref<value_type>& kv,
               std::span<value_type> o) {
    m.compute_into(q, kv, kv, o);
  };

  static void require_context(const expert_context<value_type>& ctx) {
    require_argument(ctx.has_context(),
                     "attention_expert: the call gave no context keys/values (use the forward "
                     "overload that takes keys and values)");
  }

  M m_;
};

/// \brief An expert defined by a callable `f(x [n × in], out [n × out])` with fixed widths (custom
/// experts, tests). `f` must be row-wise and safe to call concurrently from several threads.
template <attention_scalar T = float>
class function_expert {
 public:
  using value_type = T;
  using function_type = std::function<void(const matrix_cref<T>& x, matrix_ref<T> out)>;

  /// \param in input width, \param out output width, \param f the row-wise map.
  function_expert(std::size_t in, std::size_t out, function_type f)
      : in_(in), out_(out), f_(std::move(f)) {
    require_config(in > 0 && out > 0, "function_expert: widths must be > 0");
    require_config(static_cast<bool>(f_), "function_expert: the function is empty");
  }

  [[nodiscard]] std::size_t input_dim(const expert_context<T>& = {}) const noexcept { return in_; }
  [[nodiscard]] std::size_t output_dim(const expert_context<T>& = {}) const noexcept {
    return out_;
  }
  /// Calls f(x, out) after checking the shapes.
  void forward(const matrix_cref<T>& x, matrix_ref<T> out, const expert_context<T>& = {}) const {
    require_dimension("function_expert x.cols()", static_cast<std::size_t>(x.cols()), in_);
    require_dimension("function_expert out.rows()", static_cast<std::size_t>(out.rows()),
                      static_cast<std::size_t>(x.rows()));
    require_dimension("function_expert out.cols()", static_cast<std::size_t>(out.cols()), out_);
    f_(x, out);
  }

 private:
  std::size_t in_, out_;
  function_type f_;
};

/// \brief Type-erased, value-semantic handle to an immutable expert (see the file comment).
/// Copies share the expert; every member is const and thread-safe if the expert's are.
template <attention_scalar T = float>
class any_expert {
 public:
  using value_type = T;

  /// An empty handle (`empty()`); calling it throws `invalid_config`.
  any_expert() = default;

  /// Wraps any expert (moved into shared, immutable storage).
  template <class E>
  requires(!std::same_as<std::remove_cvref_t<E>, any_expert> &&
           moe_expert<std::remove_cvref_t<E>, T>)
      any_expert(E&& expert)  // NOLINT(google-explicit-constructor)
      : self_(std::make_shared<const model<std::remove_cvref_t<E>>>(std::forward<E>(expert))) {}

  /// True for a default-constructed handle.
  [[nodiscard]] bool empty() const noexcept { return self_ == nullptr; }
  /// The wrapped expert if it is an `E`, else null.
  template <class E>
  [[nodiscard]] const E* target() const noexcept {
    const auto* m = dynamic_cast<const model<E>*>(self_.get());
    return m ? &m->expert : nullptr;
  }

  [[nodiscard]] std::size_t input_dim(const expert_context<T>& ctx = {}) const {
    return get().input_dim(ctx);
  }
  [[nodiscard]] std::size_t output_dim(const expert_context<T>& ctx = {}) const {
    return get().output_dim(ctx);
  }
  void forward(const matrix_cref<T>& x, matrix_ref<T> out,
               const expert_context<T>& ctx = {}) const {
    get().forward(x, out, ctx);
  }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    [[nodiscard]] virtual std::size_t input_dim(const expert_context<T>& ctx) const = 0;
    [[nodiscard]] virtual std::size_t output_dim(const expert_context<T>& ctx) const = 0;
    virtual void forward(const matrix_cref<T>& x, matrix_ref<T> out,
                         const expert_context<T>& ctx) const = 0;
  };
  template <class E>
  struct model final : concept_t {
    template <class U>
    explicit model(U&& e) : expert(std::forward<U>(e)) {}
    [[nodiscard]] std::size_t input_dim(const expert_context<T>& ctx) const override {
      return static_cast<std::size_t>(expert.input_dim(ctx));
    }
    [[nodiscard]] std::size_t output_dim(const expert_context<T>& ctx) const override {
      return static_cast<std::size_t>(expert.output_dim(ctx));
    }
    void forward(const matrix_cref<T>& x, matrix_ref<T> out,
                 const expert_context<T>& ctx) const override {
      expert.forward(x, out, ctx);
    }
    E expert;
  };

  [[nodiscard]] const concept_t& get() const {
    require_config(self_ != nullptr, "any_expert: the handle is empty");
    return *self_;
  }

  std::shared_ptr<const concept_t> self_;
};

}  // namespace ruvector::attention
