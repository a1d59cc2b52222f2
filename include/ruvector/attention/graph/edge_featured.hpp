#pragma once
/// \file graph/edge_featured.hpp
/// \brief Graph attention networks with optional edge features: GAT (Veličković et al. 2018,
/// "Graph Attention Networks") and GATv2 (Brody, Alon & Yahav 2022, "How Attentive are Graph
/// Attention Networks?"), over a `csr_graph` (graph/csr_graph.hpp).
///
/// For every head k = 0..H−1 (F = `out_dim` features per head), target node i and incoming edge
/// j → i with feature row e_ji (slot of the CSR; multi-edges are separate slots):
///
///   GAT (v1):   z_j = W_k x_j,
///               s_ij = LeakyReLU( a_tgt,kᵀ z_i + a_src,kᵀ z_j + a_edge,kᵀ W_e,k e_ji )
///                    (= LeakyReLU(a_kᵀ [z_i ‖ z_j ‖ W_e,k e_ji]) with a_k = [a_tgt ‖ a_src ‖
///                    a_edge])
///   GATv2 (v2): s_ij = a_kᵀ LeakyReLU( W_t,k x_i + W_s,k x_j + W_e,k e_ji )
///                    (= a_kᵀ LeakyReLU(W_k [x_i ‖ x_j ‖ e_ji]) with W_k = [W_t ‖ W_s ‖ W_e]),
///               z_j = W_s,k x_j
///   α_ij = softmax over the in-edges of i of s_ij (max-subtracted),
///   out_i,k = Σ_{edges j→i} α_ij z_j,
///   out_i = concat_k out_i,k  (width H·F)   or   (1/H) Σ_k out_i,k  (width F, `concat = false`).
///
/// Without edge features GATv1's score is monotone in a_srcᵀ z_j for every query i ("static"
/// attention: all nodes rank their neighbours the same way); GATv2 applies the nonlinearity before
/// the dot product with a, so the ranking may depend on i ("dynamic" attention). The Rust original
/// calls its v1 form "GATv2"; here both exist and are named as in the papers.
///
/// Conventions:
/// - No output nonlinearity, no bias, no dropout: the layer returns the aggregation above (apply
///   ELU etc. yourself). LeakyReLU(x) = x for x ≥ 0, `negative_slope`·x otherwise (default 0.2).
/// - The edge term exists only when `edge_dim > 0`; then the graph must carry edge features of
///   that width (`dimension_mismatch` otherwise). With `edge_dim == 0` graph edge features are
///   ignored. A zero feature row contributes nothing (there is no bias).
/// - `add_self_loops`: a loop i → i is added for every node that has none (existing loops and
///   multi-edges are kept, unlike PyG, which first removes loops); the added loop's feature row
///   is the mean of the node's incoming feature rows, or zeros if it has none
///   (`csr_graph::with_self_loops(self_loop_fill::mean)`).
/// - A node with no incoming edge (and no self-loop) outputs zeros (DESIGN §4: all-masked → zeros).
/// - Whole-graph `forward` projects all nodes once (Eigen GEMM in blocks of rows, O(N·d·H·F)), then
///   runs over target nodes in parallel (`parallel_for`, blocks of 64 targets), O(E·H·F)
///   (+ O(E·H·f) for v1 edge features, O(E·H·F·f) for v2 edge features: W_e e is formed per edge,
///   never stored). Temporaries per call: the projections [N, H·F] (two for v2), and with edge
///   features an [E, f] copy of them in T, gathered into CSR order. Each output row is computed
///   by one thread in a fixed order, so results are bit-identical for any thread count.
/// - Weights are Xavier-uniform from `rng(seed)` (core/rng.hpp) in a fixed order — w_source,
///   w_target (v2), w_edge (edge_dim > 0), then v1: att_target, att_source, att_edge (edge_dim >
///   0), v2: att — each matrix in row-major order with bound √(6/(fan_in + fan_out)): W [H·F, in]
///   uses fan_in = in, fan_out = H·F; the attention vectors of one head use fan_out = 1 and
///   fan_in = F·(number of v1 parts: 2, or 3 with edges) for v1, F for v2.
/// - All arithmetic is in T. Inputs must be finite (`non_finite_input` names the first bad
///   element): `forward` scans all of x; the per-node entry points check only the rows they read
///   (so one node costs O(its neighbourhood)). Edge features are checked when the graph is built;
///   weights passed to `set_weights` must be finite.
///
/// Per-node entry points (the seeds' `GraphAttention` trait) compute only what one node needs and
/// equal the matching row of `forward`:
/// - `forward_neighborhood(i, x, g)` = `forward(x, g).row(i)`.
/// - `forward_k_hop(i, x, g, k)`: attention of node i over the *set* N_k(i) of distinct nodes that
///   reach i by a directed walk of 1..k edges (`csr_graph::k_hop_in_neighbors`; i itself only via
///   a cycle, or added when `add_self_loops`), each attended once, with no edge term (edge features
///   are defined only for direct edges). With k = 1 on a graph without multi-edges and without
///   edge features it equals `forward_neighborhood`; k = 0 gives N_0 = ∅ (zeros, or only i with
///   self-loops).
/// - `forward_with_edges(q, keys, values, neighbors[, edge_attr])`: one query node x_i = q
///   attending over the slots s = 0..m−1, where slot s is the edge from key row
///   `neighbors[s]` (repeats allowed = multi-edges) with feature row `edge_attr.row(s)`. The score
///   uses the key row, the message the value row: v1 s = LeakyReLU(a_tgtᵀ W q + a_srcᵀ W k_j +
///   a_edgeᵀ W_e e_s), v2 s = aᵀ LeakyReLU(W_t q + W_s k_j + W_e e_s); message W v_j (v1) or
///   W_s v_j (v2). With keys = values = x, q = x_i, neighbors = g.in_neighbors(i) and the matching
///   feature rows this is `forward_neighborhood(i, x, g)` without self-loops: `add_self_loops` is
///   *not* applied here, the neighbour list is taken literally. Without `edge_attr` the edge term
///   is 0. No neighbours → zeros.
/// - `compute(q, keys, values)` (the library's vector API): `forward_with_edges` over every key
///   row once, without edge features.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/graph/csr_graph.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Which graph-attention scoring function to use.
enum class gat_version {
  v1,  ///< GAT (Veličković et al. 2018): LeakyReLU(aᵀ[Wx_i ‖ Wx_j ‖ W_e e]) — static attention.
  v2,  ///< GATv2 (Brody et al. 2022): aᵀ LeakyReLU(W_t x_i + W_s x_j + W_e e) — dynamic.
};

/// \brief Configuration of `graph_attention`.
struct graph_attention_config {
  std::size_t in_dim = 0;       ///< node feature width d
  std::size_t out_dim = 0;      ///< features per head F
  std::size_t num_heads = 1;    ///< heads H
  std::size_t edge_dim = 0;     ///< edge feature width f (0 = no edge term)
  bool concat = true;           ///< concatenate heads (width H·F) or average them (width F)
  double negative_slope = 0.2;  ///< LeakyReLU slope for negative inputs
  bool add_self_loops = false;  ///< add i → i for nodes lacking one (graph entry points only)
  gat_version version = gat_version::v2;  ///< scoring function
  std::uint64_t seed = 0;                 ///< seed of the Xavier initialisation
};

/// \brief The seeds' name for the configuration.
using edge_featured_config = graph_attention_config;

/// \brief Parameters of `graph_attention`; rows [k·F, (k+1)·F) of each W (and row k of each
/// attention matrix) belong to head k. Unused members are empty matrices.
template <attention_scalar T>
struct graph_attention_weights {
  row_matrix<T> w_source;    ///< [H·F, d]: v1 the shared W; v2 W_s (source half, also messages)
  row_matrix<T> w_target;    ///< [H·F, d]: v2 only, W_t (target half)
  row_matrix<T> w_edge;      ///< [H·F, f]: W_e (edge_dim > 0 only)
  row_matrix<T> att_target;  ///< [H, F]: v1 only, a_tgt (acts on W x_i)
  row_matrix<T> att_source;  ///< [H, F]: v1 only, a_src (acts on W x_j)
  row_matrix<T> att_edge;    ///< [H, F]: v1 with edge_dim > 0 only, a_edge (acts on W_e e)
  row_matrix<T> att;         ///< [H, F]: v2 only, a
};

namespace detail {

/// LeakyReLU(x) = x (x ≥ 0), slope·x (x < 0), written branch-free as max(x, 0) + slope·min(x, 0)
/// (exact: one of the two terms is 0): score signs are random, so a branch mispredicts often.
template <class T>
[[nodiscard]] RUVECTOR_ATTENTION_ALWAYS_INLINE T leaky_relu(T x, T slope) noexcept {
  return std::max(x, T(0)) + slope * std::min(x, T(0));
}

/// GATv2 score of one head: Σ_c att[c]·LeakyReLU(a[c] + b[c] (+ e[c])) for c < n.
template <bool HasEdge, class T, class Arch = kernels::default_arch>
[[nodiscard]] T gatv2_head_score(const T* a, const T* b, const T* e, const T* att, std::size_t n,
                                 T slope) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B zero(T(0)), sl(slope);
  B acc0(T(0)), acc1(T(0));
  std::size_t c = 0;
  for (; c + 2 * W <= n; c += 2 * W) {
    B x0 = B::load_unaligned(a + c) + B::load_unaligned(b + c);
    B x1 = B::load_unaligned(a + c + W) + B::load_unaligned(b + c + W);
    if constexpr (HasEdge) {
      x0 += B::load_unaligned(e + c);
      x1 += B::load_unaligned(e + c + W);
    }
    acc0 = xsimd::fma(B::load_unaligned(att + c), xsimd::select(x0 >= zero, x0, x0 * sl), acc0);
    acc1 = xsimd::fma(B::load_unaligned(att + c + W), xsimd::select(x1 >= zero, x1, x1 * sl), acc1);
  }
  for (; c + W <= n; c += W) {
    B x0 = B::load_unaligned(a + c) + B::load_unaligned(b + c);
    if constexpr (HasEdge) x0 += B::load_unaligned(e + c);
    acc0 = xsimd::fma(B::load_unaligned(att + c), xsimd::select(x0 >= zero, x0, x0 * sl), acc0);
  }
  T result = kernels::detail::hsum(acc0 + acc1);
  for (; c < n; ++c) {
    T x = a[c] + b[c];
    if constexpr (HasEdge) x += e[c];
    result += att[c] * leaky_relu(x, slope);
  }
  return result;
}

/// y[k·F + c] += alpha[k·stride] · x[k·F + c] for heads k < H and c < F (inlined: F is small).
template <class T, class Arch = kernels::default_arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void head_axpy(const T* alpha, std::size_t stride, const T* x,
                                                T* y, std::size_t H, std::size_t F) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  for (std::size_t h = 0; h < H; ++h) {
    const T a = alpha[h * stride];
    const B av(a);
    const T* xh = x + h * F;
    T* yh = y + h * F;
    std::size_t c = 0;
    for (; c + W <= F; c += W) {
      xsimd::fma(av, B::load_unaligned(xh + c), B::load_unaligned(yh + c)).store_unaligned(yh + c);
    }
    for (; c < F; ++c) yh[c] += a * xh[c];
  }
}

/// Hints the cache to load `[p, p + bytes)` (no-op on compilers without the builtin).
template <class T>
RUVECTOR_ATTENTION_ALWAYS_INLINE void prefetch_bytes(const T* p, std::size_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = reinterpret_cast<const char*>(p);
  for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
#else
  (void)p;
  (void)bytes;
#endif
}

/// One attention slot (an incoming edge) as seen by the per-target kernel.
template <class T>
struct gat_slot {
  const T* key;        ///< projected key row [H·F] (v2 score), W_s x_j
  const T* value;      ///< projected value row [H·F] (the message)
  const T* key_score;  ///< v1: [H] a_src,kᵀ z_j per head
  const T* feature;    ///< raw edge features [f] in T, or nullptr (edge term 0)
};

}  // namespace detail

/// \brief GAT / GATv2 layer with optional edge features; see the file comment.
/// Forward passes are const and thread-safe; `set_weights` is not (do not call it concurrently
/// with a forward pass).
template <attention_scalar T = float>
class graph_attention {
 public:
  using value_type = T;
  using weights_type = graph_attention_weights<T>;

  /// \brief Builds the layer and Xavier-initialises its weights from `config.seed`. Throws
  /// `invalid_config` for zero dimensions/heads or a non-finite slope.
  explicit graph_attention(graph_attention_config config) : cfg_(config) {
    require_config(cfg_.in_dim > 0, "graph_attention: in_dim must be > 0");
    require_config(cfg_.out_dim > 0, "graph_attention: out_dim must be > 0");
    require_config(cfg_.num_heads > 0, "graph_attention: num_heads must be > 0");
    require_config(std::isfinite(cfg_.negative_slope),
                   "graph_attention: negative_slope must be finite");
    require_at_most("graph_attention: in_dim", cfg_.in_dim, max_dimension);
    require_at_most("graph_attention: out_dim * num_heads", hf_checked(), max_dimension);
    require_at_most("graph_attention: edge_dim", cfg_.edge_dim, max_dimension);
    slope_ = static_cast<T>(cfg_.negative_slope);
    initialise();
  }

  /// The configuration.
  [[nodiscard]] const graph_attention_config& config() const noexcept { return cfg_; }
  /// Width of one output row: H·F when concatenating heads, F when averaging.
  [[nodiscard]] std::size_t output_dim() const noexcept {
    return cfg_.concat ? cfg_.num_heads * cfg_.out_dim : cfg_.out_dim;
  }
  /// The parameters (see `graph_attention_weights` for the layout).
  [[nodiscard]] const weights_type& weights() const noexcept { return w_; }

  /// \brief Replaces the parameters; shapes are validated against the configuration and version
  /// (`dimension_mismatch` naming the member), values must be finite (`non_finite_input`).
  /// Members unused by the version must be empty.
  void set_weights(weights_type w) {
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, HF = H * F, d = cfg_.in_dim;
    const std::size_t f = cfg_.edge_dim;
    const bool v1 = cfg_.version == gat_version::v1;
    check_shape("w_source", w.w_source, HF, d);
    check_shape("w_target", w.w_target, v1 ? 0 : HF, v1 ? 0 : d);
    check_shape("w_edge", w.w_edge, f > 0 ? HF : 0, f);
    check_shape("att_target", w.att_target, v1 ? H : 0, v1 ? F : 0);
    check_shape("att_source", w.att_source, v1 ? H : 0, v1 ? F : 0);
    check_shape("att_edge", w.att_edge, v1 && f > 0 ? H : 0, v1 && f > 0 ? F : 0);
    check_shape("att", w.att, v1 ? 0 : H, v1 ? 0 : F);
    w_ = std::move(w);
    derive();
  }

  /// \brief Whole-graph forward: row i of the result (`[N, output_dim()]`) is node i's output.
  /// `x` is `[N, in_dim]` with N = `g.num_nodes()`.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& x, const csr_graph& g) const {
    check_graph_inputs(x, g);
    std::optional<csr_graph> looped;
    if (cfg_.add_self_loops) looped.emplace(g.with_self_loops(self_loop_fill::mean));
    const csr_graph& gr = looped ? *looped : g;
    const std::size_t N = gr.num_nodes(), H = cfg_.num_heads, HF = H * cfg_.out_dim;
    const bool v1 = cfg_.version == gat_version::v1;

    // Projections, parallel over blocks of rows (Eigen runs single-threaded inside).
    row_matrix<T> zs(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(HF));
    row_matrix<T> zt(static_cast<Eigen::Index>(v1 ? 0 : N), static_cast<Eigen::Index>(HF));
    row_matrix<T> ss(static_cast<Eigen::Index>(v1 ? N : 0), static_cast<Eigen::Index>(H));
    row_matrix<T> st(static_cast<Eigen::Index>(v1 ? N : 0), static_cast<Eigen::Index>(H));
    constexpr std::size_t proj_block = 256;
    parallel_for(0, (N + proj_block - 1) / proj_block, [&](std::size_t b) {
      const auto r0 = static_cast<Eigen::Index>(b * proj_block);
      const auto rn = static_cast<Eigen::Index>(std::min(proj_block, N - b * proj_block));
      zs.middleRows(r0, rn).noalias() = x.middleRows(r0, rn) * w_.w_source.transpose();
      if (v1) {
        for (Eigen::Index r = r0; r < r0 + rn; ++r) {
          for (std::size_t h = 0; h < H; ++h) {
            ss(r, static_cast<Eigen::Index>(h)) = head_dot(w_.att_source, h, zs.row(r).data());
            st(r, static_cast<Eigen::Index>(h)) = head_dot(w_.att_target, h, zs.row(r).data());
          }
        }
      } else {
        zt.middleRows(r0, rn).noalias() = x.middleRows(r0, rn) * w_.w_target.transpose();
      }
    });

    // Edge features gathered into CSR slot order (and cast to T) once, so the attention loop
    // reads them sequentially instead of through edge_ids (a random gather per edge).
    const bool use_edges = cfg_.edge_dim > 0;
    const std::size_t f = cfg_.edge_dim, E = gr.num_edges();
    row_matrix<T> feat_csr(static_cast<Eigen::Index>(use_edges ? E : 0),
                           static_cast<Eigen::Index>(f));
    if (use_edges) {
      const auto slot_ids = gr.edge_ids();
      const double* src = gr.edge_features().data();
      constexpr std::size_t gather_block = 4096;
      parallel_for(0, (E + gather_block - 1) / gather_block, [&](std::size_t b) {
        const std::size_t end = std::min(E, (b + 1) * gather_block);
        for (std::size_t s = b * gather_block; s < end; ++s) {
          const double* row = src + slot_ids[s] * f;
          T* dst = feat_csr.data() + s * f;
          for (std::size_t c = 0; c < f; ++c) dst[c] = static_cast<T>(row[c]);
        }
      });
    }
    const T* feat = feat_csr.data();

    row_matrix<T> out =
        row_matrix<T>::Zero(static_cast<Eigen::Index>(N), static_cast<Eigen::Index>(output_dim()));
    const auto offsets = gr.offsets();
    const auto sources = gr.sources();
    constexpr std::size_t node_block = 64;
    parallel_for(0, (N + node_block - 1) / node_block, [&](std::size_t b) {
      const std::size_t end = std::min(N, (b + 1) * node_block);
      // Gathering the rows of random neighbours is latency-bound: prefetch the rows the next
      // target will read while this one is processed.
      const auto prefetch = [&](std::size_t node) noexcept {
        if (node >= N) return;
        for (std::size_t s = offsets[node]; s < offsets[node + 1]; ++s) {
          const auto j = static_cast<Eigen::Index>(sources[s]);
          detail::prefetch_bytes(zs.row(j).data(), HF * sizeof(T));
          if (v1) detail::prefetch_bytes(ss.row(j).data(), H * sizeof(T));
        }
      };
      prefetch(b * node_block);
      for (std::size_t i = b * node_block; i < end; ++i) {
        prefetch(i + 1);
        const std::size_t begin = offsets[i], m = offsets[i + 1] - begin;
        const auto slot = [&](std::size_t s) noexcept {
          const auto j = static_cast<Eigen::Index>(sources[begin + s]);
          return detail::gat_slot<T>{zs.row(j).data(), zs.row(j).data(),
                                     v1 ? ss.row(j).data() : nullptr,
                                     use_edges ? feat + (begin + s) * f : nullptr};
        };
        const T* target = v1 ? st.row(static_cast<Eigen::Index>(i)).data()
                             : zt.row(static_cast<Eigen::Index>(i)).data();
        attend(target, m, slot, out.row(static_cast<Eigen::Index>(i)).data());
      }
    });
    return out;
  }

  /// \brief Node `node`'s output (= `forward(x, g).row(node)`), computing only its neighbourhood.
  [[nodiscard]] std::vector<T> forward_neighborhood(std::size_t node, const matrix_cref<T>& x,
                                                    const csr_graph& g) const {
    check_graph_inputs(x, g, /*needs_edge_features=*/true, /*scan_x=*/false);
    check_node(node, g.num_nodes());
    check_row_finite("graph_attention: x", x, node);
    std::vector<std::size_t> nbrs(g.in_neighbors(node).begin(), g.in_neighbors(node).end());
    const auto ids = g.in_edge_ids(node);
    const bool use_edges = cfg_.edge_dim > 0;
    const std::size_t f = cfg_.edge_dim;
    row_matrix<T> feats(static_cast<Eigen::Index>(use_edges ? nbrs.size() : 0),
                        static_cast<Eigen::Index>(f));
    for (std::size_t s = 0; use_edges && s < nbrs.size(); ++s) {
      feats.row(static_cast<Eigen::Index>(s)) =
          g.edge_features().row(static_cast<Eigen::Index>(ids[s])).template cast<T>();
    }
    if (cfg_.add_self_loops && std::find(nbrs.begin(), nbrs.end(), node) == nbrs.end()) {
      // The added loop's features: mean of the incoming rows, zeros without any (with_self_loops).
      nbrs.push_back(node);
      if (use_edges) {
        feats.conservativeResize(feats.rows() + 1, Eigen::NoChange);
        auto row = feats.row(feats.rows() - 1);
        row.setZero();
        if (!ids.empty()) {
          Eigen::Matrix<double, 1, Eigen::Dynamic> mean =
              Eigen::Matrix<double, 1, Eigen::Dynamic>::Zero(static_cast<Eigen::Index>(f));
          for (const std::size_t e : ids)
            mean += g.edge_features().row(static_cast<Eigen::Index>(e));
          mean /= static_cast<double>(ids.size());
          row = mean.template cast<T>();
        }
      }
    }
    std::vector<T> out(output_dim());
    const T* fp = use_edges ? feats.data() : nullptr;
    attend_gathered(x.row(static_cast<Eigen::Index>(node)).data(), x, x, nbrs, fp, out.data(),
                    "graph_attention: x");
    return out;
  }

  /// \brief Seeds' shape: builds the CSR from `edge_index` (O(N + E) per call), then as above.
  [[nodiscard]] std::vector<T> forward_neighborhood(std::size_t node, const matrix_cref<T>& x,
                                                    std::span<const edge> edge_index) const {
    return forward_neighborhood(
        node, x, csr_graph::from_edges(static_cast<std::size_t>(x.rows()), edge_index));
  }

  /// \brief Attention of `node` over its k-hop in-neighbourhood N_k (see the file comment): each
  /// node of N_k once, no edge term (so `g` needs no edge features), plus `node` itself when
  /// `add_self_loops`.
  [[nodiscard]] std::vector<T> forward_k_hop(std::size_t node, const matrix_cref<T>& x,
                                             const csr_graph& g, std::size_t k) const {
    check_graph_inputs(x, g, /*needs_edge_features=*/false, /*scan_x=*/false);
    check_node(node, g.num_nodes());
    check_row_finite("graph_attention: x", x, node);
    std::vector<std::size_t> nbrs = g.k_hop_in_neighbors(node, k);
    if (cfg_.add_self_loops && !std::binary_search(nbrs.begin(), nbrs.end(), node)) {
      nbrs.insert(std::lower_bound(nbrs.begin(), nbrs.end(), node), node);
    }
    std::vector<T> out(output_dim());
    attend_gathered(x.row(static_cast<Eigen::Index>(node)).data(), x, x, nbrs, nullptr, out.data(),
                    "graph_attention: x");
    return out;
  }

  /// \brief Seeds' shape: builds the CSR from `edge_index` (O(N + E) per call), then as above.
  [[nodiscard]] std::vector<T> forward_k_hop(std::size_t node, const matrix_cref<T>& x,
                                             std::span<const edge> edge_index,
                                             std::size_t k) const {
    return forward_k_hop(node, x,
                         csr_graph::from_edges(static_cast<std::size_t>(x.rows()), edge_index), k);
  }

  /// \brief One query node over explicit neighbour slots with edge features `edge_attr`
  /// (`[neighbors.size(), edge_dim]`, row s = slot s); see the file comment.
  [[nodiscard]] std::vector<T> forward_with_edges(std::span<const T> query,
                                                  const matrix_cref<T>& keys,
                                                  const matrix_cref<T>& values,
                                                  std::span<const std::size_t> neighbors,
                                                  const matrix_cref<T>& edge_attr) const {
    check_query_inputs(query, keys, values, neighbors);
    require_dimension("forward_with_edges: edge_attr.rows() (one row per neighbour)",
                      static_cast<std::size_t>(edge_attr.rows()), neighbors.size());
    require_dimension("forward_with_edges: edge_attr.cols() (edge_dim)",
                      static_cast<std::size_t>(edge_attr.cols()), cfg_.edge_dim);
    require_finite("forward_with_edges: edge_attr", edge_attr.data(),
                   static_cast<std::size_t>(edge_attr.rows()),
                   static_cast<std::size_t>(edge_attr.cols()), edge_attr.outerStride());
    std::vector<T> out(output_dim());
    if (cfg_.edge_dim == 0) {
      attend_gathered(query.data(), keys, values, neighbors, nullptr, out.data());
    } else {
      const row_matrix<T> feats = edge_attr;  // contiguous copy
      attend_gathered(query.data(), keys, values, neighbors, feats.data(), out.data());
    }
    return out;
  }

  /// \brief As above without edge features (edge term 0).
  [[nodiscard]] std::vector<T> forward_with_edges(std::span<const T> query,
                                                  const matrix_cref<T>& keys,
                                                  const matrix_cref<T>& values,
                                                  std::span<const std::size_t> neighbors) const {
    check_query_inputs(query, keys, values, neighbors);
    std::vector<T> out(output_dim());
    attend_gathered(query.data(), keys, values, neighbors, nullptr, out.data());
    return out;
  }

  /// \brief The library's vector API: `query` attends over every key row once, no edge features.
  /// Throws `invalid_argument` for an empty key set.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_non_empty("graph_attention::compute: keys", n);
    std::vector<std::size_t> all(n);
    for (std::size_t j = 0; j < n; ++j) all[j] = j;
    return forward_with_edges(query, keys, values, all);
  }

 private:
  [[nodiscard]] std::size_t hf_checked() const {
    require_at_most("graph_attention: num_heads", cfg_.num_heads, max_dimension);
    require_at_most("graph_attention: out_dim", cfg_.out_dim, max_dimension);
    return cfg_.num_heads * cfg_.out_dim;
  }

  static void check_shape(const char* name, const row_matrix<T>& m, std::size_t rows,
                          std::size_t cols) {
    std::string what = "graph_attention::set_weights: ";
    what.append(name);
    require_dimension(std::string(what).append(".rows()"), static_cast<std::size_t>(m.rows()),
                      rows);
    if (rows > 0) {
      require_dimension(std::string(what).append(".cols()"), static_cast<std::size_t>(m.cols()),
                        cols);
    }
    require_finite(what, m.data(), static_cast<std::size_t>(m.rows()),
                   static_cast<std::size_t>(m.cols()), static_cast<std::ptrdiff_t>(m.cols()));
  }

  void check_node(std::size_t node, std::size_t n) const {
    if (node >= n) {
      std::string msg = "invalid argument: graph_attention: node ";
      msg.append(std::to_string(node))
          .append(" is out of range (num_nodes is ")
          .append(std::to_string(n))
          .append(")");
      throw invalid_argument(msg);
    }
  }

  // `scan_x = false` (per-node paths): only the rows actually used are checked, by
  // `attend_gathered`, so one node costs O(its neighbourhood), not O(N·d).
  void check_graph_inputs(const matrix_cref<T>& x, const csr_graph& g,
                          bool needs_edge_features = true, bool scan_x = true) const {
    require_dimension("graph_attention: x.rows() (must equal g.num_nodes())",
                      static_cast<std::size_t>(x.rows()), g.num_nodes());
    require_dimension("graph_attention: x.cols() (in_dim)", static_cast<std::size_t>(x.cols()),
                      cfg_.in_dim);
    if (needs_edge_features && cfg_.edge_dim > 0) {
      require_dimension(
          "graph_attention: g.edge_dim() (config edge_dim; build the graph with "
          "edge features)",
          g.edge_dim(), cfg_.edge_dim);
    }
    if (scan_x) {
      require_finite("graph_attention: x", x.data(), static_cast<std::size_t>(x.rows()),
                     static_cast<std::size_t>(x.cols()), x.outerStride());
    }
  }

  /// Throws `non_finite_input` naming `what[row][col]` for the first NaN/Inf of row `row`.
  static void check_row_finite(std::string_view what, const matrix_cref<T>& m, std::size_t row) {
    const T* p = m.row(static_cast<Eigen::Index>(row)).data();
    for (std::size_t c = 0; c < static_cast<std::size_t>(m.cols()); ++c) {
      if (!std::isfinite(p[c])) detail::throw_non_finite(what, row, c, p[c]);
    }
  }

  void check_query_inputs(std::span<const T> query, const matrix_cref<T>& keys,
                          const matrix_cref<T>& values,
                          std::span<const std::size_t> neighbors) const {
    require_dimension("forward_with_edges: query.size() (in_dim)", query.size(), cfg_.in_dim);
    require_dimension("forward_with_edges: keys.cols() (in_dim)",
                      static_cast<std::size_t>(keys.cols()), cfg_.in_dim);
    require_dimension("forward_with_edges: values.cols() (in_dim)",
                      static_cast<std::size_t>(values.cols()), cfg_.in_dim);
    require_dimension("forward_with_edges: values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()),
                      static_cast<std::size_t>(keys.rows()));
    for (std::size_t s = 0; s < neighbors.size(); ++s) {
      if (neighbors[s] >= static_cast<std::size_t>(keys.rows())) {
        std::string msg = "invalid argument: forward_with_edges: neighbors[";
        msg.append(std::to_string(s))
            .append("] = ")
            .append(std::to_string(neighbors[s]))
            .append(" is out of range, expected < keys.rows() = ")
            .append(std::to_string(keys.rows()));
        throw invalid_argument(msg);
      }
    }
    require_finite("forward_with_edges: query", query);
    // keys / values rows are checked as they are gathered (only the referenced rows).
  }

  /// a_k · z[k·F .. (k+1)·F) for head k of a [H, F] attention matrix.
  [[nodiscard]] T head_dot(const row_matrix<T>& a, std::size_t h, const T* z) const noexcept {
    const std::size_t F = cfg_.out_dim;
    return kernels::dot(a.row(static_cast<Eigen::Index>(h)).data(), z + h * F, F);
  }

  /// Per-node path: projects the query and the gathered key/value rows, then `attend`.
  /// `feats` is a contiguous [m, edge_dim] block in slot order, or nullptr.
  /// Every referenced key/value row must be finite (`non_finite_input` names it).
  void attend_gathered(const T* query, const matrix_cref<T>& keys, const matrix_cref<T>& values,
                       std::span<const std::size_t> nbrs, const T* feats, T* out,
                       std::string_view key_name = "forward_with_edges: keys") const {
    const std::size_t m = nbrs.size(), H = cfg_.num_heads, HF = H * cfg_.out_dim;
    const std::size_t d = cfg_.in_dim, f = cfg_.edge_dim;
    const bool v1 = cfg_.version == gat_version::v1;
    const bool shared = keys.data() == values.data() && keys.outerStride() == values.outerStride();
    row_matrix<T> kx(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(d));
    row_matrix<T> vx(static_cast<Eigen::Index>(shared ? 0 : m), static_cast<Eigen::Index>(d));
    for (std::size_t s = 0; s < m; ++s) {
      const auto j = static_cast<Eigen::Index>(nbrs[s]);
      check_row_finite(key_name, keys, nbrs[s]);
      kx.row(static_cast<Eigen::Index>(s)) = keys.row(j);
      if (!shared) {
        check_row_finite("forward_with_edges: values", values, nbrs[s]);
        vx.row(static_cast<Eigen::Index>(s)) = values.row(j);
      }
    }
    const row_matrix<T> zk = kx * w_.w_source.transpose();
    row_matrix<T> zv;
    if (!shared) zv = vx * w_.w_source.transpose();
    const row_matrix<T>& zval = shared ? zk : zv;
    const auto q =
        Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(query, static_cast<Eigen::Index>(d));
    Eigen::Matrix<T, 1, Eigen::Dynamic> target;
    row_matrix<T> ks(static_cast<Eigen::Index>(v1 ? m : 0), static_cast<Eigen::Index>(H));
    if (v1) {
      const Eigen::Matrix<T, 1, Eigen::Dynamic> zq = q * w_.w_source.transpose();
      target.resize(static_cast<Eigen::Index>(H));
      for (std::size_t h = 0; h < H; ++h)
        target(static_cast<Eigen::Index>(h)) = head_dot(w_.att_target, h, zq.data());
      for (std::size_t s = 0; s < m; ++s) {
        for (std::size_t h = 0; h < H; ++h) {
          ks(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(h)) =
              head_dot(w_.att_source, h, zk.row(static_cast<Eigen::Index>(s)).data());
        }
      }
    } else {
      target = q * w_.w_target.transpose();
    }
    (void)HF;
    const auto slot = [&](std::size_t s) noexcept {
      const auto r = static_cast<Eigen::Index>(s);
      return detail::gat_slot<T>{zk.row(r).data(), zval.row(r).data(),
                                 v1 ? ks.row(r).data() : nullptr,
                                 feats != nullptr ? feats + s * f : nullptr};
    };
    attend(target.data(), m, slot, out);
  }

  /// The per-target kernel. `target`: v1 [H] a_tgt,kᵀ z_i; v2 [H·F] W_t x_i. Writes
  /// `output_dim()` values to `out` (zeros when m == 0).
  template <class Slot>
  void attend(const T* target, std::size_t m, const Slot& slot, T* out) const noexcept {
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, HF = H * F, f = cfg_.edge_dim;
    const std::size_t od = output_dim();
    for (std::size_t c = 0; c < od; ++c) out[c] = T(0);
    if (m == 0) return;
    const bool v1 = cfg_.version == gat_version::v1;
    // scores[h·m + s]; head accumulators (mean mode); W_e e for v2 with edges.
    T* scores = detail::thread_scratch<T, 0>(H * m);
    T* acc = cfg_.concat ? out : detail::thread_scratch<T, 1>(HF);
    T* ze = detail::thread_scratch<T, 2>(HF);
    if (!cfg_.concat) std::fill(acc, acc + HF, T(0));
    for (std::size_t s = 0; s < m; ++s) {
      const detail::gat_slot<T> sl = slot(s);
      if (v1) {
        // s_ij,k = LeakyReLU(a_tgtᵀ z_i + a_srcᵀ z_j + (a_edgeᵀ W_e) e)
        for (std::size_t h = 0; h < H; ++h) {
          T v = target[h] + sl.key_score[h];
          if (sl.feature != nullptr) {
            v += kernels::dot(u_edge_.row(static_cast<Eigen::Index>(h)).data(), sl.feature, f);
          }
          scores[h * m + s] = detail::leaky_relu(v, slope_);
        }
      } else {
        // s_ij,k = a_kᵀ LeakyReLU(W_t x_i + W_s x_j + W_e e)
        if (sl.feature != nullptr) {
          // W_e e as Σ_c e[c]·(column c of W_e): f contiguous AXPYs of length H·F.
          std::fill(ze, ze + HF, T(0));
          for (std::size_t c = 0; c < f; ++c) {
            kernels::axpy(sl.feature[c], w_edge_t_.row(static_cast<Eigen::Index>(c)).data(), ze,
                          HF);
          }
          for (std::size_t h = 0; h < H; ++h) {
            scores[h * m + s] = detail::gatv2_head_score<true, T>(
                target + h * F, sl.key + h * F, ze + h * F,
                w_.att.row(static_cast<Eigen::Index>(h)).data(), F, slope_);
          }
        } else {
          for (std::size_t h = 0; h < H; ++h) {
            scores[h * m + s] = detail::gatv2_head_score<false, T>(
                target + h * F, sl.key + h * F, nullptr,
                w_.att.row(static_cast<Eigen::Index>(h)).data(), F, slope_);
          }
        }
      }
    }
    for (std::size_t h = 0; h < H; ++h) kernels::softmax(scores + h * m, m);
    // out_k += α_k,s · z_s[k·F, (k+1)·F) for every slot and head.
    for (std::size_t s = 0; s < m; ++s) {
      detail::head_axpy<T>(scores + s, m, slot(s).value, acc, H, F);
    }
    if (!cfg_.concat) {
      const T inv = T(1) / static_cast<T>(H);
      for (std::size_t c = 0; c < F; ++c) {
        T sum = T(0);
        for (std::size_t h = 0; h < H; ++h) sum += acc[h * F + c];
        out[c] = sum * inv;
      }
    }
  }

  void initialise() {
    rng gen(cfg_.seed);
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, HF = H * F, d = cfg_.in_dim;
    const std::size_t f = cfg_.edge_dim;
    const bool v1 = cfg_.version == gat_version::v1;
    weights_type w;
    w.w_source = xavier(gen, HF, d, d, HF);
    if (!v1) w.w_target = xavier(gen, HF, d, d, HF);
    if (f > 0) w.w_edge = xavier(gen, HF, f, f, HF);
    if (v1) {
      const std::size_t fan_in = F * (f > 0 ? 3 : 2);
      w.att_target = xavier(gen, H, F, fan_in, 1);
      w.att_source = xavier(gen, H, F, fan_in, 1);
      if (f > 0) w.att_edge = xavier(gen, H, F, fan_in, 1);
    } else {
      w.att = xavier(gen, H, F, F, 1);
    }
    w_ = std::move(w);
    derive();
  }

  /// v1 edge term folded per head: u_k = W_e,kᵀ a_edge,k, so a_edge,kᵀ W_e,k e = u_k · e.
  /// v2: W_eᵀ stored row-major ([f, H·F]) so W_e e is f contiguous AXPYs.
  void derive() {
    const std::size_t H = cfg_.num_heads, F = cfg_.out_dim, f = cfg_.edge_dim;
    w_edge_t_.resize(0, 0);
    if (cfg_.version == gat_version::v2 && f > 0) w_edge_t_ = w_.w_edge.transpose();
    if (cfg_.version != gat_version::v1 || f == 0) {
      u_edge_.resize(0, 0);
      return;
    }
    u_edge_.resize(static_cast<Eigen::Index>(H), static_cast<Eigen::Index>(f));
    for (std::size_t h = 0; h < H; ++h) {
      u_edge_.row(static_cast<Eigen::Index>(h)) =
          w_.att_edge.row(static_cast<Eigen::Index>(h)) *
          w_.w_edge.middleRows(static_cast<Eigen::Index>(h * F), static_cast<Eigen::Index>(F));
    }
  }

  static row_matrix<T> xavier(rng& gen, std::size_t rows, std::size_t cols, std::size_t fan_in,
                              std::size_t fan_out) {
    const double a = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    row_matrix<T> w(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  graph_attention_config cfg_;
  T slope_ = T(0.2);
  weights_type w_;
  row_matrix<T> u_edge_;    // [H, f], v1 with edges only
  row_matrix<T> w_edge_t_;  // [f, H·F], v2 with edges only
};

/// \brief The seeds' name (`EdgeFeaturedAttention`): the same layer. Note the seeds' defaults
/// were `add_self_loops = true` and the v1 scoring; here the defaults are false and v2.
template <attention_scalar T = float>
using edge_featured_attention = graph_attention<T>;

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
