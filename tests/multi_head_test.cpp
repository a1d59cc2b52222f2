// Multi-head attention (standard/multi_head.hpp) for float and double against the independent
// double-precision reference forward in support/oracle.hpp (projections y = x Wᵀ + b with
// W [out, in], contiguous head slices, GQA kv head h / (H / H_kv), concat, output projection).
//
// Tolerances (kTol<T>, as max_i |got − ref| / max(|ref|, 1)):
// - float: 1e-5 (≈ 170 ulp of 1). Three chained float stages (input projections of length ≤ 16,
//   attention over ≤ 10 keys with heads of width ≤ 8, output projection of length ≤ 16), each
//   adding ~√n·2^-24 relative to O(1) intermediates; the worst error observed over the cases below
//   is 5.2e-7, so 1e-5 keeps ~20× headroom while any real mistake (wrong head slice, transposed
//   weight, missing bias) is ≥ 1e-2.
// - double: 1e-12 (the same argument with 2^-53; observed ≤ 1.2e-15).
// Every input and weight is rounded to T before the oracle sees it.
#include "ruvector/attention/standard/multi_head.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

static_assert(ra::masked_attention_mechanism<ra::multi_head_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::multi_head_attention<double>>);
static_assert(ra::masked_attention_mechanism<ra::scaled_dot_product_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::scaled_dot_product_attention<double>>);

template <class T>
Eigen::Matrix<T, Eigen::Dynamic, 1> to_eigen_vec(const std::vector<double>& v) {
  Eigen::Matrix<T, Eigen::Dynamic, 1> out(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i)
    out(static_cast<Eigen::Index>(i)) = static_cast<T>(v[i]);
  return out;
}

// The layer's parameters, copied out in double.
template <class T>
orc::mha_weights oracle_weights(const ra::multi_head_attention<T>& layer) {
  const auto& w = layer.weights();
  orc::mha_weights o{orc::to_dmat(w.w_q),
                     orc::to_dmat(w.w_k),
                     orc::to_dmat(w.w_v),
                     orc::to_dmat(w.w_o),
                     {},
                     {},
                     {},
                     {}};
  if (layer.config().bias) {
    o.b_q = orc::to_dvec(w.b_q);
    o.b_k = orc::to_dvec(w.b_k);
    o.b_v = orc::to_dvec(w.b_v);
    o.b_o = orc::to_dvec(w.b_o);
  }
  return o;
}

// Random caller weights of the layer's shapes (N(0, 1/in) entries, N(0, 0.25) biases).
template <class T>
ra::projection_weights<T> random_weights(const ra::multi_head_attention<T>& layer,
                                         std::uint64_t seed, bool bias) {
  const auto& c = layer.config();
  const std::size_t E = c.embed_dim, KV = layer.kv_width();
  const auto mat = [&](std::size_t r, std::size_t cols, std::uint64_t s) {
    return to_eigen<T>(orc::random_matrix(r, cols, s, 1.0 / std::sqrt(static_cast<double>(cols))));
  };
  ra::projection_weights<T> w;
  w.w_q = mat(E, E, seed);
  w.w_k = mat(KV, c.kdim, seed + 1);
  w.w_v = mat(KV, c.vdim, seed + 2);
  w.w_o = mat(E, E, seed + 3);
  if (bias) {
    w.b_q = to_eigen_vec<T>(orc::random_vector(E, seed + 4, 0.5));
    w.b_k = to_eigen_vec<T>(orc::random_vector(KV, seed + 5, 0.5));
    w.b_v = to_eigen_vec<T>(orc::random_vector(KV, seed + 6, 0.5));
    w.b_o = to_eigen_vec<T>(orc::random_vector(E, seed + 7, 0.5));
  }
  return w;
}

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// A sequence-level case: inputs (rounded to T) and the layer.
template <class T>
struct seq_inputs {
  orc::dmat xq, xk, xv;
  ra::row_matrix<T> Xq, Xk, Xv;
};

template <class T>
seq_inputs<T> make_inputs(std::size_t lq, std::size_t lk, std::size_t e, std::size_t kdim,
                          std::size_t vdim, std::uint64_t seed) {
  seq_inputs<T> s;
  s.xq = orc::rounded<T>(orc::random_matrix(lq, e, seed));
  s.xk = orc::rounded<T>(orc::random_matrix(lk, kdim, seed + 1));
  s.xv = orc::rounded<T>(orc::random_matrix(lk, vdim, seed + 2));
  s.Xq = to_eigen<T>(s.xq);
  s.Xk = to_eigen<T>(s.xk);
  s.Xv = to_eigen<T>(s.xv);
  return s;
}

template <class T>
void expect_close(const ra::row_matrix<T>& got, const orc::dmat& ref, const std::string& label) {
  ASSERT_EQ(static_cast<std::size_t>(got.rows()), ref.rows) << label;
  ASSERT_EQ(static_cast<std::size_t>(got.cols()), ref.cols) << label;
  EXPECT_LE(orc::max_mixed_error(orc::to_dmat(got).a, ref.a), kTol<T>) << label;
}

template <class T>
class MultiHeadTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(MultiHeadTest, Scalars);

TYPED_TEST(MultiHeadTest, SelfAttentionMatchesOracle) {
  using T = TypeParam;
  ra::multi_head_attention<T> layer(16, 4);
  EXPECT_EQ(layer.head_dim(), 4u);
  EXPECT_EQ(layer.kv_width(), 16u);
  const auto in = make_inputs<T>(7, 7, 16, 16, 16, 1);
  const auto w = oracle_weights(layer);
  const auto ref = orc::reference_multi_head(in.xq, in.xq, in.xq, &w, 4, 4, false);
  expect_close<T>(layer.forward(in.Xq), ref.out, "self, xavier weights");
  expect_close<T>(layer.forward(in.Xq, in.Xq, in.Xq), ref.out, "self via three arguments");
  // With non-zero biases (Xavier initialises them to zero).
  layer.set_weights(random_weights(layer, 2, true));
  const auto w2 = oracle_weights(layer);
  expect_close<T>(layer.forward(in.Xq),
                  orc::reference_multi_head(in.xq, in.xq, in.xq, &w2, 4, 4, false).out,
                  "self, random weights and biases");
}

TYPED_TEST(MultiHeadTest, CrossAttentionWithOtherKeyAndValueWidths) {
  using T = TypeParam;
  for (const bool bias : {true, false}) {
    ra::multi_head_attention<T> layer(ra::multi_head_config{
        .embed_dim = 12, .num_heads = 3, .kdim = 5, .vdim = 9, .bias = bias, .seed = 3});
    EXPECT_EQ(layer.weights().w_k.cols(), 5);
    EXPECT_EQ(layer.weights().w_v.cols(), 9);
    EXPECT_EQ(layer.weights().b_q.size(), bias ? 12 : 0);
    layer.set_weights(random_weights(layer, 4, bias));
    const auto w = oracle_weights(layer);
    for (const auto& [lq, lk] : {std::pair<std::size_t, std::size_t>{4, 10}, {10, 4}, {1, 1}}) {
      const auto in = make_inputs<T>(lq, lk, 12, 5, 9, 5 + lq);
      const auto ref = orc::reference_multi_head(in.xq, in.xk, in.xv, &w, 3, 3, false);
      expect_close<T>(layer.forward(in.Xq, in.Xk, in.Xv), ref.out,
                      "cross Lq=" + std::to_string(lq) + " Lk=" + std::to_string(lk) +
                          (bias ? " bias" : " no bias"));
    }
  }
}

TYPED_TEST(MultiHeadTest, GroupedAndMultiQuery) {
  using T = TypeParam;
  for (const std::size_t hkv : {std::size_t{4}, std::size_t{2}, std::size_t{1}}) {
    ra::multi_head_attention<T> layer(ra::multi_head_config{
        .embed_dim = 16, .num_heads = 4, .num_kv_heads = hkv, .kdim = 6, .seed = 7});
    EXPECT_EQ(layer.kv_width(), hkv * 4);
    EXPECT_EQ(static_cast<std::size_t>(layer.weights().w_k.rows()), hkv * 4);
    EXPECT_EQ(static_cast<std::size_t>(layer.weights().w_v.rows()), hkv * 4);
    EXPECT_EQ(layer.weights().w_v.cols(), 16);
    layer.set_weights(random_weights(layer, 8 + hkv, true));
    const auto w = oracle_weights(layer);
    const auto in = make_inputs<T>(5, 8, 16, 6, 16, 9);
    for (const bool causal : {false, true}) {
      ra::multi_head_call<T> call;
      call.causal = causal;
      const auto ref = orc::reference_multi_head(in.xq, in.xk, in.xv, &w, 4, hkv, causal);
      expect_close<T>(layer.forward(in.Xq, in.Xk, in.Xv, call), ref.out,
                      "Hkv=" + std::to_string(hkv) + (causal ? " causal" : ""));
    }
  }
}

TYPED_TEST(MultiHeadTest, CausalFromConfigAndOverride) {
  using T = TypeParam;
  ra::multi_head_attention<T> causal_layer(
      ra::multi_head_config{.embed_dim = 8, .num_heads = 2, .causal = true, .seed = 11});
  causal_layer.set_weights(random_weights(causal_layer, 12, true));
  const auto w = oracle_weights(causal_layer);
  ra::multi_head_attention<T> plain_layer(ra::multi_head_config{.embed_dim = 8, .num_heads = 2});
  plain_layer.set_weights(random_weights(causal_layer, 12, true));  // same weights

  for (const auto& [lq, lk] : {std::pair<std::size_t, std::size_t>{6, 6}, {4, 9}, {9, 4}}) {
    const std::string label = " Lq=" + std::to_string(lq) + " Lk=" + std::to_string(lk);
    const auto in = make_inputs<T>(lq, lk, 8, 8, 8, 13 + lk);
    const auto ref_causal = orc::reference_multi_head(in.xq, in.xk, in.xv, &w, 2, 2, true);
    const auto ref_full = orc::reference_multi_head(in.xq, in.xk, in.xv, &w, 2, 2, false);
    expect_close<T>(causal_layer.forward(in.Xq, in.Xk, in.Xv), ref_causal.out,
                    "config causal" + label);
    ra::multi_head_call<T> off;
    off.causal = false;
    expect_close<T>(causal_layer.forward(in.Xq, in.Xk, in.Xv, off), ref_full.out,
                    "override off" + label);
    ra::multi_head_call<T> on;
    on.causal = true;
    expect_close<T>(plain_layer.forward(in.Xq, in.Xk, in.Xv, on), ref_causal.out,
                    "override on" + label);
    expect_close<T>(plain_layer.forward(in.Xq, in.Xk, in.Xv), ref_full.out, "config off" + label);
  }
}

TYPED_TEST(MultiHeadTest, KeyMaskAndBias) {
  using T = TypeParam;
  const std::size_t E = 12, H = 3, Lq = 4, Lk = 7;
  ra::multi_head_attention<T> layer(
      ra::multi_head_config{.embed_dim = E, .num_heads = H, .seed = 17});
  layer.set_weights(random_weights(layer, 18, true));
  const auto w = oracle_weights(layer);
  const auto in = make_inputs<T>(Lq, Lk, E, E, E, 19);
  const bool mask[Lk] = {true, false, true, true, false, true, false};
  const std::vector<bool> vmask(mask, mask + Lk);
  ra::multi_head_call<T> call;
  call.key_mask = ra::tensor_view<const bool, 2>(mask, {1, Lk});
  expect_close<T>(layer.forward(in.Xq, in.Xk, in.Xv, call),
                  orc::reference_multi_head(in.xq, in.xk, in.xv, &w, H, H, false, vmask).out,
                  "key mask");

  // Additive bias [1, H, Lq, Lk] with a -inf entry.
  std::vector<orc::dmat> bias_heads;
  std::vector<T> bias(H * Lq * Lk);
  for (std::size_t h = 0; h < H; ++h) {
    auto b = orc::rounded<T>(orc::random_matrix(Lq, Lk, 20 + h));
    if (h == 1) b(2, 3) = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < Lq; ++i)
      for (std::size_t j = 0; j < Lk; ++j) bias[(h * Lq + i) * Lk + j] = static_cast<T>(b(i, j));
    bias_heads.push_back(b);
  }
  call.bias = ra::tensor_view<const T, 4>(bias.data(), {1, H, Lq, Lk});
  expect_close<T>(
      layer.forward(in.Xq, in.Xk, in.Xv, call),
      orc::reference_multi_head(in.xq, in.xk, in.xv, &w, H, H, false, vmask, bias_heads).out,
      "key mask + bias");

  // Vector API: one query with a key mask.
  const std::unique_ptr<bool[]> m(new bool[Lk]);
  std::copy(mask, mask + Lk, m.get());
  const std::vector<T> q(in.Xq.data(), in.Xq.data() + E);
  orc::dmat xq1(1, E);
  for (std::size_t c = 0; c < E; ++c) xq1(0, c) = in.xq(0, c);
  const auto ref1 = orc::reference_multi_head(xq1, in.xk, in.xv, &w, H, H, false, vmask);
  EXPECT_LE(orc::max_mixed_error(layer.compute_with_mask(std::span<const T>(q), in.Xk, in.Xv,
                                                         std::span<const bool>(m.get(), Lk)),
                                 ref1.out.a),
            kTol<T>);
  const auto ref_all = orc::reference_multi_head(xq1, in.xk, in.xv, &w, H, H, false);
  EXPECT_LE(orc::max_mixed_error(layer.compute(std::span<const T>(q), in.Xk, in.Xv), ref_all.out.a),
            kTol<T>);
  // The vector API ignores the configured causal flag (one query over all keys).
  ra::multi_head_attention<T> causal_layer(
      ra::multi_head_config{.embed_dim = E, .num_heads = H, .causal = true, .seed = 17});
  causal_layer.set_weights(layer.weights());
  EXPECT_LE(orc::max_mixed_error(causal_layer.compute(std::span<const T>(q), in.Xk, in.Xv),
                                 ref_all.out.a),
            kTol<T>);
}

// A batched [B, L, E] forward equals B sequence forwards (bit for bit: same GEMM shapes per
// batch element), and both equal the oracle.
TYPED_TEST(MultiHeadTest, BatchedForwardEqualsPerSequence) {
  using T = TypeParam;
  const std::size_t B = 3, E = 12, H = 4, Hkv = 2, Lq = 5, Lk = 6, kdim = 7, vdim = 3;
  ra::multi_head_attention<T> layer(ra::multi_head_config{
      .embed_dim = E, .num_heads = H, .num_kv_heads = Hkv, .kdim = kdim, .vdim = vdim, .seed = 23});
  layer.set_weights(random_weights(layer, 24, true));
  const auto w = oracle_weights(layer);
  std::vector<seq_inputs<T>> seqs;
  std::vector<T> xq(B * Lq * E), xk(B * Lk * kdim), xv(B * Lk * vdim);
  const std::unique_ptr<bool[]> mask(new bool[B * Lk]);
  for (std::size_t b = 0; b < B; ++b) {
    seqs.push_back(make_inputs<T>(Lq, Lk, E, kdim, vdim, 25 + 10 * b));
    std::copy(seqs[b].Xq.data(), seqs[b].Xq.data() + Lq * E,
              xq.begin() + static_cast<std::ptrdiff_t>(b * Lq * E));
    std::copy(seqs[b].Xk.data(), seqs[b].Xk.data() + Lk * kdim,
              xk.begin() + static_cast<std::ptrdiff_t>(b * Lk * kdim));
    std::copy(seqs[b].Xv.data(), seqs[b].Xv.data() + Lk * vdim,
              xv.begin() + static_cast<std::ptrdiff_t>(b * Lk * vdim));
    for (std::size_t j = 0; j < Lk; ++j) mask[b * Lk + j] = (j + b) % 3 != 0;
  }
  std::vector<T> out(B * Lq * E, T(-1));
  std::vector<T> weights(B * H * Lq * Lk, T(-1));
  ra::multi_head_call<T> call;
  call.key_mask = ra::tensor_view<const bool, 2>(mask.get(), {B, Lk});
  call.causal = true;
  call.weights = ra::tensor_view<T, 4>(weights.data(), {B, H, Lq, Lk});
  layer.forward(ra::tensor_view<const T, 3>(xq.data(), {B, Lq, E}),
                ra::tensor_view<const T, 3>(xk.data(), {B, Lk, kdim}),
                ra::tensor_view<const T, 3>(xv.data(), {B, Lk, vdim}),
                ra::tensor_view<T, 3>(out.data(), {B, Lq, E}), call);
  for (std::size_t b = 0; b < B; ++b) {
    SCOPED_TRACE(::testing::Message() << "b=" << b);
    ra::multi_head_call<T> one;
    one.key_mask = ra::tensor_view<const bool, 2>(mask.get() + b * Lk, {1, Lk});
    one.causal = true;
    const auto single = layer.forward(seqs[b].Xq, seqs[b].Xk, seqs[b].Xv, one);
    const std::vector<T> batched(out.begin() + static_cast<std::ptrdiff_t>(b * Lq * E),
                                 out.begin() + static_cast<std::ptrdiff_t>((b + 1) * Lq * E));
    EXPECT_EQ(batched, std::vector<T>(single.data(), single.data() + Lq * E));
    std::vector<bool> vmask;
    for (std::size_t j = 0; j < Lk; ++j) vmask.push_back(mask[b * Lk + j]);
    const auto ref =
        orc::reference_multi_head(seqs[b].xq, seqs[b].xk, seqs[b].xv, &w, H, Hkv, true, vmask);
    EXPECT_LE(orc::max_mixed_error(batched, ref.out.a), kTol<T>);
    for (std::size_t h = 0; h < H; ++h) {
      const std::vector<T> wh(
          weights.begin() + static_cast<std::ptrdiff_t>((b * H + h) * Lq * Lk),
          weights.begin() + static_cast<std::ptrdiff_t>((b * H + h + 1) * Lq * Lk));
      EXPECT_LE(orc::max_mixed_error(wh, ref.weights[h].a), kTol<T>) << "h=" << h;
    }
  }
}

TYPED_TEST(MultiHeadTest, WeightsOutputShapeAndRowSums) {
  using T = TypeParam;
  const std::size_t E = 8, H = 2, Lq = 5, Lk = 3;
  ra::multi_head_attention<T> layer(
      ra::multi_head_config{.embed_dim = E, .num_heads = H, .seed = 31});
  const auto w = oracle_weights(layer);
  const auto in = make_inputs<T>(Lq, Lk, E, E, E, 32);
  for (const bool causal : {false, true}) {
    std::vector<T> weights(H * Lq * Lk, T(-1));
    ra::multi_head_call<T> call;
    call.causal = causal;
    call.weights = ra::tensor_view<T, 4>(weights.data(), {1, H, Lq, Lk});
    (void)layer.forward(in.Xq, in.Xk, in.Xv, call);
    const auto ref = orc::reference_multi_head(in.xq, in.xk, in.xv, &w, H, H, causal);
    for (std::size_t h = 0; h < H; ++h) {
      const std::vector<T> wh(weights.begin() + static_cast<std::ptrdiff_t>(h * Lq * Lk),
                              weights.begin() + static_cast<std::ptrdiff_t>((h + 1) * Lq * Lk));
      EXPECT_LE(orc::max_mixed_error(wh, ref.weights[h].a), kTol<T>);
      for (std::size_t i = 0; i < Lq; ++i) {
        double sum = 0;
        for (std::size_t j = 0; j < Lk; ++j) {
          const T x = wh[i * Lk + j];
          EXPECT_GE(x, T(0));
          sum += static_cast<double>(x);
        }
        // Causal with Lq > Lk: the first Lq − Lk queries see no key (all-zero row).
        const bool hidden = causal && i < Lq - Lk;
        EXPECT_NEAR(sum, hidden ? 0.0 : 1.0, kTol<T>) << "h=" << h << " i=" << i;
      }
    }
    // Weights of the wrong shape are rejected.
    std::vector<T> bad(H * Lq * (Lk + 1));
    call.weights = ra::tensor_view<T, 4>(bad.data(), {1, H, Lq, Lk + 1});
    EXPECT_THROW((void)layer.forward(in.Xq, in.Xk, in.Xv, call), ra::dimension_mismatch);
  }
}

TYPED_TEST(MultiHeadTest, SetWeightsThenOracleAndShapeErrors) {
  using T = TypeParam;
  ra::multi_head_attention<T> layer(ra::multi_head_config{
      .embed_dim = 8, .num_heads = 4, .num_kv_heads = 2, .kdim = 3, .vdim = 5, .seed = 41});
  const auto good = random_weights(layer, 42, true);
  layer.set_weights(good);
  EXPECT_EQ(layer.weights().w_q, good.w_q);
  EXPECT_EQ(layer.weights().b_o, good.b_o);
  const auto w = oracle_weights(layer);
  const auto in = make_inputs<T>(3, 4, 8, 3, 5, 43);
  expect_close<T>(layer.forward(in.Xq, in.Xk, in.Xv),
                  orc::reference_multi_head(in.xq, in.xk, in.xv, &w, 4, 2, false).out,
                  "caller weights");

  struct bad_case {
    const char* needle;
    void (*mutate)(ra::projection_weights<T>&);
  };
  const bad_case cases[] = {
      {"w_q.rows()", [](ra::projection_weights<T>& p) { p.w_q = ra::row_matrix<T>::Zero(7, 8); }},
      {"w_q.cols()", [](ra::projection_weights<T>& p) { p.w_q = ra::row_matrix<T>::Zero(8, 9); }},
      {"w_k.rows()", [](ra::projection_weights<T>& p) { p.w_k = ra::row_matrix<T>::Zero(8, 3); }},
      {"w_k.cols()", [](ra::projection_weights<T>& p) { p.w_k = ra::row_matrix<T>::Zero(4, 8); }},
      {"w_v.cols()", [](ra::projection_weights<T>& p) { p.w_v = ra::row_matrix<T>::Zero(4, 3); }},
      {"w_o.rows()", [](ra::projection_weights<T>& p) { p.w_o = ra::row_matrix<T>::Zero(4, 8); }},
      {"b_k.size()", [](ra::projection_weights<T>& p) { p.b_k.resize(8); }},
      {"b_o.size()", [](ra::projection_weights<T>& p) { p.b_o.resize(0); }},
  };
  for (const auto& c : cases) {
    auto p = good;
    c.mutate(p);
    EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { layer.set_weights(p); }),
                       c.needle);
    // A rejected set_weights leaves the layer unchanged.
    EXPECT_EQ(layer.weights().w_q, good.w_q);
    EXPECT_EQ(layer.weights().w_k, good.w_k);
  }
  // Without biases in the config, empty biases are accepted.
  ra::multi_head_attention<T> nob(
      ra::multi_head_config{.embed_dim = 8, .num_heads = 2, .bias = false});
  EXPECT_NO_THROW(nob.set_weights(random_weights(nob, 44, false)));
  // A split-only layer has no projections to set.
  auto split = ra::multi_head_attention<T>::split_only(8, 2);
  EXPECT_TRUE(split.weights().w_q.size() == 0);
  EXPECT_THROW(split.set_weights(good), ra::invalid_config);
}

TYPED_TEST(MultiHeadTest, SplitOnlyMatchesOracle) {
  using T = TypeParam;
  const auto layer = ra::multi_head_attention<T>::split_only(12, 3);
  EXPECT_EQ(layer.config().projections, ra::projection_mode::split_only);
  const auto in = make_inputs<T>(5, 7, 12, 12, 12, 51);
  for (const bool causal : {false, true}) {
    ra::multi_head_call<T> call;
    call.causal = causal;
    expect_close<T>(layer.forward(in.Xq, in.Xk, in.Xv, call),
                    orc::reference_multi_head(in.xq, in.xk, in.xv, nullptr, 3, 3, causal).out,
                    causal ? "split causal" : "split");
  }
  // Grouped-query split-only: keys/values hold H_kv·d_h = 8 columns.
  const ra::multi_head_attention<T> gqa(
      ra::multi_head_config{.embed_dim = 16,
                            .num_heads = 4,
                            .num_kv_heads = 2,
                            .kdim = 8,
                            .vdim = 8,
                            .projections = ra::projection_mode::split_only});
  const auto in2 = make_inputs<T>(3, 6, 16, 8, 8, 52);
  expect_close<T>(gqa.forward(in2.Xq, in2.Xk, in2.Xv),
                  orc::reference_multi_head(in2.xq, in2.xk, in2.xv, nullptr, 4, 2, false).out,
                  "split gqa");
  // The vector API and the seeds-shaped adapter.
  const std::vector<T> q(in.Xq.data(), in.Xq.data() + 12);
  orc::dmat xq1(1, 12);
  for (std::size_t c = 0; c < 12; ++c) xq1(0, c) = in.xq(0, c);
  const auto ref1 = orc::reference_multi_head(xq1, in.xk, in.xv, nullptr, 3, 3, false);
  EXPECT_LE(orc::max_mixed_error(layer.compute(std::span<const T>(q), in.Xk, in.Xv), ref1.out.a),
            kTol<T>);
  std::vector<std::vector<T>> kk, vv;
  for (std::size_t j = 0; j < 7; ++j) {
    const auto kr = in.xk.row(j), vr = in.xv.row(j);
    kk.emplace_back(kr.begin(), kr.end());
    vv.emplace_back(vr.begin(), vr.end());
  }
  EXPECT_LE(orc::max_mixed_error(layer.compute(q, kk, vv), ref1.out.a), kTol<T>);
  // split_only with kdim != H_kv·d_h is an invalid config.
  EXPECT_THROW((void)ra::multi_head_attention<T>(
                   ra::multi_head_config{.embed_dim = 16,
                                         .num_heads = 4,
                                         .kdim = 8,
                                         .projections = ra::projection_mode::split_only}),
               ra::invalid_config);
}

// split_only(8, 2), q = 1, keys 0.5·1 and 0.3·1, values 1·1 and 2·1. Per head d_h = 4, scores
// 4·0.5/√4 = 1 and 4·0.3/√4 = 0.6, so every output is softmax(1, 0.6)·(1, 2) = 1.40131...
TYPED_TEST(MultiHeadTest, SplitOnlyClosedForm) {
  using T = TypeParam;
  const double dh = 4.0;
  const double s0 = dh * 0.5 / std::sqrt(dh), s1 = dh * 0.3 / std::sqrt(dh);
  const double w0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  const double expected = w0 * 1.0 + (1.0 - w0) * 2.0;
  ASSERT_NEAR(expected, 1.40131, 1e-5);
  const auto layer = ra::multi_head_attention<T>::split_only(8, 2);
  const std::vector<T> q(8, T(1));
  const std::vector<std::vector<T>> keys{std::vector<T>(8, T(0.5)), std::vector<T>(8, T(0.3))};
  const std::vector<std::vector<T>> values{std::vector<T>(8, T(1)), std::vector<T>(8, T(2))};
  const auto out = layer.compute(q, keys, values);
  ASSERT_EQ(out.size(), 8u);
  // 0.3 and 0.5 are not exact in float: the scores carry ~1 ulp of input rounding.
  for (T x : out) EXPECT_NEAR(static_cast<double>(x), expected, kTol<T>);
}

TYPED_TEST(MultiHeadTest, InvalidConfigs) {
  using T = TypeParam;
  using L = ra::multi_head_attention<T>;
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>([] { (void)L(10, 3); }), "divisible");
  EXPECT_THROW((void)L::split_only(10, 4), ra::invalid_config);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_config>([] {
        (void)L(ra::multi_head_config{.embed_dim = 12, .num_heads = 4, .num_kv_heads = 3});
      }),
      "num_kv_heads");
  EXPECT_THROW((void)L(ra::multi_head_config{.embed_dim = 8, .num_heads = 2, .num_kv_heads = 4}),
               ra::invalid_config);
  EXPECT_THROW((void)L(0, 1), ra::invalid_config);
  EXPECT_THROW((void)L(8, 0), ra::invalid_config);
  EXPECT_THROW((void)L(ra::max_dimension + 1, 1), ra::input_too_large);
  // Every configuration error is a ruvector::attention::error.
  EXPECT_THROW((void)L(10, 3), ra::error);
}

TYPED_TEST(MultiHeadTest, SeedDeterminesWeights) {
  using T = TypeParam;
  const auto cfg = [](std::uint64_t seed) {
    return ra::multi_head_config{
        .embed_dim = 16, .num_heads = 4, .num_kv_heads = 2, .kdim = 5, .seed = seed};
  };
  const ra::multi_head_attention<T> a(cfg(99)), b(cfg(99)), c(cfg(100));
  EXPECT_EQ(a.weights().w_q, b.weights().w_q);
  EXPECT_EQ(a.weights().w_k, b.weights().w_k);
  EXPECT_EQ(a.weights().w_v, b.weights().w_v);
  EXPECT_EQ(a.weights().w_o, b.weights().w_o);
  EXPECT_NE(a.weights().w_q, c.weights().w_q);
  EXPECT_NE(a.weights().w_k, c.weights().w_k);
  EXPECT_NE(a.weights().w_o, c.weights().w_o);
  // The four projections are not copies of each other.
  EXPECT_NE(a.weights().w_q, a.weights().w_o);
  // Biases start at zero.
  EXPECT_TRUE(a.weights().b_q.isZero(0));
  EXPECT_TRUE(a.weights().b_o.isZero(0));
  // Same seed → same outputs.
  const auto in = make_inputs<T>(3, 4, 16, 5, 16, 101);
  EXPECT_EQ(a.forward(in.Xq, in.Xk, in.Xv), b.forward(in.Xq, in.Xk, in.Xv));
}

// Xavier-uniform: U(−a, a) with a = √(6 / (fan_in + fan_out)); variance a²/3.
TYPED_TEST(MultiHeadTest, XavierUniformBoundAndVariance) {
  using T = TypeParam;
  const std::size_t E = 256, kdim = 64;
  const ra::multi_head_attention<T> layer(ra::multi_head_config{
      .embed_dim = E, .num_heads = 8, .num_kv_heads = 2, .kdim = kdim, .seed = 5});
  const std::size_t KV = layer.kv_width();
  ASSERT_EQ(KV, 64u);
  struct mat_case {
    const char* name;
    const ra::row_matrix<T>* m;
    std::size_t fan_out, fan_in;
  };
  const auto& w = layer.weights();
  for (const mat_case c : {mat_case{"w_q", &w.w_q, E, E}, mat_case{"w_k", &w.w_k, KV, kdim},
                           mat_case{"w_v", &w.w_v, KV, E}, mat_case{"w_o", &w.w_o, E, E}}) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(static_cast<std::size_t>(c.m->rows()), c.fan_out);
    ASSERT_EQ(static_cast<std::size_t>(c.m->cols()), c.fan_in);
    const double a = std::sqrt(6.0 / static_cast<double>(c.fan_in + c.fan_out));
    // Draws lie in [T(−a), T(a)) in double and are then rounded to T, so |w| ≤ T(a).
    const double bound = static_cast<double>(static_cast<T>(a));
    double sum = 0, sum2 = 0, max_abs = 0;
    const auto n = static_cast<std::size_t>(c.m->size());
    for (std::size_t i = 0; i < n; ++i) {
      const double x = static_cast<double>(c.m->data()[i]);
      max_abs = std::max(max_abs, std::abs(x));
      sum += x;
      sum2 += x * x;
    }
    EXPECT_LE(max_abs, bound);
    EXPECT_GT(max_abs, 0.9 * a);  // the range is actually used
    const double mean = sum / static_cast<double>(n);
    const double var = sum2 / static_cast<double>(n) - mean * mean;
    // n ≥ 4096: the sample variance of U(−a, a) has relative std √(0.8/n) ≤ 1.4%.
    EXPECT_NEAR(var, a * a / 3.0, 0.1 * a * a / 3.0) << "n=" << n;
    EXPECT_NEAR(mean, 0.0, 4.0 * a / std::sqrt(3.0 * static_cast<double>(n)));
  }
}

TYPED_TEST(MultiHeadTest, NonFiniteInputNamesTheArgument) {
  using T = TypeParam;
  ra::multi_head_attention<T> layer(
      ra::multi_head_config{.embed_dim = 8, .num_heads = 2, .kdim = 3, .vdim = 5});
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "bad = " << bad);
    {
      auto in = make_inputs<T>(4, 6, 8, 3, 5, 61);
      in.Xq(2, 7) = bad;
      EXPECT_MESSAGE_HAS(
          thrown_message<ra::non_finite_input>([&] { (void)layer.forward(in.Xq, in.Xk, in.Xv); }),
          "x_q[0][2][7]");
    }
    {
      auto in = make_inputs<T>(4, 6, 8, 3, 5, 62);
      in.Xk(5, 0) = bad;
      EXPECT_MESSAGE_HAS(
          thrown_message<ra::non_finite_input>([&] { (void)layer.forward(in.Xq, in.Xk, in.Xv); }),
          "x_k[0][5][0]");
    }
    {
      auto in = make_inputs<T>(4, 6, 8, 3, 5, 63);
      in.Xv(1, 4) = bad;
      EXPECT_MESSAGE_HAS(
          thrown_message<ra::non_finite_input>([&] { (void)layer.forward(in.Xq, in.Xk, in.Xv); }),
          "x_v[0][1][4]");
    }
  }
  // check_finite = false: no validation (documented; values are not asserted).
  auto in = make_inputs<T>(4, 6, 8, 3, 5, 64);
  in.Xk(0, 0) = std::numeric_limits<T>::quiet_NaN();
  ra::multi_head_call<T> call;
  call.check_finite = false;
  EXPECT_NO_THROW((void)layer.forward(in.Xq, in.Xk, in.Xv, call));
  // Split-only layers reject non-finite input too.
  const auto split = ra::multi_head_attention<T>::split_only(8, 2);
  auto in2 = make_inputs<T>(2, 3, 8, 8, 8, 65);
  in2.Xv(1, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_THROW((void)split.forward(in2.Xq, in2.Xk, in2.Xv), ra::non_finite_input);
}

TYPED_TEST(MultiHeadTest, ShapeErrorsNameTheArgument) {
  using T = TypeParam;
  const ra::multi_head_attention<T> layer(
      ra::multi_head_config{.embed_dim = 8, .num_heads = 2, .kdim = 3, .vdim = 5});
  const auto in = make_inputs<T>(4, 6, 8, 3, 5, 71);
  const ra::row_matrix<T> xq_bad = ra::row_matrix<T>::Ones(4, 7);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)layer.forward(xq_bad, in.Xk, in.Xv); }),
      "x_q.extent(2)");
  const ra::row_matrix<T> xk_bad = ra::row_matrix<T>::Ones(6, 4);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)layer.forward(in.Xq, xk_bad, in.Xv); }),
      "x_k.extent(2)");
  const ra::row_matrix<T> xv_bad = ra::row_matrix<T>::Ones(5, 5);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)layer.forward(in.Xq, in.Xk, xv_bad); }),
      "x_v.extent(1)");
  const std::vector<T> q7(7, T(1));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)layer.compute(std::span<const T>(q7), in.Xk, in.Xv); }),
                     "query.size()");
  const std::vector<T> q8(8, T(1));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)layer.compute(std::span<const T>(q8), xk_bad, in.Xv); }),
                     "keys.cols()");
  const ra::row_matrix<T> no_keys(0, 3), no_values(0, 5);
  EXPECT_THROW((void)layer.compute(std::span<const T>(q8), no_keys, no_values),
               ra::invalid_argument);
  // A key mask of the wrong shape.
  const bool mask[5] = {true, true, true, true, true};
  ra::multi_head_call<T> call;
  call.key_mask = ra::tensor_view<const bool, 2>(mask, {1, 5});
  EXPECT_THROW((void)layer.forward(in.Xq, in.Xk, in.Xv, call), ra::dimension_mismatch);
}

}  // namespace
