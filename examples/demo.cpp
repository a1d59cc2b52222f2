// ruvector-attention demo: runs every mechanism built so far on built-in sample data and prints
// its outputs, a summary of its attention weights and its timing.
//
// The sample data is a deterministic toy "document": 48 token embeddings of width 64 made of
// sinusoidal position codes plus three topic directions (tokens 0-15 topic A, 16-31 topic B,
// 32-47 topic A again), so attention from a topic-A query should concentrate on topic-A keys.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <ruvector/attention/core.hpp>
#include <ruvector/attention/curvature.hpp>
#include <ruvector/attention/graph.hpp>
#include <ruvector/attention/hyperbolic.hpp>
#include <ruvector/attention/kernels.hpp>
#include <ruvector/attention/moe.hpp>
#include <ruvector/attention/sparse.hpp>
#include <ruvector/attention/standard.hpp>
#include <string>
#include <vector>

namespace ra = ruvector::attention;
using matrix = ra::row_matrix<float>;

namespace {

constexpr int kTokens = 48;
constexpr int kWidth = 64;

matrix sample_document() {
  matrix x(kTokens, kWidth);
  ra::rng noise(2026);
  for (int t = 0; t < kTokens; ++t) {
    const int topic = (t / 16) % 2;  // A, B, A
    for (int c = 0; c < kWidth; ++c) {
      const double freq = std::pow(10000.0, -2.0 * (c / 2) / kWidth);
      const double pos = (c % 2 == 0) ? std::sin(t * freq) : std::cos(t * freq);
      const double topic_dir = ((c % 8) == topic * 4) ? 3.0 : 0.0;
      x(t, c) = static_cast<float>(0.3 * pos + topic_dir + 0.1 * noise.normal<double>());
    }
  }
  return x;
}

// Median wall time of `reps` calls, in microseconds.
double time_us(int reps, const std::function<void()>& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct weight_summary {
  double entropy;  // nats
  double max_w;    // largest weight
  int argmax;      // index of the largest weight
  double topic_a;  // mass on topic-A keys
};

weight_summary summarise(const float* w, int n) {
  weight_summary s{0, 0, 0, 0};
  for (int j = 0; j < n; ++j) {
    if (w[j] > 0) s.entropy -= w[j] * std::log(w[j]);
    if (w[j] > s.max_w) s.max_w = w[j], s.argmax = j;
    if ((j / 16) % 2 == 0) s.topic_a += w[j];
  }
  return s;
}

void print_vector(const char* label, const float* v, int n, int show = 6) {
  std::printf("    %-10s [", label);
  for (int i = 0; i < std::min(n, show); ++i) std::printf("%s%+.4f", i ? ", " : "", v[i]);
  std::printf("%s] (%d values)\n", n > show ? ", ..." : "", n);
}

void print_weights(const char* label, const float* w, int n) {
  const auto s = summarise(w, n);
  std::printf("    %-10s entropy %.3f nats (uniform %.3f), max %.3f at key %d, topic-A mass %.3f\n",
              label, s.entropy, std::log(double(n)), s.max_w, s.argmax, s.topic_a);
}

void header(const char* name, const char* what) { std::printf("\n== %s\n   %s\n", name, what); }

void run_scaled_dot_product(const matrix& doc) {
  header("scaled_dot_product_attention (single query)",
         "query = token 3 (topic A) over all 48 tokens as keys and values");
  const ra::scaled_dot_product_attention<float> att(kWidth);
  std::vector<float> out(kWidth), w(kTokens);
  const std::span<const float> q(doc.row(3).data(), kWidth);
  att.compute_into(q, doc, doc, out, {}, w);
  print_vector("output", out.data(), kWidth);
  print_weights("weights", w.data(), kTokens);
  // Key mask: hide topic A entirely; the mass must move to topic B.
  bool mask[kTokens];
  for (int j = 0; j < kTokens; ++j) mask[j] = (j / 16) % 2 == 1;
  att.compute_into(q, doc, doc, out, std::span<const bool>(mask, kTokens), w);
  print_weights("masked", w.data(), kTokens);
  const double us = time_us(200, [&] { att.compute_into(q, doc, doc, out); });
  std::printf("    time       %.2f us per query (n=%d, d=%d)\n", us, kTokens, kWidth);
}

void run_batched_sdpa(const matrix& doc) {
  header("sdpa (tensor API, causal, grouped-query)",
         "[B=2, H=4, L=48, dh=16] queries over [B=2, Hkv=2, L=48, dh=16] keys (GQA, 2 query heads "
         "per kv head)");
  // Heads are slices of the document rows: view [L, 64] as [H, L, 16] by strides (no copy).
  const std::size_t B = 2, H = 4, Hkv = 2, L = kTokens, dh = 16;
  std::vector<float> kv(B * Hkv * L * dh);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < Hkv; ++h)
      for (std::size_t i = 0; i < L; ++i)
        for (std::size_t c = 0; c < dh; ++c)
          kv[((b * Hkv + h) * L + i) * dh + c] = doc(i, h * dh + c);
  const ra::tensor_view<const float, 4> q(doc.data(), {B, H, L, dh}, {0, 16, kWidth, 1});
  const auto k = ra::make_tensor_view<const float>(kv.data(), B, Hkv, L, dh);
  std::vector<float> out(B * H * L * dh), w(B * H * L * L), lse(B * H * L);
  ra::sdpa_options<float> opt;
  opt.mask.causal = true;
  ra::sdpa_extras<float> ex;
  ex.weights = ra::make_tensor_view(w.data(), B, H, L, L);
  ex.lse = ra::tensor_view<float, 3>(lse.data(), {B, H, L});
  ra::sdpa<float>(q, k, k, ra::make_tensor_view(out.data(), B, H, L, dh), opt, ex);
  print_vector("out[0,0,47]", &out[(0 * H + 0) * L * dh + 47 * dh], dh);
  print_weights("w[0,0,47]", &w[((0 * H + 0) * L + 47) * L], kTokens);
  print_weights("w[0,0,0]", &w[0], kTokens);
  std::printf("    causal     query 0 sees only key 0: w = %.3f; lse[0,0,0] = %.4f\n", w[0],
              lse[0]);
  const double us = time_us(
      50, [&] { ra::sdpa<float>(q, k, k, ra::make_tensor_view(out.data(), B, H, L, dh), opt); });
  const double gflop = 4.0 * B * H * L * L * dh / 1e9;
  std::printf("    time       %.1f us (%.2f GFLOP/s, dense count)\n", us, gflop / (us * 1e-6));
}

void run_multi_head(const matrix& doc) {
  header("multi_head_attention (learned projections)",
         "E=64, H=8, Xavier-initialised from seed 42; self-attention and cross-attention");
  const ra::multi_head_attention<float> mha(
      ra::multi_head_config{.embed_dim = kWidth, .num_heads = 8, .seed = 42});
  std::vector<float> w(8 * kTokens * kTokens);
  ra::multi_head_call<float> call;
  call.weights = ra::make_tensor_view(w.data(), 1, 8, kTokens, kTokens);
  const matrix y = mha.forward(doc, doc, doc, call);
  print_vector("y[3]", y.row(3).data(), kWidth);
  print_weights("head0 q3", &w[3 * kTokens], kTokens);
  const matrix queries = doc.topRows(4);
  const matrix cross = mha.forward(queries, doc, doc);  // Lq = 4, Lk = 48
  std::printf("    cross      %ld queries x %ld keys -> %ld x %ld output\n", long(queries.rows()),
              long(doc.rows()), long(cross.rows()), long(cross.cols()));
  const double us = time_us(50, [&] { (void)mha.forward(doc); });
  std::printf("    time       %.1f us per self-attention forward (L=%d)\n", us, kTokens);

  header("multi_head_attention::split_only (the seeds' MultiHeadAttention)",
         "no projections; head h is the slice [8h, 8h+8) of every vector");
  const auto split = ra::multi_head_attention<float>::split_only(kWidth, 8);
  const auto o = split.compute(std::span<const float>(doc.row(3).data(), kWidth), doc, doc);
  print_vector("output", o.data(), kWidth);
}

void run_flash(const matrix& doc) {
  header("flash_attention (tiled, O(n) memory) and exact partial merges",
         "causal self-attention over the document with 16-key tiles; then token 3's output "
         "rebuilt from three key shards");
  const ra::flash_attention<float> flash(kWidth, /*block_size=*/16, /*causal=*/true);
  std::vector<float> lse(kTokens);
  const matrix y = flash.forward(doc, doc, doc, lse);
  print_vector("y[47]", y.row(47).data(), kWidth);
  std::printf("    lse        row 0 %.4f (one visible key), row 47 %.4f\n", lse[0], lse[47]);
  // The same last row from the dense reference, for comparison.
  const ra::scaled_dot_product_attention<float> dense(kWidth);
  const std::span<const float> q47(doc.row(47).data(), kWidth);
  const auto ref = dense.compute(q47, doc, doc);
  double diff = 0;
  for (int c = 0; c < kWidth; ++c)
    diff = std::max(diff, double(std::abs(ref[std::size_t(c)] - y(47, c))));
  std::printf("    vs dense   max |flash - sdpa| on row 47 = %.2e\n", diff);
  std::vector<ra::attention_partial<float>> parts;
  for (int s = 0; s < 3; ++s)
    parts.push_back(ra::partial_attention<float>(std::span<const float>(doc.row(3).data(), kWidth),
                                                 doc.middleRows(16 * s, 16),
                                                 doc.middleRows(16 * s, 16)));
  const auto merged = ra::merge_partials<float>(parts);
  std::printf("    partials   lse per shard %.3f %.3f %.3f -> merged %.3f\n", parts[0].lse,
              parts[1].lse, parts[2].lse, merged.lse);
  print_vector("merged", merged.output.data(), kWidth);
  const double us = time_us(50, [&] { (void)flash.forward(doc, doc, doc); });
  std::printf("    time       %.1f us per causal forward (L=%d)\n", us, kTokens);
}

void run_linear(const matrix& doc) {
  header("linear_attention (elu+1 and FAVOR+ with a reusable key state)",
         "the 48 tokens as keys/values summarised once; each query then costs O(m*dv)");
  const ra::linear_attention<float> elu({.dim = kWidth});
  const ra::linear_attention<float> favor(
      {.dim = kWidth, .num_features = 256, .kernel = ra::feature_map::favor_plus, .seed = 11});
  // FAVOR+ approximates softmax attention; scale the document down so the kernel's variance is
  // moderate (see docs/sparse.md) and compare with exact attention on the same data.
  const matrix small = doc * 0.25f;
  const std::span<const float> q(small.row(3).data(), kWidth);
  const auto exact = ra::scaled_dot_product_attention<float>(kWidth).compute(q, small, small);
  const auto state = favor.build_state(small, small);
  const auto approx = state.query(q);
  const auto e1 = elu.compute(q, small, small);
  double err = 0;
  for (int c = 0; c < kWidth; ++c)
    err = std::max(err, double(std::abs(approx[std::size_t(c)] - exact[std::size_t(c)])));
  print_vector("favor+", approx.data(), kWidth);
  print_vector("exact", exact.data(), kWidth);
  print_vector("elu+1", e1.data(), kWidth);
  std::printf("    favor+     max |favor+ - softmax| = %.4f with m = 256 random features\n", err);
  std::vector<float> out(kWidth);
  const double us = time_us(200, [&] { state.query(q, out); });
  std::printf("    time       %.2f us per query from the key state\n", us);
}

void run_sparse(const matrix& doc) {
  header("sparse patterns + sparse_attention, local_global_attention (Longformer)",
         "BigBird block-sparse and top-k patterns over the document; a window of 4 plus 2 global "
         "tokens");
  ra::block_sparse_options bigbird;
  bigbird.block_size = 4;
  bigbird.random_blocks = 1;
  bigbird.seed = 5;
  const ra::sparse_pattern bb = ra::make_block_sparse_pattern(kTokens, kTokens, bigbird);
  const ra::sparse_pattern top = ra::make_topk_pattern(doc, doc, 6);
  std::printf("    patterns   bigbird density %.3f (%zu pairs), top-6 density %.3f\n", bb.density(),
              bb.nnz(), top.density());
  const matrix y_bb = ra::sparse_attention(doc, doc, doc, bb);
  const matrix y_top = ra::sparse_attention(doc, doc, doc, top);
  print_vector("bigbird[3]", y_bb.row(3).data(), kWidth);
  print_vector("top-6[3]", y_top.row(3).data(), kWidth);
  const ra::local_global_attention<float> lg(kWidth, /*window=*/4, /*num_global=*/2);
  const matrix y_lg = lg.forward(doc, doc, doc);
  const auto at = lg.compute_at(20, std::span<const float>(doc.row(20).data(), kWidth), doc, doc);
  std::printf("    local-glob query 20 sees %zu of %d keys; compute_at(20) == forward row 20: %s\n",
              lg.keys_for(20, kTokens).size(), kTokens,
              std::abs(at[0] - y_lg(20, 0)) < 1e-5f ? "yes" : "no");
  print_vector("lg[20]", y_lg.row(20).data(), kWidth);
  const double us = time_us(100, [&] { (void)lg.forward(doc, doc, doc); });
  std::printf("    time       %.1f us per local-global forward (L=%d)\n", us, kTokens);
}

/// A complete binary tree of depth 4 (31 nodes) embedded in the Poincaré disk (c = 1): node at
/// depth k sits at hyperbolic distance 1.6·k from the origin, in the middle of the angular sector
/// it inherits from its parent (the classic low-distortion tree embedding).
matrix tree_in_disk(std::vector<int>& depth, std::vector<int>& parent) {
  constexpr int kNodes = 31;
  matrix x(kNodes, 2);
  std::vector<double> lo(kNodes), hi(kNodes);
  depth.assign(kNodes, 0);
  parent.assign(kNodes, -1);
  lo[0] = 0.0;
  hi[0] = 2.0 * 3.14159265358979;
  for (int i = 0; i < kNodes; ++i) {
    if (i > 0) {
      parent[i] = (i - 1) / 2;
      depth[i] = depth[parent[i]] + 1;
      const double mid = 0.5 * (lo[parent[i]] + hi[parent[i]]);
      lo[i] = i % 2 == 1 ? lo[parent[i]] : mid;
      hi[i] = i % 2 == 1 ? mid : hi[parent[i]];
    }
    const double r = std::tanh(0.5 * 1.6 * depth[i]);  // d(0, x) = 2·artanh(‖x‖)
    const double a = 0.5 * (lo[i] + hi[i]);
    x(i, 0) = static_cast<float>(r * std::cos(a));
    x(i, 1) = static_cast<float>(r * std::sin(a));
  }
  return x;
}

void run_geometric(const matrix& doc) {
  header(
      "hyperbolic_attention, mixed_curvature_fused_attention, component_quantizer",
      "a binary tree in the Poincaré disk; the document split as E^32 x H^16 x S^16; packed keys");
  std::vector<int> depth, parent;
  const matrix tree = tree_in_disk(depth, parent);
  const int node = 10;  // depth 3: parent 4, children 21 and 22
  ra::hyperbolic_attention_config cfg;
  cfg.dim = 2;
  cfg.temperature = 2.0;
  const ra::hyperbolic_attention<float> attn(cfg);
  const std::span<const float> q(tree.row(node).data(), 2);
  const auto w = attn.compute_weights(q, tree);
  std::vector<int> order(w.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return w[a] > w[b]; });
  std::printf("    query      node %d (depth %d, parent %d); top keys by weight:", node,
              depth[node], parent[node]);
  for (int i = 0; i < 4; ++i)
    std::printf(" %d(depth %d, w=%.3f)", order[i], depth[order[i]], w[order[i]]);
  std::printf("\n");
  for (auto agg :
       {ra::hyperbolic_aggregation::tangent_origin, ra::hyperbolic_aggregation::einstein_midpoint,
        ra::hyperbolic_aggregation::frechet_mean}) {
    cfg.aggregation = agg;
    const auto r = ra::hyperbolic_attention<float>(cfg).compute_detailed(q, tree, tree);
    const char* name = agg == ra::hyperbolic_aggregation::tangent_origin      ? "tangent"
                       : agg == ra::hyperbolic_aggregation::einstein_midpoint ? "einstein"
                                                                              : "frechet";
    std::printf("    %-10s output (%.3f, %.3f), hyperbolic distance to the query node %.3f%s\n",
                name, r.output[0], r.output[1], attn.ball().distance(r.output, q),
                agg == ra::hyperbolic_aggregation::frechet_mean
                    ? (r.frechet.converged ? " (Frechet converged)" : " (Frechet not converged)")
                    : "");
  }

  // Mixed curvature: the document's 64 dims read as [E 32 | H 16 | S 16], H scaled into the ball.
  matrix mixed = doc;
  mixed.block(0, 32, kTokens, 16) *= 0.02f;
  ra::fused_curvature_config mc;
  mc.dims = {32, 16, 16};
  mc.num_heads = 2;
  mc.head_weights = {{1.0, 0.0, 0.0}, {0.5, 0.35, 0.15}};
  const ra::mixed_curvature_fused_attention<float> fused(mc);
  const auto keys = fused.prepare_keys(mixed);
  const std::span<const float> q3(mixed.row(3).data(), kWidth);
  const auto heads = fused.compute_heads(q3, keys, doc);
  print_vector("E-only[3]", heads.row(0).data(), kWidth);
  print_vector("E+H+S[3]", heads.row(1).data(), kWidth);
  const double us = time_us(200, [&] { (void)fused.compute(q3, keys, doc); });
  std::printf("    time       %.2f us per fused mixed-curvature query (n=%d, 2 heads)\n", us,
              kTokens);

  const ra::component_quantizer<float> quantizer(mc.dims);
  const auto packed = quantizer.quantize(mixed);
  const auto dots = packed.component_dots(q3, 10);
  const auto bound = packed.error_bound(q3, 10);
  std::printf(
      "    packed     %zu bytes for %d keys (float: %zu) = %.2fx; key 10 E-dot %.4f +- %.4f\n",
      packed.storage_bytes(), kTokens, packed.float_bytes(), packed.compression_ratio(),
      static_cast<double>(dots.euclidean), static_cast<double>(bound.euclidean));
}

void run_graph(const matrix& doc) {
  header("graph_attention (GAT, GATv2), graph_rope_attention, dual_space_attention",
         "the document as a graph: a chain of tokens plus a link from every token to the first "
         "token of its topic block");
  std::vector<ra::edge> edges;
  for (std::size_t t = 1; t < kTokens; ++t) {
    edges.push_back({t - 1, t});  // chain, both ways
    edges.push_back({t, t - 1});
    edges.push_back({t - t % 16, t});  // the block's first token → every token of the block
  }
  const auto g = ra::csr_graph::from_edges(kTokens, edges);
  std::printf("    graph      %zu nodes, %zu edges (CSR by target)\n", g.num_nodes(),
              g.num_edges());
  for (auto version : {ra::gat_version::v1, ra::gat_version::v2}) {
    const ra::graph_attention<float> gat({.in_dim = kWidth,
                                          .out_dim = 16,
                                          .num_heads = 4,
                                          .add_self_loops = true,
                                          .version = version,
                                          .seed = 7});
    const matrix h = gat.forward(doc, g);
    print_vector(version == ra::gat_version::v1 ? "GAT[20]" : "GATv2[20]", h.row(20).data(),
                 static_cast<int>(h.cols()));
    const double us = time_us(50, [&] { (void)gat.forward(doc, g); });
    std::printf("    time       %.1f us per whole-graph forward (%zu edges + loops)\n", us,
                g.num_edges());
  }
  const ra::graph_rope_attention<float> rope(ra::graph_rope_config{.dim = kWidth});
  const auto pos = rope.rope().positions_from_root(g, 0);
  std::printf(
      "    rope       hop positions from node 0: node 5 → %.0f, node 20 → %.0f, node 47 → %.0f\n",
      pos[5], pos[20], pos[47]);
  const auto out = rope.compute_from_root(
      g, 0, 20, std::span<const float>(doc.row(20).data(), kWidth), doc, doc);
  print_vector("rope[20]", out.data(), kWidth);
  matrix small = 0.05f * doc;  // inside the unit ball for the hyperbolic half
  const ra::dual_space_attention<float> dual(ra::dual_space_config{.dim = kWidth});
  const auto terms = dual.space_terms(std::span<const float>(small.row(3).data(), kWidth), small);
  std::printf(
      "    dual       key 3 vs 20: euclidean %.4f / %.4f, hyperbolic distance %.4f / %.4f\n",
      static_cast<double>(terms.euclidean[3]), static_cast<double>(terms.euclidean[20]),
      static_cast<double>(terms.hyperbolic[3]), static_cast<double>(terms.hyperbolic[20]));
}

void run_moe(const matrix& doc) {
  header("moe_attention (token routing)",
         "4 feed-forward experts, learned top-2 router, capacity factor 1.25, Switch balance loss "
         "and router z-loss");
  const ra::moe_attention<float> moe(ra::moe_config{.dim = kWidth,
                                                    .num_experts = 4,
                                                    .top_k = 2,
                                                    .hidden_dim = 2 * kWidth,
                                                    .capacity_factor = 1.25,
                                                    .seed = 11});
  const auto r = moe.forward(doc);
  std::printf("    capacity   %zu assignments per expert (%d tokens x top-2 / 4 experts x 1.25)\n",
              r.stats.capacity, kTokens);
  std::printf("    routed    ");
  for (std::size_t e = 0; e < r.stats.tokens_per_expert.size(); ++e)
    std::printf(" expert %zu: %zu/%zu", e, r.stats.tokens_per_expert[e],
                r.stats.assigned_per_expert[e]);
  std::printf("  (kept/assigned)\n");
  std::printf("    dropped    %zu assignments, %zu tokens with no expert\n", r.stats.dropped.size(),
              r.stats.dropped_tokens);
  std::printf("    losses     L_aux %.4f (1 = perfectly balanced), L_z %.4f\n",
              static_cast<double>(r.stats.load_balance_loss),
              static_cast<double>(r.stats.router_z_loss));
  print_vector("y[20]", r.output.row(20).data(), static_cast<int>(r.output.cols()));
  const double us = time_us(50, [&] { (void)moe.forward(doc); });
  std::printf("    time       %.1f us per batch of %d tokens\n", us, kTokens);
}

}  // namespace

int main() {
  std::printf("ruvector-attention %s demo (SIMD: %s, threads: %d)\n", ra::version_string,
              ra::kernels::simd_arch_name(), ra::num_threads());
  const matrix doc = sample_document();
  std::printf("sample data: %d tokens x %d dims (topics A|B|A over blocks of 16 tokens)\n", kTokens,
              kWidth);
  run_scaled_dot_product(doc);
  run_batched_sdpa(doc);
  run_multi_head(doc);
  run_flash(doc);
  run_linear(doc);
  run_sparse(doc);
  run_geometric(doc);
  run_graph(doc);
  run_moe(doc);
  std::printf("\ndone.\n");
  return 0;
}
