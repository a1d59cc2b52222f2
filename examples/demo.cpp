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
#include <ruvector/attention/info_bottleneck.hpp>
#include <ruvector/attention/info_geometry.hpp>
#include <ruvector/attention/io/json.hpp>
#include <ruvector/attention/kernels.hpp>
#include <ruvector/attention/moe.hpp>
#include <ruvector/attention/pde.hpp>
#include <ruvector/attention/sparse.hpp>
#include <ruvector/attention/standard.hpp>
#include <ruvector/attention/topology.hpp>
#include <ruvector/attention/transport.hpp>
#include <ruvector/attention/unified_report.hpp>
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

void run_topology(const matrix& doc) {
  header("topology_gated_attention (window coherence gate: stable / cautious / freeze)",
         "coherence of each query's softmax weights on the kNN(k=8) graph of its keys drives a "
         "gate that persists across calls (c1 = 0.6, c2 = 0.45, hysteresis 0.05, period 1)");
  // Coherence metrics of one window: a topic-A query vs weights scattered over every 3rd token.
  const auto keys =
      ra::prepare_coherence_keys<float>(doc, 8);  // kNN graph + edge cosines, built once
  const ra::scaled_dot_product_attention<float> sdpa(kWidth);
  const std::span<const float> q_a(doc.row(3).data(), kWidth);
  const auto w_a = sdpa.compute_with_weights(q_a, doc, doc).weights;
  std::vector<float> scattered(kTokens, 0.0f);
  for (int j = 0; j < kTokens; j += 3) scattered[j] = 1.0f / 16;
  ra::coherence_config cc;
  cc.k = 8;
  const std::pair<const char*, const std::vector<float>*> windows[] = {{"topic-A q", &w_a},
                                                                       {"scattered", &scattered}};
  for (const auto& [label, w] : windows) {
    const auto m = ra::compute_coherence(keys, *w, cc);
    std::printf(
        "    %-10s boundary %.3f  cut %.3f  disagreement %.3f  sim-var %.4f -> coherence %.3f\n",
        label, m.boundary_mass, m.cut_proxy, m.disagreement, m.similarity_variance, m.coherence);
  }

  // Incoherent windows: a marker added to column 63 of every 3rd (mild) or 5th (strong) token, and
  // a query that reads only that column, so its attention lands on tokens scattered across the
  // kNN graph (which the topic and position structure still decides).
  const auto marked = [&](int every, float size) {
    matrix k = doc;
    for (int t = 0; t < kTokens; t += 1) k(t, 63) += (t % every == 1) ? size : 0.0f;
    return k;
  };
  const matrix k_mild = marked(3, 0.5f), k_strong = marked(5, 1.0f);
  std::vector<float> q_marker(kWidth, 0.0f);
  q_marker[63] = 40.0f;

  ra::topology_gated_config<float> cfg;
  cfg.coherence.k = 8;
  cfg.top_k = 8;
  cfg.freeze_k = 4;
  cfg.policy.cautious_threshold = 0.6;
  cfg.policy.freeze_threshold = 0.45;
  cfg.policy.hysteresis = 0.05;
  const ra::topology_gated_attention<float> gate(kWidth, cfg);
  std::printf("    call  window     coherence  mode\n");
  const int window_of_call[] = {0, 0, 1, 1, 2, 0, 0, 0};  // 0 = topic-A, 1 = mild, 2 = strong
  const char* names[] = {"topic-A", "mild", "strong"};
  for (int t = 0; t < 8; ++t) {
    const int w = window_of_call[t];
    const auto r = w == 0 ? gate.compute_detailed(q_a, keys, doc)  // prepared: kNN reused
                          : gate.compute_detailed(q_marker, w == 1 ? k_mild : k_strong, doc);
    std::printf("    %4d  %-9s  %9.3f  %s\n", t, names[w], r.metrics ? r.metrics->coherence : -1.0,
                ra::to_string(r.mode));
  }
  const double us = time_us(200, [&] { (void)gate.compute(q_a, keys, doc); });
  std::printf("    time       %.2f us per gated call with prepared keys (n=%d, d=%d)\n", us,
              kTokens, kWidth);
}

void run_info_bottleneck(const matrix& doc) {
  header("variational_bottleneck (VIB, Alemi et al. 2017) + attention-weight compression",
         "64 -> 8 Gaussian bottleneck trained 60 SGD steps to put the topic (A = +1, B = -1) in "
         "z[0], beta warm-up; then tempered / top-mass attention weights");
  const std::size_t dz = 8;
  ra::variational_bottleneck<float> vib({.input_dim = kWidth, .latent_dim = dz, .seed = 5});
  const auto sched = ra::beta_schedule::linear(0.0, 0.05, 40);
  ra::rng gen(17);
  matrix grad_z(kTokens, static_cast<Eigen::Index>(dz));
  for (std::size_t step = 0; step <= 60; ++step) {
    const auto fwd = vib.forward(doc, gen);
    // Downstream loss: mean over tokens of ½ (z_t[0] − y_t)², y = +1 on topic A, −1 on topic B.
    grad_z.setZero();
    double task = 0.0;
    for (int t = 0; t < kTokens; ++t) {
      const float y = ((t / 16) % 2 == 0) ? 1.0f : -1.0f;
      const float r = fwd.z(t, 0) - y;
      task += 0.5 * r * r / kTokens;
      grad_z(t, 0) = r / kTokens;
    }
    const auto beta = static_cast<float>(sched.beta(step));
    if (step % 20 == 0)
      std::printf("    step %2zu    beta %.4f  task loss %.4f  KL %.3f nats/token\n", step, beta,
                  task, static_cast<double>(fwd.kl_mean));
    vib.apply_gradients(vib.backward(doc, fwd, grad_z, beta), 0.01f);
  }
  const auto eval = vib.forward(doc);  // deterministic: z = mu
  std::printf("    z[0] mean  topic A %.3f, topic B %.3f\n",
              0.5 * (eval.z.col(0).head(16).mean() + eval.z.col(0).tail(16).mean()),
              static_cast<double>(eval.z.col(0).segment(16, 16).mean()));
  print_vector("mu[3]", eval.mu.row(3).data(), static_cast<int>(dz));

  // Attention weights of token 3 over the document, then compressed.
  std::vector<float> w(kTokens), w20(kTokens);
  for (int j = 0; j < kTokens; ++j) {
    w[j] = doc.row(3).dot(doc.row(j)) / std::sqrt(float(kWidth));
    w20[j] = doc.row(20).dot(doc.row(j)) / std::sqrt(float(kWidth));
  }
  ra::kernels::softmax(w.data(), w.size());
  ra::kernels::softmax(w20.data(), w20.size());
  print_weights("w[3]", w.data(), kTokens);
  for (const float temp : {0.5f, 2.0f}) {
    const auto c = ra::temper_weights<float>(w, temp);
    char label[16];
    std::snprintf(label, sizeof label, "T=%.1f", static_cast<double>(temp));
    print_weights(label, c.weights.data(), kTokens);
  }
  const auto top = ra::top_mass_truncate<float>(w, 0.9f);
  std::printf("    top-0.9    keeps %zu of %d keys, KL to uniform %.3f -> %.3f nats\n", top.kept,
              kTokens, std::log(double(kTokens)) - static_cast<double>(top.entropy_in),
              static_cast<double>(top.kl_to_uniform));
  std::printf("    JS(w[3], w[20]) = %.3f nats (ln 2 = %.3f), KL(w[3] || w[20]) = %.3f\n",
              static_cast<double>(ra::js_divergence<float>(w, w20)), std::log(2.0),
              static_cast<double>(ra::kl_categorical<float>(w, w20)));
  const double us = time_us(50, [&] {
    const auto f = vib.forward(doc, gen);
    (void)vib.backward(doc, f, grad_z, 0.01f);
  });
  std::printf("    time       %.1f us per VIB forward+backward of %d tokens\n", us, kTokens);
}

// headers ruvector/attention/pde/{laplacian,diffusion,diffusion_attention}.hpp).
void run_pde(const matrix& doc) {
  header("diffusion_attention (heat diffusion of the logits on the kNN key graph)",
         "query = token 3 (topic A); keys/values = the 48 tokens; kNN graph k = 6, L_sym");
  const std::span<const float> q(doc.row(3).data(), kWidth);

  // The key graph and one diffusion of a spike: heat stays mostly inside its topic block.
  ra::laplacian_options<float> lo;
  lo.type = ra::laplacian_type::symmetric_normalized;
  const auto lap = ra::sparse_laplacian<float>::from_keys(doc, 6, lo);
  std::printf("    graph      n=%zu nnz=%zu sigma=%.3f lambda_max bound %.2f (power est. %.3f)\n",
              lap.size(), lap.nnz(), lap.sigma(), lap.lambda_max_bound(),
              ra::estimate_lambda_max(lap));
  std::vector<float> spike(kTokens, 0.0f);
  spike[3] = 1.0f;
  ra::diffusion_report rep;
  const auto heat = ra::heat_diffuse(lap, std::span<const float>(spike), 2.0, {}, &rep);
  float own = 0, other = 0;
  for (int j = 0; j < kTokens; ++j) ((j / 16) % 2 == 0 ? own : other) += heat[j];
  std::printf(
      "    spike@3    t=2: mass on topic A %.3f, topic B %.3f (Chebyshev degree %zu, "
      "bound %.1e)\n",
      own, other, rep.chebyshev_degree, rep.error_bound);
  ra::diffusion_options eo;
  eo.method = ra::diffusion_method::euler;
  eo.dt = 5.0;  // far beyond the stability bound dt*lambda_max <= 2: split automatically
  (void)ra::heat_diffuse(lap, std::span<const float>(spike), 20.0, eo, &rep);
  std::printf("    euler      dt=5 requested %zu steps, took %zu (split: %s)\n",
              rep.requested_steps, rep.euler_steps, rep.split ? "yes" : "no");

  // Attention at t = 0 (plain softmax), t = 1, and multiscale {0.5, 2, 8}.
  for (const auto& times :
       {std::vector<double>{0.0}, std::vector<double>{1.0}, std::vector<double>{0.5, 2.0, 8.0}}) {
    ra::diffusion_attention_config<float> c;
    c.k = 6;
    c.times = times;
    const ra::diffusion_attention<float> att(kWidth, c);
    const auto graph = att.prepare_keys(doc);
    const auto r = att.compute_with_weights(q, graph, doc);
    char label[32];
    std::snprintf(label, sizeof label, times.size() > 1 ? "t=multi" : "t=%.0f", times[0]);
    // Mean of the per-time weights, summarised like the other mechanisms.
    std::vector<float> w(kTokens, 0.0f);
    for (Eigen::Index t = 0; t < r.weights.rows(); ++t)
      for (int j = 0; j < kTokens; ++j) w[j] += r.weights(t, j) / r.weights.rows();
    print_weights(label, w.data(), kTokens);
    if (times.size() == 1 && times[0] == 1.0) {
      print_vector("output", r.output.data(), kWidth);
      std::vector<float> out(kWidth);
      const double us = time_us(200, [&] { att.compute_into(q, graph, doc, out); });
      std::printf("    time       %.2f us per query on the prepared graph (n=%d, d=%d)\n", us,
                  kTokens, kWidth);
    }
  }
}

//        header), plus <span> and <vector> (already in demo.cpp).
void run_info_geometry(const matrix& doc) {
  header("info_geometry (Fisher information, natural gradient, Fisher-Rao distance)",
         "attention logits of token 3 over the 48 tokens: Fisher of softmax, a natural-gradient "
         "step towards 'attend to topic B', and the Fisher-Rao distance it travels");
  // Logits s_j = q . k_j / sqrt(d) for query token 3 (topic A).
  std::vector<float> logits(kTokens);
  for (int j = 0; j < kTokens; ++j) logits[std::size_t(j)] = doc.row(3).dot(doc.row(j)) / 8.0f;
  const auto fisher = ra::categorical_fisher<float>::from_logits(logits);
  const auto p0 = fisher.probabilities();
  print_weights("p before", p0.data(), kTokens);
  const auto diag = fisher.diagonal();
  print_vector("diag F", diag.data(), kTokens);

  // Target: uniform over topic B (tokens 16-31). Cross-entropy gradient w.r.t. logits: p - q.
  std::vector<float> q(kTokens, 0.0f), grad(kTokens);
  for (int j = 16; j < 32; ++j) q[std::size_t(j)] = 1.0f / 16.0f;
  for (int j = 0; j < kTokens; ++j) grad[std::size_t(j)] = p0[std::size_t(j)] - q[std::size_t(j)];

  // Damped CG on the matrix-free Fisher vs the Sherman-Morrison closed form.
  std::vector<float> x_cg(kTokens), x_cf(kTokens);
  const auto res = ra::conjugate_gradient<float>(fisher, grad, x_cg, 1e-3f);
  fisher.solve(grad, 1e-3f, x_cf);
  double diff = 0, scale = 0;
  for (int j = 0; j < kTokens; ++j) {
    diff = std::max(diff, double(std::abs(x_cg[std::size_t(j)] - x_cf[std::size_t(j)])));
    scale = std::max(scale, double(std::abs(x_cf[std::size_t(j)])));
  }
  std::printf(
      "    CG         %zu iterations, relative residual %.2e, converged %s; "
      "max |CG - closed form| / max |x| = %.2e\n",
      res.iterations, double(res.relative_residual), res.converged ? "yes" : "no", diff / scale);

  // Three natural-gradient steps (closed form, lambda = 1e-3), then the distance travelled.
  const ra::natural_gradient_optimizer<float> opt({.learning_rate = 0.5f, .damping = 1e-3f});
  std::vector<float> theta = logits;
  for (int step = 0; step < 3; ++step) {
    std::vector<float> p(theta);
    ra::kernels::softmax(p.data(), p.size());
    for (int j = 0; j < kTokens; ++j) grad[std::size_t(j)] = p[std::size_t(j)] - q[std::size_t(j)];
    opt.step_logits(theta, grad);
  }
  std::vector<float> p1(theta);
  ra::kernels::softmax(p1.data(), p1.size());
  print_weights("p after", p1.data(), kTokens);
  const std::vector<float> p0v(p0.begin(), p0.end());
  std::printf(
      "    d_FR       before->after %.4f, before->target %.4f, after->target %.4f "
      "(max pi)\n",
      double(ra::fisher_rao_distance<float>(p0v, p1)),
      double(ra::fisher_rao_distance<float>(p0v, q)),
      double(ra::fisher_rao_distance<float>(p1, q)));

  // Empirical Fisher from the 48 token vectors as "per-sample gradients" (N = 48, P = 64).
  const ra::empirical_fisher<float> emp(doc);
  const ra::natural_gradient_optimizer<float> sgd({.learning_rate = 1.0f, .damping = 0.1f});
  std::vector<float> params(kWidth, 0.0f), g(kWidth, 1.0f);
  const auto r2 = sgd.step(params, g, emp);
  print_vector("emp. step", params.data(), kWidth);
  std::printf("    CG         %zu iterations on (G^T G / 48 + 0.1 I), relative residual %.2e\n",
              r2.iterations, double(r2.relative_residual));
  const double us =
      time_us(200, [&] { (void)ra::conjugate_gradient<float>(fisher, grad, x_cg, 1e-3f); });
  std::printf("    time       %.2f us per damped CG solve (n=%d)\n", us, kTokens);
}

void print_report(const char* label, const ra::geometry_report& r) {
  std::printf("    %-10s health %.2f -> %s, temperature x%.3g\n", label, r.health_score,
              std::string(ra::mechanism_name(r.advice.mechanism)).c_str(),
              r.advice.temperature_factor);
  for (const auto& m : r.metrics)
    std::printf("               %-20s %9.4f  %s\n", std::string(ra::metric_name(m.kind)).c_str(),
                m.value, std::string(ra::status_name(m.status)).c_str());
  std::printf("               why: %s\n", r.advice.reasons.front().c_str());
}

void run_report(const matrix& doc) {
  header("unified geometry report (analyze)",
         "OT shift, topology coherence, diffusion energy, attention entropy, H0 persistence, "
         "Gromov delta, smoothness -> health score and a recommended mechanism");
  const matrix queries = doc.middleRows(3, 2);
  const auto r = ra::analyze<float>(queries, doc);
  print_report("document", r);
  // A synthetic tree: 3 children per node, steps halving per level (364 nodes in R^16).
  ra::rng gen(5);
  std::vector<std::vector<float>> nodes{std::vector<float>(16, 0.0f)};
  std::vector<std::size_t> level{0};
  float step = 1.0f;
  for (int depth = 0; depth < 5; ++depth) {
    std::vector<std::size_t> next;
    for (const std::size_t parent : level)
      for (int c = 0; c < 3; ++c) {
        std::vector<float> u(16);
        float norm = 0;
        for (float& x : u) x = gen.normal<float>(), norm += x * x;
        std::vector<float> x = nodes[parent];
        for (int i = 0; i < 16; ++i) x[i] += step * u[i] / std::sqrt(norm);
        nodes.push_back(x);
        next.push_back(nodes.size() - 1);
      }
    level = next;
    step *= 0.5f;
  }
  const matrix tree = ra::to_matrix(nodes, "tree");
  print_report("tree", ra::analyze<float>(matrix(tree.topRows(2)), tree));
  const double us = time_us(5, [&] { (void)ra::analyze<float>(queries, doc); });
  std::printf("    time       %.0f us per report (48 keys)\n", us);
  std::printf("    json       %s\n", ra::to_json_string(r, -1).substr(0, 160).c_str());
}

void run_transport(const matrix& doc) {
  header("transport: sinkhorn (entropic OT)",
         "plan between tokens 0-15 (topic A) and 16-47 (B then A), cost = |x - y|^2 / d");
  {
    const matrix src = doc.topRows(16), dst = doc.bottomRows(32);
    matrix cost(16, 32);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 32; ++j) cost(i, j) = (src.row(i) - dst.row(j)).squaredNorm() / kWidth;
    const std::vector<float> a(16, 1.0f / 16), b(32, 1.0f / 32);
    ra::sinkhorn_options<float> opt;
    opt.epsilon = 0.05f;
    const auto r = ra::sinkhorn<float>(cost, a, b, opt);
    float to_a = 0;  // mass sent to the topic-A half of dst (tokens 32-47)
    for (int i = 0; i < 16; ++i) to_a += r.plan.row(i).tail(16).sum();
    std::printf(
        "    cost       <P,C> = %.4f, objective %.4f, %zu sweeps, marginal error %.1e (%s)\n",
        r.cost, r.objective, r.iterations, r.marginal_error,
        r.converged ? "converged" : "not converged");
    std::printf("    plan       topic-A sources -> topic-A targets: %.3f (b caps it at 0.5)\n",
                to_a);
    const double us = time_us(20, [&] { (void)ra::sinkhorn<float>(cost, a, b, opt); });
    std::printf("    time       %.1f us (16 x 32)\n", us);
  }

  header("transport: sinkhorn_attention (Sinkformer)",
         "48-token self-attention, 3 Sinkhorn iterations: rows sum to 1, columns to ~1");
  {
    const ra::sinkhorn_attention<float> att(kWidth, 3);
    const auto r = att.forward(doc, doc, doc, {}, true);
    print_vector("out[3]", r.output.row(3).data(), kWidth);
    print_weights("w[3]", r.weights.row(3).data(), kTokens);
    std::printf("    marginals  row error %.1e, column error %.3f after %zu iterations\n",
                r.row_error, r.column_error, r.iterations);
    const double us = time_us(20, [&] { (void)att.compute_batch(doc, doc, doc); });
    std::printf("    time       %.1f us for the 48 x 48 batch\n", us);
  }

  header("transport: centroid_ot_attention (k-means + semi-unbalanced OT)",
         "keys clustered once into M = 4; query = token 3 (closed form) and a 48-query batch");
  {
    ra::kmeans_options km;
    km.clusters = 4;
    km.seed = 7;
    const ra::centroid_key_set<float> keys(doc, doc, km);
    std::printf("    clusters   sizes");
    for (std::size_t m = 0; m < keys.num_clusters(); ++m) std::printf(" %zu", keys.cluster_size(m));
    std::printf(" (k-means inertia %.2f, %zu iterations)\n", keys.clustering_inertia(),
                keys.clustering_iterations());
    ra::centroid_ot_config<float> cfg;
    cfg.rho = 1.0f;
    const ra::centroid_ot_attention<float> att(cfg);
    const std::span<const float> q(doc.row(3).data(), kWidth);
    const auto one = att.compute_with_weights(q, keys, true);
    print_vector("out[3]", one.output.data(), kWidth);
    print_weights("key w[3]", one.key_weights.data(), kTokens);
    const auto batch = att.compute_batch(doc, keys);
    std::printf("    batch      %zu iterations, cluster loads", batch.iterations);
    for (float l : batch.cluster_load) std::printf(" %.3f", l);
    std::printf(" (masses");
    for (float mu : keys.masses()) std::printf(" %.3f", mu);
    std::printf(")\n");
    const double us = time_us(200, [&] { (void)att.compute(q, keys); });
    std::printf("    time       %.2f us per single query (M = 4)\n", us);
  }
}

void run_sliced_wasserstein(const matrix& doc) {
  header("sliced_wasserstein_attention (multi-vector key sets, real sliced OT)",
         "12 key sets of 4 consecutive tokens; query = a set of 4 topic-A tokens; "
         "score = -SW_2^2(query set, key set)/tau over 32 directions");
  // Key sets: tokens [4s, 4s + 4) for s < 12 (sets 0-3 and 8-11 are topic A, 4-7 topic B).
  const std::vector<std::size_t> sizes(12, 4);
  const auto keys = ra::vector_sets<float>::from_sizes(doc, sizes);
  matrix values(12, kWidth);  // one value row per set: the set's mean token
  for (int s = 0; s < 12; ++s) values.row(s) = doc.middleRows(4 * s, 4).colwise().mean();
  matrix query(4, kWidth);  // topic-A tokens from both A blocks, not a key set itself
  query.row(0) = doc.row(2);
  query.row(1) = doc.row(9);
  query.row(2) = doc.row(38);
  query.row(3) = doc.row(45);

  const ra::sliced_wasserstein_attention<float> att(
      {.dim = kWidth, .num_projections = 32, .p = 2.0, .temperature = 0.05, .seed = 3});
  const auto prepared = att.prepare_keys(keys);  // sorted projections of every set, once
  const auto r = att.compute_detailed(query, prepared, values);
  double mass_a = 0;
  int best = 0;
  for (int s = 0; s < 12; ++s) {
    if (s < 4 || s >= 8) mass_a += r.weights[std::size_t(s)];
    if (r.weights[std::size_t(s)] > r.weights[std::size_t(best)]) best = s;
  }
  print_vector("output", r.output.data(), kWidth);
  std::printf(
      "    weights    topic-A mass %.3f, max %.3f at set %d; SW_2^2 to set 0 = %.3f, "
      "to set 4 = %.3f\n",
      mass_a, double(r.weights[std::size_t(best)]), best, double(r.distances[0]),
      double(r.distances[4]));
  std::printf(
      "    1-D W_1({0}, {1, 3}) = %.3f (closed form (1 + 3)/2 = 2)\n",
      double(ra::wasserstein_1d_pp(std::vector<float>{0.f}, std::vector<float>{1.f, 3.f}, 1.0f)));

  // Two-stage: top-4 sets by mean(query)·mean(set), SW on those only.
  const ra::sliced_wasserstein_attention<float> filtered({.dim = kWidth,
                                                          .num_projections = 32,
                                                          .p = 2.0,
                                                          .temperature = 0.05,
                                                          .candidates = 4,
                                                          .seed = 3});
  const auto fp = filtered.prepare_keys(keys);
  const auto rf = filtered.compute_detailed(query, fp, values);
  std::printf("    filtered   C = 4 candidates {%u, %u, %u, %u}\n", rf.candidates[0],
              rf.candidates[1], rf.candidates[2], rf.candidates[3]);
  std::vector<float> out(kWidth);
  const double us_all = time_us(200, [&] { att.compute_into(query, prepared, values, out); });
  const double us_f = time_us(200, [&] { filtered.compute_into(query, fp, values, out); });
  const double us_prep = time_us(50, [&] { (void)att.prepare_keys(keys); });
  std::printf("    time       %.2f us per query (all 12 sets), %.2f us (C = 4), prepare %.2f us\n",
              us_all, us_f, us_prep);
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
  run_topology(doc);
  run_info_bottleneck(doc);
  run_pde(doc);
  run_info_geometry(doc);
  run_transport(doc);
  run_sliced_wasserstein(doc);
  run_report(doc);
  std::printf("\ndone.\n");
  return 0;
}
