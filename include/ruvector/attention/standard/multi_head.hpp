#pragma once
/// \file standard/multi_head.hpp
/// \brief Multi-head attention (Vaswani et al. 2017, §3.2.2) with grouped-query / multi-query
/// head sharing (Ainslie et al. 2023; Shazeer 2019) and cross-attention:
///
///     Q = X_q W_qᵀ + b_q,  K = X_k W_kᵀ + b_k,  V = X_v W_vᵀ + b_v          (PyTorch Linear
///     layout) head_h = softmax(Q_h K_{g(h)}ᵀ / √d_h) V_{g(h)},   g(h) = h / (H / H_kv) out =
///     concat_h(head_h) W_oᵀ + b_o
///
/// Weights have shape `[out_features, in_features]`: W_q `[E, E]`, W_k `[H_kv·d_h, kdim]`, W_v
/// `[H_kv·d_h, vdim]`, W_o `[E, E]` with d_h = E / H. They are Xavier-uniform initialised from a
/// seed (U(±√(6/(fan_in + fan_out))), Glorot & Bengio 2010) with zero biases, or set by the caller.
///
/// `projection_mode::split_only` is the seeds' `MultiHeadAttention`: no projections at all; head h
/// is the contiguous slice [h·d_h, (h+1)·d_h) of each query/key/value vector and the heads'
/// outputs are concatenated.
///
/// Heads are split by strides, never copied: the projected `[L, H·d_h]` matrices are viewed as
/// `[B, H, L, d_h]` tensors and handed to `sdpa` (standard/scaled_dot_product.hpp), whose masking
/// and numerics conventions apply unchanged.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

namespace ruvector::attention {

/// \brief Whether multi-head attention learns projections or only splits vectors into heads.
enum class projection_mode {
  learned,    ///< W_q, W_k, W_v, W_o (+ biases)
  split_only  ///< no projections; heads are contiguous slices (the seeds' behaviour)
};

/// \brief Configuration of `multi_head_attention`.
struct multi_head_config {
  std::size_t embed_dim = 0;     ///< model dimension E (query width and output width)
  std::size_t num_heads = 1;     ///< query heads H; must divide E
  std::size_t num_kv_heads = 0;  ///< key/value heads H_kv (0 = H; 1 = MQA); must divide H
  std::size_t kdim = 0;          ///< width of key inputs (0 = E)
  std::size_t vdim = 0;          ///< width of value inputs (0 = E)
  bool bias = true;              ///< learn biases b_q, b_k, b_v, b_o
  bool causal = false;           ///< bottom-right aligned causal masking by default
  projection_mode projections = projection_mode::learned;
  std::uint64_t seed = 0;  ///< seed of the Xavier initialisation
};

/// \brief Projection parameters in `[out_features, in_features]` layout.
template <class T>
struct projection_weights {
  row_matrix<T> w_q, w_k, w_v, w_o;
  Eigen::Matrix<T, Eigen::Dynamic, 1> b_q, b_k, b_v, b_o;
};

/// \brief Per-call options of `multi_head_attention::forward`.
template <class T>
struct multi_head_call {
  /// `[B, Lk]` key mask (`true` = visible); absent = all visible.
  tensor_view<const bool, 2> key_mask{};
  /// Additive bias `[B or 1, H or 1, Lq, Lk]`; absent = none.
  tensor_view<const T, 4> bias{};
  /// Overrides the configured causal flag.
  std::optional<bool> causal{};
  /// Optional `[B, H, Lq, Lk]` output of the attention weights.
  tensor_view<T, 4> weights{};
  /// Throw `non_finite_input` on NaN/Inf inputs.
  bool check_finite = true;
};

/// \brief Multi-head attention with learned (or no) projections; see the file comment.
/// Forward passes are const and thread-safe; `set_weights` is not (do not call it concurrently
/// with a forward pass).
template <class T = float>
class multi_head_attention {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief Builds the layer and Xavier-initialises its projections from `config.seed`.
  explicit multi_head_attention(multi_head_config config) : cfg_(normalise(config)) {
    head_dim_ = cfg_.embed_dim / cfg_.num_heads;
    if (cfg_.projections == projection_mode::learned) initialise();
  }

  /// \brief Learned projections, E = `embed_dim`, H = `num_heads`, seed 0.
  multi_head_attention(std::size_t embed_dim, std::size_t num_heads)
      : multi_head_attention(multi_head_config{.embed_dim = embed_dim, .num_heads = num_heads}) {}

  /// \brief The seeds' split-only multi-head attention (no projections).
  [[nodiscard]] static multi_head_attention split_only(std::size_t dim, std::size_t num_heads) {
    return multi_head_attention(multi_head_config{
        .embed_dim = dim, .num_heads = num_heads, .projections = projection_mode::split_only});
  }

  [[nodiscard]] const multi_head_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t head_dim() const noexcept { return head_dim_; }
  [[nodiscard]] std::size_t kv_width() const noexcept { return cfg_.num_kv_heads * head_dim_; }
  /// The projection parameters (empty matrices in split-only mode).
  [[nodiscard]] const projection_weights<T>& weights() const noexcept { return w_; }

  /// \brief Replaces the projections; shapes are validated (biases may be empty when
  /// `config().bias` is false). Not thread-safe with concurrent forward passes.
  void set_weights(projection_weights<T> w) {
    require_config(cfg_.projections == projection_mode::learned,
                   "set_weights: a split_only layer has no projections");
    const std::size_t E = cfg_.embed_dim, KV = kv_width();
    check_shape("w_q", w.w_q, E, E);
    check_shape("w_k", w.w_k, KV, cfg_.kdim);
    check_shape("w_v", w.w_v, KV, cfg_.vdim);
    check_shape("w_o", w.w_o, E, E);
    if (cfg_.bias) {
      require_dimension("b_q.size()", static_cast<std::size_t>(w.b_q.size()), E);
      require_dimension("b_k.size()", static_cast<std::size_t>(w.b_k.size()), KV);
      require_dimension("b_v.size()", static_cast<std::size_t>(w.b_v.size()), KV);
      require_dimension("b_o.size()", static_cast<std::size_t>(w.b_o.size()), E);
    }
    w_ = std::move(w);
  }

  /// \brief Batched forward: `x_q [B, Lq, E]`, `x_k [B, Lk, kdim]`, `x_v [B, Lk, vdim]` →
  /// `out [B, Lq, E]`. Self-attention passes the same view three times.
  void forward(std::type_identity_t<tensor_view<const T, 3>> x_q,
               std::type_identity_t<tensor_view<const T, 3>> x_k,
               std::type_identity_t<tensor_view<const T, 3>> x_v, tensor_view<T, 3> out,
               const multi_head_call<T>& call = {}) const {
    const std::size_t B = x_q.extent(0), Lq = x_q.extent(1), Lk = x_k.extent(1);
    const std::size_t E = cfg_.embed_dim, H = cfg_.num_heads, Hkv = cfg_.num_kv_heads;
    const std::size_t dh = head_dim_;
    require_dimension("x_q.extent(2) (embed_dim)", x_q.extent(2), E);
    require_dimension("x_k.extent(0) (batch)", x_k.extent(0), B);
    require_dimension("x_v.extent(0) (batch)", x_v.extent(0), B);
    require_dimension("x_k.extent(2) (kdim)", x_k.extent(2), cfg_.kdim);
    require_dimension("x_v.extent(2) (vdim)", x_v.extent(2), cfg_.vdim);
    require_dimension("x_v.extent(1) (values count, must equal keys count)", x_v.extent(1), Lk);
    require_dimension("out.extent(0) (batch)", out.extent(0), B);
    require_dimension("out.extent(1) (queries)", out.extent(1), Lq);
    require_dimension("out.extent(2) (embed_dim)", out.extent(2), E);
    for (const auto* s : {&x_q.strides(), &x_k.strides(), &x_v.strides()}) {
      if ((*s)[2] != 1) throw invalid_argument("invalid argument: inputs need unit inner stride");
    }
    if (out.stride(2) != 1) throw invalid_argument("invalid argument: out needs unit inner stride");
    if (B == 0 || Lq == 0) return;

    sdpa_options<T> opt;
    opt.mask.key_mask = call.key_mask;
    opt.mask.bias = call.bias;
    opt.mask.causal = call.causal.value_or(cfg_.causal);
    opt.check_finite = call.check_finite;
    sdpa_extras<T> extras;
    extras.weights = call.weights;
    const auto sd = [](std::size_t x) { return static_cast<std::ptrdiff_t>(x); };

    if (cfg_.projections == projection_mode::split_only) {
      // Heads are slices of the input rows: view [B, L, H·dh] as [B, H, L, dh] by strides.
      const tensor_view<const T, 4> q(x_q.data(), {B, H, Lq, dh},
                                      {x_q.stride(0), sd(dh), x_q.stride(1), 1});
      const tensor_view<const T, 4> k(x_k.data(), {B, Hkv, Lk, dh},
                                      {x_k.stride(0), sd(dh), x_k.stride(1), 1});
      const tensor_view<const T, 4> v(x_v.data(), {B, Hkv, Lk, dh},
                                      {x_v.stride(0), sd(dh), x_v.stride(1), 1});
      const tensor_view<T, 4> o(out.data(), {B, H, Lq, dh},
                                {out.stride(0), sd(dh), out.stride(1), 1});
      try {
        sdpa<T>(q, k, v, o, opt, extras);
      } catch (const non_finite_input&) {
        // sdpa names its head views; name the caller's arguments instead.
        require_finite_input("x_q", x_q);
        require_finite_input("x_k", x_k);
        require_finite_input("x_v", x_v);
        throw;
      }
      return;
    }

    // Learned projections: one GEMM per batch element and projection.
    row_matrix<T> qp(static_cast<Eigen::Index>(B * Lq), static_cast<Eigen::Index>(E));
    row_matrix<T> kp(static_cast<Eigen::Index>(B * Lk), static_cast<Eigen::Index>(kv_width()));
    row_matrix<T> vp(static_cast<Eigen::Index>(B * Lk), static_cast<Eigen::Index>(kv_width()));
    row_matrix<T> attn(static_cast<Eigen::Index>(B * Lq), static_cast<Eigen::Index>(E));
    for (std::size_t b = 0; b < B; ++b) {
      project(x_q, b, w_.w_q, w_.b_q, qp, b * Lq);
      project(x_k, b, w_.w_k, w_.b_k, kp, b * Lk);
      project(x_v, b, w_.w_v, w_.b_v, vp, b * Lk);
    }
    const tensor_view<const T, 4> q(qp.data(), {B, H, Lq, dh}, {sd(Lq * E), sd(dh), sd(E), 1});
    const tensor_view<const T, 4> k(kp.data(), {B, Hkv, Lk, dh},
                                    {sd(Lk * kv_width()), sd(dh), sd(kv_width()), 1});
    const tensor_view<const T, 4> v(vp.data(), {B, Hkv, Lk, dh},
                                    {sd(Lk * kv_width()), sd(dh), sd(kv_width()), 1});
    const tensor_view<T, 4> o(attn.data(), {B, H, Lq, dh}, {sd(Lq * E), sd(dh), sd(E), 1});
    if (call.check_finite) {
      // Projections would smear a NaN over whole rows; name the raw input element instead.
      require_finite_input("x_q", x_q);
      require_finite_input("x_k", x_k);
      require_finite_input("x_v", x_v);
    }
    sdpa<T>(q, k, v, o, opt, extras);
    for (std::size_t b = 0; b < B; ++b) {
      auto dst = matrix_view(out.data() + static_cast<std::ptrdiff_t>(b) * out.stride(0), Lq, E,
                             static_cast<std::size_t>(out.stride(1)));
      dst.noalias() =
          attn.middleRows(static_cast<Eigen::Index>(b * Lq), static_cast<Eigen::Index>(Lq)) *
          w_.w_o.transpose();
      if (cfg_.bias) dst.rowwise() += w_.b_o.transpose();
    }
  }

  /// \brief Sequence forward: `x_q [Lq, E]`, `x_k [Lk, kdim]`, `x_v [Lk, vdim]` → `[Lq, E]`.
  /// A `call.key_mask` must have shape `[1, Lk]`.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& x_q, const matrix_cref<T>& x_k,
                                      const matrix_cref<T>& x_v,
                                      const multi_head_call<T>& call = {}) const {
    row_matrix<T> out(x_q.rows(), static_cast<Eigen::Index>(cfg_.embed_dim));
    forward(
        as_3d(x_q), as_3d(x_k), as_3d(x_v),
        tensor_view<T, 3>(out.data(), {1, static_cast<std::size_t>(out.rows()), cfg_.embed_dim}),
        call);
    return out;
  }

  /// \brief Self-attention over one sequence `x [L, E]`.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& x,
                                      const multi_head_call<T>& call = {}) const {
    return forward(x, x, x, call);
  }

  /// \brief Vector API: one query `[E]` over keys `[n, kdim]` and values `[n, vdim]` → `[E]`.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    return compute_with_mask(query, keys, values, {});
  }

  /// \brief Vector API with a key mask (`true` = visible; empty = all visible).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("query.size()", query.size(), cfg_.embed_dim);
    require_non_empty("keys", static_cast<std::size_t>(keys.rows()));
    require_dimension("keys.cols() (kdim)", static_cast<std::size_t>(keys.cols()), cfg_.kdim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    multi_head_call<T> call;
    if (!key_mask.empty()) {
      require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
      call.key_mask = tensor_view<const bool, 2>(key_mask.data(), {1, key_mask.size()});
    }
    call.causal = false;
    std::vector<T> out(cfg_.embed_dim);
    const auto q = matrix_view(query.data(), 1, query.size());
    forward(as_3d(q), as_3d(keys), as_3d(values),
            tensor_view<T, 3>(out.data(), {1, 1, cfg_.embed_dim}), call);
    return out;
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

 private:
  static multi_head_config normalise(multi_head_config c) {
    if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
    if (c.kdim == 0) c.kdim = c.embed_dim;
    if (c.vdim == 0) c.vdim = c.embed_dim;
    std::ostringstream os;
    require_config(c.embed_dim > 0, "multi_head_attention: embed_dim must be > 0");
    require_config(c.num_heads > 0, "multi_head_attention: num_heads must be > 0");
    require_at_most("embed_dim", c.embed_dim, max_dimension);
    if (c.embed_dim % c.num_heads != 0) {
      os << "multi_head_attention: embed_dim (" << c.embed_dim
         << ") must be divisible by num_heads (" << c.num_heads << ")";
      require_config(false, os.str());
    }
    if (c.num_heads % c.num_kv_heads != 0) {
      os << "multi_head_attention: num_kv_heads (" << c.num_kv_heads << ") must divide num_heads ("
         << c.num_heads << ")";
      require_config(false, os.str());
    }
    if (c.projections == projection_mode::split_only) {
      const std::size_t kv = c.num_kv_heads * (c.embed_dim / c.num_heads);
      if (c.kdim != kv || c.vdim != kv) {
        os << "multi_head_attention: split_only needs kdim == vdim == num_kv_heads * head_dim ("
           << kv << "), got kdim " << c.kdim << " and vdim " << c.vdim;
        require_config(false, os.str());
      }
    }
    return c;
  }

  void initialise() {
    rng gen(cfg_.seed);
    const std::size_t E = cfg_.embed_dim, KV = kv_width();
    w_.w_q = xavier(gen, E, E);
    w_.w_k = xavier(gen, KV, cfg_.kdim);
    w_.w_v = xavier(gen, KV, cfg_.vdim);
    w_.w_o = xavier(gen, E, E);
    if (cfg_.bias) {
      w_.b_q = vector_type::Zero(static_cast<Eigen::Index>(E));
      w_.b_k = vector_type::Zero(static_cast<Eigen::Index>(KV));
      w_.b_v = vector_type::Zero(static_cast<Eigen::Index>(KV));
      w_.b_o = vector_type::Zero(static_cast<Eigen::Index>(E));
    }
  }

  static row_matrix<T> xavier(rng& gen, std::size_t out, std::size_t in) {
    const double a = std::sqrt(6.0 / static_cast<double>(in + out));
    row_matrix<T> w(static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  static void check_shape(const char* name, const row_matrix<T>& m, std::size_t rows,
                          std::size_t cols) {
    require_dimension(std::string(name) + ".rows()", static_cast<std::size_t>(m.rows()), rows);
    require_dimension(std::string(name) + ".cols()", static_cast<std::size_t>(m.cols()), cols);
  }

  static tensor_view<const T, 3> as_3d(const matrix_cref<T>& m) {
    return tensor_view<const T, 3>(
        m.data(), {1, static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())},
        {static_cast<std::ptrdiff_t>(m.outerStride() * m.rows()), m.outerStride(), 1});
  }

  static void require_finite_input(const char* what, const tensor_view<const T, 3>& x) {
    for (std::size_t b = 0; b < x.extent(0); ++b) {
      const T* base = x.data() + static_cast<std::ptrdiff_t>(b) * x.stride(0);
      for (std::size_t r = 0; r < x.extent(1); ++r) {
        const T* row = base + static_cast<std::ptrdiff_t>(r) * x.stride(1);
        if (!kernels::all_finite(row, x.extent(2))) {
          for (std::size_t c = 0; c < x.extent(2); ++c) {
            if (!std::isfinite(row[c])) {
              std::ostringstream os;
              os << "non-finite input: " << what << "[" << b << "][" << r << "][" << c
                 << "] = " << row[c];
              throw non_finite_input(os.str());
            }
          }
        }
      }
    }
  }

  void project(const tensor_view<const T, 3>& x, std::size_t b, const row_matrix<T>& w,
               const vector_type& bias, row_matrix<T>& dst, std::size_t row0) const {
    const std::size_t L = x.extent(1);
    if (L == 0) return;
    const auto src = matrix_view(x.data() + static_cast<std::ptrdiff_t>(b) * x.stride(0), L,
                                 x.extent(2), static_cast<std::size_t>(x.stride(1)));
    auto out = dst.middleRows(static_cast<Eigen::Index>(row0), static_cast<Eigen::Index>(L));
    out.noalias() = src * w.transpose();
    if (cfg_.bias) out.rowwise() += bias.transpose();
  }

  multi_head_config cfg_;
  std::size_t head_dim_ = 0;
  projection_weights<T> w_;
};

}  // namespace ruvector::attention
