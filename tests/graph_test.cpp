// Graphs in CSR form (graph/csr_graph.hpp) and GAT / GATv2 with edge features
// (graph/edge_featured.hpp), for float and double.
//
// Oracle: `gat_oracle` below, a dense double-precision reference that includes no library header.
// It stores the graph as a dense N×N table of edge lists (adjacency with multiplicities and one
// feature row per parallel edge), forms each head's projections with its own loops, builds the
// concatenations [z_i ‖ z_j ‖ W_e e] (v1) and [x_i ‖ x_j ‖ e] (v2) literally and multiplies them
// by the concatenated a / W, applies LeakyReLU, and runs a masked softmax over all N columns
// (non-edges −inf, a row without edges → zeros). Self-loops (mean fill), k-hop reachability
// (boolean powers of the dense adjacency) and head concat/mean are likewise re-derived there.
// The oracle takes the layer's weights (read through `weights()`, exactly representable in
// double) and the inputs rounded to T, so the two compute the same function.
//
// Tolerances (max |got − ref| / max(|ref|, 1)):
// - float: 1e-5. Inputs are N(0,1), d ≤ 8, Xavier weights, so projections and scores are O(1) and
//   each carries a few float roundings (~6e-8 relative each, ~d of them); softmax and the convex
//   combination add O(deg·6e-8). Observed ≤ 2.7e-7 over every case below (~40× headroom); a
//   wrong slope, head slice, mask or loop fill changes outputs by ≥ 1e-2.
// - double: 1e-12, the same argument with 2^-53 (observed ≤ 5.6e-16).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/graph/csr_graph.hpp"
#include "ruvector/attention/graph/edge_featured.hpp"
#include "support/helpers.hpp"

namespace ra = ruvector::attention;

// ---------------------------------------------------------------------------------------------
// Independent oracle (std only).
namespace gat_oracle {

using vec = std::vector<double>;
using mat = std::vector<vec>;  // rows

struct weights {
  bool v1 = true;
  std::size_t H = 1, F = 1, d = 1, f = 0;
  mat w_source, w_target, w_edge;        // [H·F][d], [H·F][d], [H·F][f]
  mat att_target, att_source, att_edge;  // [H][F]
  mat att;                               // [H][F]
};

struct gedge {
  std::size_t source, target;
  vec feat;  // size f
};

inline double leaky(double x, double slope) { return x >= 0 ? x : slope * x; }

// y = M x for rows [r0, r0 + n) of M.
inline vec matvec(const mat& m, std::size_t r0, std::size_t n, const vec& x) {
  vec y(n, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c = 0; c < x.size(); ++c) y[r] += m[r0 + r][c] * x[c];
  return y;
}

// One slot of the attention of a query: key row, value row, feature row (empty = none).
struct slot {
  vec key, value, feat;
};

// Raw score of head h for query q against one slot (literal concatenations).
inline double score(const weights& w, std::size_t h, const vec& q, const slot& s, double slope) {
  const std::size_t F = w.F;
  vec feat = s.feat.empty() ? vec(w.f, 0.0) : s.feat;
  if (w.v1) {
    // a_hᵀ [W q ‖ W k ‖ W_e e]
    vec cat = matvec(w.w_source, h * F, F, q);
    vec zk = matvec(w.w_source, h * F, F, s.key);
    cat.insert(cat.end(), zk.begin(), zk.end());
    vec a = w.att_target[h];
    a.insert(a.end(), w.att_source[h].begin(), w.att_source[h].end());
    if (w.f > 0) {
      vec ze = matvec(w.w_edge, h * F, F, feat);
      cat.insert(cat.end(), ze.begin(), ze.end());
      a.insert(a.end(), w.att_edge[h].begin(), w.att_edge[h].end());
    }
    double t = 0;
    for (std::size_t c = 0; c < cat.size(); ++c) t += a[c] * cat[c];
    return leaky(t, slope);
  }
  // a_hᵀ LeakyReLU([W_t | W_s | W_e] [q ‖ k ‖ e])
  vec cat = q;
  cat.insert(cat.end(), s.key.begin(), s.key.end());
  cat.insert(cat.end(), feat.begin(), feat.end());
  double t = 0;
  for (std::size_t r = 0; r < F; ++r) {
    vec wrow = w.w_target[h * F + r];
    wrow.insert(wrow.end(), w.w_source[h * F + r].begin(), w.w_source[h * F + r].end());
    if (w.f > 0) wrow.insert(wrow.end(), w.w_edge[h * F + r].begin(), w.w_edge[h * F + r].end());
    double u = 0;
    for (std::size_t c = 0; c < cat.size(); ++c) u += wrow[c] * cat[c];
    t += w.att[h][r] * leaky(u, slope);
  }
  return t;
}

// Attention of one query over its slots, all heads; concat or mean.
inline vec attend(const weights& w, const vec& q, const std::vector<slot>& slots, bool concat,
                  double slope) {
  const std::size_t H = w.H, F = w.F;
  mat heads(H, vec(F, 0.0));
  if (!slots.empty()) {
    for (std::size_t h = 0; h < H; ++h) {
      vec s(slots.size());
      double mx = -std::numeric_limits<double>::infinity();
      for (std::size_t k = 0; k < slots.size(); ++k) {
        s[k] = score(w, h, q, slots[k], slope);
        mx = std::max(mx, s[k]);
      }
      double sum = 0;
      for (auto& v : s) sum += (v = std::exp(v - mx));
      for (std::size_t k = 0; k < slots.size(); ++k) {
        const vec zv = matvec(w.w_source, h * F, F, slots[k].value);
        for (std::size_t c = 0; c < F; ++c) heads[h][c] += s[k] / sum * zv[c];
      }
    }
  }
  vec out;
  if (concat) {
    for (const auto& hd : heads) out.insert(out.end(), hd.begin(), hd.end());
  } else {
    out.assign(F, 0.0);
    for (const auto& hd : heads)
      for (std::size_t c = 0; c < F; ++c) out[c] += hd[c] / static_cast<double>(H);
  }
  return out;
}

// Dense N×N table: cell [i][j] = feature rows of the edges j → i (multiplicity = list length).
inline std::vector<std::vector<mat>> dense_adjacency(std::size_t n, const std::vector<gedge>& e,
                                                     std::size_t f, bool add_loops) {
  std::vector<std::vector<mat>> adj(n, std::vector<mat>(n));
  for (const auto& ed : e) adj[ed.target][ed.source].push_back(ed.feat);
  if (add_loops) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!adj[i][i].empty()) continue;
      vec mean(f, 0.0);
      std::size_t cnt = 0;
      for (std::size_t j = 0; j < n; ++j)
        for (const auto& row : adj[i][j]) {
          for (std::size_t c = 0; c < f; ++c) mean[c] += row[c];
          ++cnt;
        }
      if (cnt > 0)
        for (auto& v : mean) v /= static_cast<double>(cnt);
      adj[i][i].push_back(mean);
    }
  }
  return adj;
}

// Whole-graph reference: the masked softmax runs over every column j of the dense table.
inline mat forward(const weights& w, const mat& x, const std::vector<gedge>& e, bool concat,
                   double slope, bool add_loops) {
  const std::size_t n = x.size();
  const auto adj = dense_adjacency(n, e, w.f, add_loops);
  mat out;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<slot> slots;
    for (std::size_t j = 0; j < n; ++j)
      for (const auto& feat : adj[i][j]) slots.push_back({x[j], x[j], w.f > 0 ? feat : vec{}});
    out.push_back(attend(w, x[i], slots, concat, slope));
  }
  return out;
}

// k-hop: the distinct j with a directed walk j → … → i of 1..k edges (boolean powers).
inline std::vector<std::size_t> k_hop(std::size_t n, const std::vector<gedge>& e, std::size_t i,
                                      std::size_t k) {
  std::vector<std::vector<int>> a(n, std::vector<int>(n, 0));  // a[t][s] = edge s → t
  for (const auto& ed : e) a[ed.target][ed.source] = 1;
  std::vector<int> reach(n, 0), walk(n, 0);  // walk[j]: a walk of exactly l edges j → i
  for (std::size_t j = 0; j < n; ++j) walk[j] = a[i][j];
  for (std::size_t l = 1; l <= k; ++l) {
    for (std::size_t j = 0; j < n; ++j) reach[j] |= walk[j];
    std::vector<int> next(n, 0);
    for (std::size_t m = 0; m < n; ++m)
      if (walk[m])
        for (std::size_t j = 0; j < n; ++j) next[j] |= a[m][j];
    walk = next;
  }
  std::vector<std::size_t> r;
  for (std::size_t j = 0; j < n; ++j)
    if (reach[j]) r.push_back(j);
  return r;
}

}  // namespace gat_oracle

// ---------------------------------------------------------------------------------------------
namespace {

namespace orc = gat_oracle;
using ruvector_test::thrown_message;

static_assert(ra::attention_mechanism<ra::graph_attention<float>>);
static_assert(ra::attention_mechanism<ra::graph_attention<double>>);
static_assert(std::is_same_v<ra::edge_featured_attention<float>, ra::graph_attention<float>>);

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

template <class T>
orc::mat to_oracle(const ra::row_matrix<T>& m) {
  orc::mat r(static_cast<std::size_t>(m.rows()), orc::vec(static_cast<std::size_t>(m.cols())));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      r[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = static_cast<double>(m(i, j));
  return r;
}

template <class T>
orc::weights oracle_weights(const ra::graph_attention<T>& layer) {
  const auto& c = layer.config();
  const auto& w = layer.weights();
  orc::weights o;
  o.v1 = c.version == ra::gat_version::v1;
  o.H = c.num_heads;
  o.F = c.out_dim;
  o.d = c.in_dim;
  o.f = c.edge_dim;
  o.w_source = to_oracle(w.w_source);
  o.w_target = to_oracle(w.w_target);
  o.w_edge = to_oracle(w.w_edge);
  o.att_target = to_oracle(w.att_target);
  o.att_source = to_oracle(w.att_source);
  o.att_edge = to_oracle(w.att_edge);
  o.att = to_oracle(w.att);
  return o;
}

// max_i |got − ref| / max(|ref|, 1)
double rel_err(std::span<const double> got, const orc::vec& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double e = 0;
  for (std::size_t i = 0; i < std::min(got.size(), ref.size()); ++i)
    e = std::max(e, std::abs(got[i] - ref[i]) / std::max(std::abs(ref[i]), 1.0));
  return e;
}

template <class T>
std::vector<double> widen(std::span<const T> v) {
  return std::vector<double>(v.begin(), v.end());
}

template <class T>
std::vector<double> row_d(const ra::row_matrix<T>& m, std::size_t i) {
  return ruvector_test::row_of(m, i);
}

// A random test graph: values rounded to T, the oracle sees the same numbers.
template <class T>
struct graph_case {
  std::size_t n = 0, f = 0;
  std::vector<ra::edge> edges;
  ra::row_matrix<T> x, feats;
  ra::csr_graph g;
  orc::mat ox;
  std::vector<orc::gedge> oedges;
};

template <class T>
graph_case<T> random_case(std::mt19937& gen, std::size_t d, std::size_t f, std::size_t n,
                          std::size_t num_edges) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<std::size_t> node(0, n - 1);
  graph_case<T> c;
  c.n = n;
  c.f = f;
  c.x.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (Eigen::Index i = 0; i < c.x.size(); ++i) c.x.data()[i] = static_cast<T>(normal(gen));
  // Node n−1 never receives an edge (isolated as a target), so every case has a zero row
  // unless self-loops are added.
  for (std::size_t e = 0; e < num_edges; ++e) {
    const std::size_t t = n > 1 ? node(gen) % (n - 1) : 0;
    c.edges.push_back({node(gen), n > 1 ? t : 0});
  }
  if (n > 2 && num_edges > 2) {  // a guaranteed multi-edge and self-loop
    c.edges.push_back(c.edges[0]);
    c.edges.push_back({1, 1});
  }
  c.feats.resize(static_cast<Eigen::Index>(c.edges.size()), static_cast<Eigen::Index>(f));
  for (Eigen::Index i = 0; i < c.feats.size(); ++i) c.feats.data()[i] = static_cast<T>(normal(gen));
  c.g = f > 0 ? ra::csr_graph::from_edges<T>(n, c.edges, c.feats)
              : ra::csr_graph::from_edges(n, c.edges);
  c.ox = to_oracle(c.x);
  for (std::size_t e = 0; e < c.edges.size(); ++e) {
    orc::vec feat(f);
    for (std::size_t k = 0; k < f; ++k)
      feat[k] =
          static_cast<double>(c.feats(static_cast<Eigen::Index>(e), static_cast<Eigen::Index>(k)));
    c.oedges.push_back({c.edges[e].source, c.edges[e].target, feat});
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// csr_graph

TEST(CsrGraph, LayoutGroupsByTargetStably) {
  // Edges: 0:(0→2) 1:(1→2) 2:(2→0) 3:(0→2, a multi-edge) 4:(3→3, a self-loop); node 1 has none.
  const std::vector<ra::edge> e{{0, 2}, {1, 2}, {2, 0}, {0, 2}, {3, 3}};
  const auto g = ra::csr_graph::from_edges(4, e);
  EXPECT_EQ(g.num_nodes(), 4u);
  EXPECT_EQ(g.num_edges(), 5u);
  EXPECT_EQ(std::vector<std::size_t>(g.offsets().begin(), g.offsets().end()),
            (std::vector<std::size_t>{0, 1, 1, 4, 5}));
  EXPECT_EQ(std::vector<std::size_t>(g.sources().begin(), g.sources().end()),
            (std::vector<std::size_t>{2, 0, 1, 0, 3}));
  EXPECT_EQ(std::vector<std::size_t>(g.edge_ids().begin(), g.edge_ids().end()),
            (std::vector<std::size_t>{2, 0, 1, 3, 4}));
  EXPECT_TRUE(g.in_neighbors(1).empty());
  EXPECT_EQ(g.in_degree(2), 3u);
  EXPECT_FALSE(g.has_edge_features());
  const auto empty = ra::csr_graph::from_edges(0, std::span<const ra::edge>{});
  EXPECT_EQ(empty.offsets().size(), 1u);
}

TEST(CsrGraph, ValidationNamesTheEdge) {
  const std::vector<ra::edge> e{{0, 1}, {1, 2}, {5, 0}};
  const auto msg =
      thrown_message<ra::invalid_argument>([&] { (void)ra::csr_graph::from_edges(3, e); });
  EXPECT_NE(msg.find("edges[2].source = 5"), std::string::npos) << msg;
  const std::vector<ra::edge> e2{{0, 1}, {1, 3}};
  const auto msg2 =
      thrown_message<ra::invalid_argument>([&] { (void)ra::csr_graph::from_edges(3, e2); });
  EXPECT_NE(msg2.find("edges[1].target = 3"), std::string::npos) << msg2;
  const std::vector<ra::edge> e3{{0, 1}, {1, 2}};
  ra::row_matrix<double> feats(3, 2);
  feats.setOnes();
  EXPECT_THROW((void)ra::csr_graph::from_edges<double>(3, e3, feats), ra::dimension_mismatch);
  ra::row_matrix<float> ff(2, 2);
  ff.setOnes();
  ff(1, 0) = std::numeric_limits<float>::quiet_NaN();
  const auto msg3 = thrown_message<ra::non_finite_input>(
      [&] { (void)ra::csr_graph::from_edges<float>(3, e3, ff); });
  EXPECT_NE(msg3.find("[1][0]"), std::string::npos) << msg3;
  const auto g = ra::csr_graph::from_edges(3, e3);
  EXPECT_THROW((void)g.in_neighbors(3), ra::invalid_argument);
  EXPECT_THROW((void)g.hop_distances(7), ra::invalid_argument);
}

TEST(CsrGraph, SelfLoopsFillWithMeanOrZeros) {
  // Node 0: in-edges with features (1,2) and (3,6); node 1: has a loop; node 2: no in-edges.
  const std::vector<ra::edge> e{{1, 0}, {2, 0}, {1, 1}};
  ra::row_matrix<double> feats(3, 2);
  feats << 1, 2, 3, 6, 9, 9;
  const auto g = ra::csr_graph::from_edges<double>(3, e, feats);
  const auto m = g.with_self_loops();
  ASSERT_EQ(m.num_edges(), 5u);  // loops added for nodes 0 and 2 only
  EXPECT_EQ(m.edges()[3], (ra::edge{0, 0}));
  EXPECT_EQ(m.edges()[4], (ra::edge{2, 2}));
  EXPECT_DOUBLE_EQ(m.edge_features()(3, 0), 2.0);
  EXPECT_DOUBLE_EQ(m.edge_features()(3, 1), 4.0);
  EXPECT_DOUBLE_EQ(m.edge_features()(4, 0), 0.0);
  EXPECT_EQ(m.in_degree(0), 3u);
  EXPECT_EQ(m.in_neighbors(0).back(), 0u);  // appended after the original in-edges
  const auto z = g.with_self_loops(ra::self_loop_fill::zeros);
  EXPECT_DOUBLE_EQ(z.edge_features()(3, 0), 0.0);
  EXPECT_EQ(ra::csr_graph::from_edges(2, std::span<const ra::edge>{}).with_self_loops().num_edges(),
            2u);
}

TEST(CsrGraph, HopDistancesFollowBothDirections) {
  // 0 → 1 → 2, 3 → 2, node 4 isolated.
  const std::vector<ra::edge> e{{0, 1}, {1, 2}, {3, 2}};
  const auto g = ra::csr_graph::from_edges(5, e);
  const auto d = g.hop_distances(2);
  EXPECT_EQ(d, (std::vector<std::size_t>{2, 1, 0, 1, SIZE_MAX}));
  EXPECT_EQ(g.hop_distances(0), (std::vector<std::size_t>{0, 1, 2, 3, SIZE_MAX}));
  // k-hop in-neighbourhood is directed: 2 ← {1, 3} ← {0}.
  EXPECT_EQ(g.k_hop_in_neighbors(2, 1), (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(g.k_hop_in_neighbors(2, 2), (std::vector<std::size_t>{0, 1, 3}));
  EXPECT_TRUE(g.k_hop_in_neighbors(0, 3).empty());
  EXPECT_TRUE(g.k_hop_in_neighbors(2, 0).empty());
  // A cycle brings the node itself in.
  const std::vector<ra::edge> c{{0, 1}, {1, 0}};
  EXPECT_EQ(ra::csr_graph::from_edges(2, c).k_hop_in_neighbors(0, 2),
            (std::vector<std::size_t>{0, 1}));
}

TEST(CsrGraph, KHopMatchesOracleOnRandomGraphs) {
  std::mt19937 gen(7);
  for (int rep = 0; rep < 20; ++rep) {
    const std::size_t n = 1 + gen() % 9;
    std::uniform_int_distribution<std::size_t> node(0, n - 1);
    std::vector<ra::edge> e;
    std::vector<orc::gedge> oe;
    for (std::size_t k = 0; k < gen() % 15; ++k) {
      e.push_back({node(gen), node(gen)});
      oe.push_back({e.back().source, e.back().target, {}});
    }
    const auto g = ra::csr_graph::from_edges(n, e);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t k = 0; k <= 3; ++k)
        EXPECT_EQ(g.k_hop_in_neighbors(i, k), orc::k_hop(n, oe, i, k));
  }
}

// ---------------------------------------------------------------------------------------------
// graph_attention

template <class T>
class GraphAttention : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GraphAttention, Scalars);

TYPED_TEST(GraphAttention, WholeGraphMatchesDenseOracle) {
  using T = TypeParam;
  std::mt19937 gen(42);
  std::size_t configs = 0;
  for (const auto version : {ra::gat_version::v1, ra::gat_version::v2})
    for (const bool concat : {true, false})
      for (const std::size_t heads : {std::size_t{1}, std::size_t{3}})
        for (const std::size_t f : {std::size_t{0}, std::size_t{3}})
          for (const bool loops : {false, true}) {
            const std::size_t d = 2 + gen() % 7, F = 1 + gen() % 5;
            const ra::graph_attention_config cfg{.in_dim = d,
                                                 .out_dim = F,
                                                 .num_heads = heads,
                                                 .edge_dim = f,
                                                 .concat = concat,
                                                 .negative_slope = 0.2,
                                                 .add_self_loops = loops,
                                                 .version = version,
                                                 .seed = configs++};
            const ra::graph_attention<T> layer(cfg);
            const auto ow = oracle_weights(layer);
            for (int rep = 0; rep < 3; ++rep) {
              const std::size_t n = 1 + gen() % 9;
              const auto c = random_case<T>(gen, d, f, n, gen() % 16);
              SCOPED_TRACE(testing::Message()
                           << "v" << (version == ra::gat_version::v1 ? 1 : 2)
                           << " concat=" << concat << " H=" << heads << " f=" << f
                           << " loops=" << loops << " n=" << n << " E=" << c.edges.size());
              const auto ref = orc::forward(ow, c.ox, c.oedges, concat, 0.2, loops);
              const auto out = layer.forward(c.x, c.g);
              ASSERT_EQ(static_cast<std::size_t>(out.rows()), n);
              ASSERT_EQ(static_cast<std::size_t>(out.cols()), layer.output_dim());
              for (std::size_t i = 0; i < n; ++i) {
                EXPECT_LE(rel_err(row_d(out, i), ref[i]), kTol<T>) << "node " << i;
                const auto node = layer.forward_neighborhood(i, c.x, c.g);
                EXPECT_LE(rel_err(widen<T>(node), ref[i]), kTol<T>) << "neighborhood " << i;
              }
              if (!loops && n > 1) {  // node n−1 receives no edge: exactly zero
                for (Eigen::Index k = 0; k < out.cols(); ++k)
                  EXPECT_EQ(out(static_cast<Eigen::Index>(n - 1), k), T(0));
              }
            }
          }
}

TYPED_TEST(GraphAttention, KHopMatchesOracle) {
  using T = TypeParam;
  std::mt19937 gen(3);
  for (const auto version : {ra::gat_version::v1, ra::gat_version::v2})
    for (const bool loops : {false, true}) {
      const ra::graph_attention<T> layer({.in_dim = 4,
                                          .out_dim = 3,
                                          .num_heads = 2,
                                          .edge_dim = 2,
                                          .add_self_loops = loops,
                                          .version = version,
                                          .seed = 11});
      const auto ow = oracle_weights(layer);
      const auto c = random_case<T>(gen, 4, 2, 7, 9);
      for (std::size_t i = 0; i < c.n; ++i)
        for (std::size_t k = 0; k <= 3; ++k) {
          auto set = orc::k_hop(c.n, c.oedges, i, k);
          if (loops && std::find(set.begin(), set.end(), i) == set.end()) set.push_back(i);
          std::vector<orc::slot> slots;
          for (const auto j : set) slots.push_back({c.ox[j], c.ox[j], {}});
          const auto ref = orc::attend(ow, c.ox[i], slots, true, 0.2);
          const auto got = layer.forward_k_hop(i, c.x, c.g, k);
          EXPECT_LE(rel_err(widen<T>(got), ref), kTol<T>) << "node " << i << " k " << k;
          // The seeds' edge-list overload builds the same graph.
          const auto got2 = layer.forward_k_hop(i, c.x, std::span<const ra::edge>(c.edges), k);
          EXPECT_EQ(got2, got);
        }
    }
}

TYPED_TEST(GraphAttention, ForwardWithEdgesSeparatesKeysAndValues) {
  using T = TypeParam;
  std::mt19937 gen(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (const auto version : {ra::gat_version::v1, ra::gat_version::v2})
    for (const bool concat : {true, false}) {
      const std::size_t d = 5, f = 3, n = 6;
      const ra::graph_attention<T> layer({.in_dim = d,
                                          .out_dim = 4,
                                          .num_heads = 2,
                                          .edge_dim = f,
                                          .concat = concat,
                                          .negative_slope = 0.1,
                                          .version = version,
                                          .seed = 9});
      const auto ow = oracle_weights(layer);
      const auto rnd = [&](std::size_t r, std::size_t cols) {
        ra::row_matrix<T> m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(cols));
        for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(normal(gen));
        return m;
      };
      const auto keys = rnd(n, d), values = rnd(n, d), q = rnd(1, d);
      const std::vector<std::size_t> nbrs{4, 0, 4, 2};  // a repeated neighbour = a multi-edge
      const auto attr = rnd(nbrs.size(), f);
      const auto ok = to_oracle(keys), ov = to_oracle(values), oa = to_oracle(attr);
      std::vector<orc::slot> slots, plain;
      for (std::size_t s = 0; s < nbrs.size(); ++s) {
        slots.push_back({ok[nbrs[s]], ov[nbrs[s]], oa[s]});
        plain.push_back({ok[nbrs[s]], ov[nbrs[s]], {}});
      }
      const std::vector<T> qv(q.data(), q.data() + d);
      const auto oq = widen<T>(qv);
      EXPECT_LE(rel_err(widen<T>(layer.forward_with_edges(qv, keys, values, nbrs, attr)),
                        orc::attend(ow, oq, slots, concat, 0.1)),
                kTol<T>);
      EXPECT_LE(rel_err(widen<T>(layer.forward_with_edges(qv, keys, values, nbrs)),
                        orc::attend(ow, oq, plain, concat, 0.1)),
                kTol<T>);
      // compute(): every key once, no edge features.
      std::vector<orc::slot> all;
      for (std::size_t j = 0; j < n; ++j) all.push_back({ok[j], ov[j], {}});
      EXPECT_LE(
          rel_err(widen<T>(layer.compute(qv, keys, values)), orc::attend(ow, oq, all, concat, 0.1)),
          kTol<T>);
      // No neighbours → zeros.
      const auto none = layer.forward_with_edges(qv, keys, values, std::span<const std::size_t>{});
      EXPECT_EQ(none, std::vector<T>(layer.output_dim(), T(0)));
    }
}

TYPED_TEST(GraphAttention, GatV2IsDynamicClosedForm) {
  // GATv2 with d = 1, F = 2: W_t = (1, −1)ᵀ, W_s = (−1, 1)ᵀ, a = (−1, −1):
  //   s_ij = −LeakyReLU(x_i − x_j) − LeakyReLU(x_j − x_i) = −(1 − ρ)|x_i − x_j|  (slope ρ),
  // since LeakyReLU(u) + LeakyReLU(−u) = (1 − ρ)|u|:
  // each node prefers the neighbour closest to itself — the ranking depends on the query.
  using T = TypeParam;
  ra::graph_attention<T> layer({.in_dim = 1, .out_dim = 2, .negative_slope = 0.2, .seed = 1});
  ra::graph_attention_weights<T> w;
  w.w_source.resize(2, 1);
  w.w_source << -1, 1;
  w.w_target.resize(2, 1);
  w.w_target << 1, -1;
  w.att.resize(1, 2);
  w.att << -1, -1;
  layer.set_weights(w);
  ra::row_matrix<T> x(2, 1);
  x << -1, 1;
  const std::vector<ra::edge> e{{0, 0}, {1, 0}, {0, 1}, {1, 1}};
  const auto out = layer.forward(x, ra::csr_graph::from_edges(2, e));
  // α(self) = 1/(1 + e^{−1.6}); messages W_s x_j = (−x_j, x_j).
  const double p = 1.0 / (1.0 + std::exp(-1.6));
  const double o0 = p * 1.0 + (1 - p) * -1.0;  // node 0: first coordinate of Σ α (−x_j)
  EXPECT_NEAR(static_cast<double>(out(0, 0)), o0, kTol<T>);
  EXPECT_NEAR(static_cast<double>(out(0, 1)), -o0, kTol<T>);
  EXPECT_NEAR(static_cast<double>(out(1, 0)), -o0, kTol<T>);
  EXPECT_NEAR(static_cast<double>(out(1, 1)), o0, kTol<T>);
  EXPECT_LT(out(0, 0) * out(1, 0), T(0));  // opposite preferences

  // GATv1 is static: with F = 1, z_j = w·x_j ∈ {−w, w}, out_i = w·(α_i1 − α_i0), and both nodes
  // rank their two neighbours the same way, so out_0·out_1 ≥ 0 for every weight draw.
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const ra::graph_attention<T> v1({.in_dim = 1,
                                     .out_dim = 1,
                                     .negative_slope = 0.2,
                                     .version = ra::gat_version::v1,
                                     .seed = seed});
    const auto o = v1.forward(x, ra::csr_graph::from_edges(2, e));
    EXPECT_GE(o(0, 0) * o(1, 0), T(0)) << "seed " << seed;
  }
}

TYPED_TEST(GraphAttention, SeedDeterminismAndThreadIndependence) {
  using T = TypeParam;
  std::mt19937 gen(17);
  const ra::graph_attention_config cfg{
      .in_dim = 6, .out_dim = 4, .num_heads = 3, .edge_dim = 2, .seed = 123};
  const ra::graph_attention<T> a(cfg), b(cfg);
  auto cfg2 = cfg;
  cfg2.seed = 124;
  const ra::graph_attention<T> c2(cfg2);
  EXPECT_EQ(a.weights().w_source, b.weights().w_source);
  EXPECT_EQ(a.weights().att, b.weights().att);
  EXPECT_NE(a.weights().w_source, c2.weights().w_source);
  // Xavier bound of w_source: √(6/(in + H·F)) = √(6/18).
  EXPECT_LE(a.weights().w_source.cwiseAbs().maxCoeff(), static_cast<T>(std::sqrt(6.0 / 18.0)));
  const auto cs = random_case<T>(gen, 6, 2, 700, 4000);
  ra::set_num_threads(1);
  const auto o1 = a.forward(cs.x, cs.g);
  ra::set_num_threads(2);
  const auto o2 = a.forward(cs.x, cs.g);
  ra::set_num_threads(0);
  EXPECT_EQ(o1, o2);  // bit-identical: each row is computed the same way on any thread
  EXPECT_EQ(o1, b.forward(cs.x, cs.g));
}

TYPED_TEST(GraphAttention, ValidationErrors) {
  using T = TypeParam;
  EXPECT_THROW(ra::graph_attention<T>({.in_dim = 0, .out_dim = 2}), ra::invalid_config);
  EXPECT_THROW(ra::graph_attention<T>({.in_dim = 2, .out_dim = 0}), ra::invalid_config);
  EXPECT_THROW(ra::graph_attention<T>({.in_dim = 2, .out_dim = 2, .num_heads = 0}),
               ra::invalid_config);
  EXPECT_THROW(ra::graph_attention<T>({.in_dim = 2, .out_dim = 2, .negative_slope = NAN}),
               ra::invalid_config);
  ra::graph_attention<T> layer({.in_dim = 3, .out_dim = 2, .num_heads = 2, .edge_dim = 2});
  const std::vector<ra::edge> e{{0, 1}, {2, 1}};
  ra::row_matrix<T> x = ra::row_matrix<T>::Ones(3, 3);
  ra::row_matrix<T> feats = ra::row_matrix<T>::Ones(2, 2);
  const auto g = ra::csr_graph::from_edges<T>(3, e, feats);
  const auto g_nofeat = ra::csr_graph::from_edges(3, e);
  EXPECT_THROW((void)layer.forward(x, g_nofeat), ra::dimension_mismatch);
  EXPECT_THROW((void)layer.forward(x.leftCols(2), g), ra::dimension_mismatch);
  EXPECT_THROW((void)layer.forward(x.topRows(2), g), ra::dimension_mismatch);
  x(2, 1) = std::numeric_limits<T>::infinity();
  const auto msg = thrown_message<ra::non_finite_input>([&] { (void)layer.forward(x, g); });
  EXPECT_NE(msg.find("x[2][1]"), std::string::npos) << msg;
  // Per-node paths check only the rows they read: node 1 reads rows 1, 0, 2; node 0 reads row 0.
  const auto msg_nb =
      thrown_message<ra::non_finite_input>([&] { (void)layer.forward_neighborhood(1, x, g); });
  EXPECT_NE(msg_nb.find("x[2][1]"), std::string::npos) << msg_nb;
  EXPECT_NO_THROW((void)layer.forward_neighborhood(0, x, g));
  EXPECT_THROW((void)layer.forward_k_hop(1, x, g, 1), ra::non_finite_input);
  {
    const std::vector<T> q1(3, T(1));
    const std::vector<std::size_t> uses2{2};
    ra::row_matrix<T> keys = ra::row_matrix<T>::Ones(3, 3);
    const auto msg_v = thrown_message<ra::non_finite_input>(
        [&] { (void)layer.forward_with_edges(q1, keys, x, uses2); });
    EXPECT_NE(msg_v.find("values[2][1]"), std::string::npos) << msg_v;
  }
  x(2, 1) = 1;
  EXPECT_THROW((void)layer.forward_neighborhood(3, x, g), ra::invalid_argument);
  EXPECT_THROW((void)layer.forward_k_hop(5, x, g, 1), ra::invalid_argument);
  const std::vector<T> q(3, T(1));
  const std::vector<std::size_t> bad{0, 3};
  const auto msg2 =
      thrown_message<ra::invalid_argument>([&] { (void)layer.forward_with_edges(q, x, x, bad); });
  EXPECT_NE(msg2.find("neighbors[1] = 3"), std::string::npos) << msg2;
  const std::vector<std::size_t> ok{0, 2};
  EXPECT_THROW((void)layer.forward_with_edges(q, x, x, ok, feats.topRows(1)),
               ra::dimension_mismatch);
  EXPECT_THROW((void)layer.forward_with_edges(std::vector<T>(2), x, x, ok), ra::dimension_mismatch);
  EXPECT_THROW((void)layer.compute(q, x.topRows(0), x.topRows(0)), ra::invalid_argument);
  // set_weights names the member.
  auto w = layer.weights();
  w.w_edge.resize(4, 3);
  const auto msg3 = thrown_message<ra::dimension_mismatch>([&] { layer.set_weights(w); });
  EXPECT_NE(msg3.find("w_edge.cols()"), std::string::npos) << msg3;
  w = layer.weights();
  w.att_source.resize(2, 2);  // v2 has no att_source
  EXPECT_THROW(layer.set_weights(w), ra::dimension_mismatch);
  w = layer.weights();
  w.att(1, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_THROW(layer.set_weights(w), ra::non_finite_input);
  // Edge features on the graph are ignored when edge_dim = 0.
  const ra::graph_attention<T> plain({.in_dim = 3, .out_dim = 2, .seed = 4});
  EXPECT_EQ(plain.forward(x, g), plain.forward(x, g_nofeat));
}

}  // namespace
