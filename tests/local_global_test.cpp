// Local-global attention (sparse/local_global.hpp, Longformer) for float and double against the
// independent double oracle (support/oracle.hpp) run with the equivalent dense mask, written here
// from the definition: query i sees key j iff |i − j| ≤ w, or j ∈ G, or i ∈ G (and j ≤ i when
// causal), where G = {0 .. g−1} ∪ global_tokens.
//
// Tolerances (kTol<T>, as max_i |got − ref| / max(|ref|, 1)): 1e-5 for float, 1e-12 for double —
// the same argument as the dense SDPA tests: per visible key the work is one length-d dot product
// (error ~√d·2^-24 ≲ 1e-6 for d ≤ 32), a max-subtracted softmax over ≤ n ≤ 130 entries and a convex
// combination of O(1) value rows, so the observed error stays below ~1e-6 in float; 1e-5 leaves
// headroom while a missing or extra key changes outputs by ≥ 1e-2.
#include "ruvector/attention/sparse/local_global.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::row_of;
using ruvector_test::thrown_message;
using ruvector_test::to_eigen;
using ruvector_test::to_vec;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

constexpr double kInf = std::numeric_limits<double>::infinity();

static_assert(ra::attention_mechanism<ra::local_global_attention<float>>);
static_assert(ra::attention_mechanism<ra::local_global_attention<double>>);
static_assert(ra::masked_attention_mechanism<ra::local_global_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::local_global_attention<double>>);

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// The Longformer rule from the definition, for a sequence of n tokens (self-attention).
struct lg_rule {
  std::size_t w = 0, g = 0;
  std::vector<std::size_t> extra{};
  bool causal = false;

  bool global(std::size_t t, std::size_t n) const {
    return t < std::min(g, n) || std::find(extra.begin(), extra.end(), t) != extra.end();
  }
  bool allowed(std::size_t i, std::size_t j, std::size_t n) const {
    if (causal && j > i) return false;
    const std::size_t dist = i > j ? i - j : j - i;
    return dist <= w || global(j, n) || global(i, n);
  }
  orc::dmat bias(std::size_t n) const {
    orc::dmat b(n, n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        if (!allowed(i, j, n)) b(i, j) = -kInf;
    return b;
  }
  ra::local_global_config config(std::size_t dim) const {
    return ra::local_global_config{
        .dim = dim, .window = w, .num_global = g, .global_tokens = extra, .causal = causal};
  }
};

const lg_rule kRules[] = {
    {.w = 0},
    {.w = 2},
    {.w = 3, .g = 1},
    {.w = 1, .g = 3},
    {.w = 2, .g = 0, .extra = {9, 4}},
    {.w = 4, .g = 2, .extra = {20}},
    {.w = 2, .g = 1, .causal = true},
    {.w = 3, .g = 2, .extra = {12}, .causal = true},
    {.w = 1000, .g = 0},  // window wider than the sequence: dense
};

// ================================================================================================
// Pattern
// ================================================================================================

TEST(LocalGlobalPattern, MatchesTheDefinition) {
  for (const auto& rule : kRules)
    for (const std::size_t n : {21u, 40u, 64u}) {
      SCOPED_TRACE(::testing::Message()
                   << "n=" << n << " w=" << rule.w << " g=" << rule.g << " causal=" << rule.causal);
      const ra::local_global_attention<float> lg(rule.config(8));
      const auto p = lg.pattern(n);
      EXPECT_NO_THROW(p.validate());
      std::size_t count = 0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          EXPECT_EQ(p.contains(i, j), rule.allowed(i, j, n)) << i << "," << j;
          count += rule.allowed(i, j, n) ? 1 : 0;
        }
      EXPECT_EQ(p.nnz(), count);
      EXPECT_DOUBLE_EQ(p.density(), static_cast<double>(count) / (n * n));
      // keys_for(position) is the same row, computed without the pattern.
      for (std::size_t i = 0; i < n; ++i) {
        const auto keys = lg.keys_for(i, n);
        const auto row = p.row(i);
        EXPECT_TRUE(std::equal(keys.begin(), keys.end(), row.begin(), row.end())) << "row " << i;
      }
    }
}

// Cost: nnz = O(n·(w + g)), far below n² for long sequences.
TEST(LocalGlobalPattern, SizeIsLinearInN) {
  const ra::local_global_attention<float> lg(16, 8, 2);
  for (const std::size_t n : {1000u, 4000u}) {
    const auto p = lg.pattern(n);
    // Each non-global row: 2w+1 window keys (fewer at the edges) + 2 globals; 2 full global rows.
    EXPECT_LE(p.nnz(), n * (2 * 8 + 1 + 2) + 2 * n);
    EXPECT_GE(p.nnz(), (n - 2) * (2 * 8 + 1));
  }
  EXPECT_EQ(lg.global_positions(1), (std::vector<std::size_t>{0}));  // g clamped to n
}

// ================================================================================================
// Whole sequence and single query vs the oracle
// ================================================================================================

template <class T>
class LocalGlobal : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LocalGlobal, Scalars);

TYPED_TEST(LocalGlobal, ForwardMatchesOracle) {
  using T = TypeParam;
  for (const auto& rule : kRules)
    for (const std::size_t n : {1u, 2u, 21u, 64u, 130u}) {
      if (!rule.extra.empty() && *std::max_element(rule.extra.begin(), rule.extra.end()) >= n)
        continue;
      SCOPED_TRACE(::testing::Message()
                   << "n=" << n << " w=" << rule.w << " g=" << rule.g << " causal=" << rule.causal);
      const std::size_t d = 16, dv = 12;
      const auto q = orc::rounded<T>(orc::random_matrix(n, d, 1 + n));
      const auto k = orc::rounded<T>(orc::random_matrix(n, d, 2 + n));
      const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 3 + n));
      const auto ref =
          orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)), false, {}, rule.bias(n));
      const ra::local_global_attention<T> lg(rule.config(d));
      ra::row_matrix<T> out(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
      std::vector<T> lse(n);
      lg.forward(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v), out, lse);
      const std::vector<double> got(out.data(), out.data() + n * dv);
      EXPECT_LE(orc::max_mixed_error(got, ref.out.a), kTol<T>);
      EXPECT_LE(orc::max_mixed_error(lse, ref.lse), kTol<T>);
      const ra::row_matrix<T> out2 = lg.forward(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v));
      EXPECT_EQ(out2, out);
    }
}

// compute_at(position, ...) at the edges (0, n − 1), the middle, next to and on global tokens:
// the oracle row, and (to rounding) the same row of the whole-sequence forward.
TYPED_TEST(LocalGlobal, ComputeAtMatchesOracleAtEveryKindOfPosition) {
  using T = TypeParam;
  const std::size_t n = 50, d = 10, dv = 7;
  const auto q = orc::rounded<T>(orc::random_matrix(n, d, 11));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 12));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 13));
  const auto K = to_eigen<T>(k), V = to_eigen<T>(v);
  for (const auto& rule : kRules) {
    SCOPED_TRACE(::testing::Message()
                 << "w=" << rule.w << " g=" << rule.g << " causal=" << rule.causal);
    const auto ref =
        orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)), false, {}, rule.bias(n));
    const ra::local_global_attention<T> lg(rule.config(d));
    const ra::row_matrix<T> full = lg.forward(to_eigen<T>(q), K, V);
    for (const std::size_t p : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{4},
                                std::size_t{9}, n / 2, n - 2, n - 1}) {
      SCOPED_TRACE(::testing::Message() << "position " << p);
      const auto qp = to_vec<T>(q.row(p));
      const auto out = lg.compute_at(p, std::span<const T>(qp), K, V);
      EXPECT_LE(orc::max_mixed_error(out, ref.out.row(p)), kTol<T>);
      // Same maths as the whole-sequence row, but a different code path: with -O3 -march=native
      // GCC contracts the two paths into FMAs differently, so agree to rounding, not bitwise.
      EXPECT_LE(orc::max_mixed_error(out, row_of(full, p)), kTol<T> / 10);
      std::vector<T> into(dv);
      const T lse = lg.compute_at_into(p, std::span<const T>(qp), K, V, into);
      EXPECT_EQ(into, out);
      EXPECT_NEAR(static_cast<double>(lse), ref.lse[p],
                  kTol<T> * std::max(1.0, std::abs(ref.lse[p])));
    }
    // last_position means n − 1.
    const auto ql = to_vec<T>(q.row(n - 1));
    EXPECT_EQ(lg.compute_at(ra::local_global_config::last_position, std::span<const T>(ql), K, V),
              lg.compute_at(n - 1, std::span<const T>(ql), K, V));
  }
}

// Global tokens attend to everything (their row equals unmasked/causal attention) and every token
// attends to them (their column is full).
TYPED_TEST(LocalGlobal, GlobalTokensAttendToEverything) {
  using T = TypeParam;
  const std::size_t n = 60, d = 8, dv = 8;
  const auto q = orc::rounded<T>(orc::random_matrix(n, d, 21));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 22));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 23));
  for (const bool causal : {false, true}) {
    const ra::local_global_attention<T> lg(
        {.dim = d, .window = 1, .num_global = 2, .global_tokens = {33}, .causal = causal});
    const auto dense = orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)), causal);
    const ra::row_matrix<T> out = lg.forward(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v));
    for (const std::size_t gpos : {0u, 1u, 33u}) {
      EXPECT_LE(orc::max_mixed_error(row_of(out, gpos), dense.out.row(gpos)), kTol<T>) << gpos;
      const auto qg = to_vec<T>(q.row(gpos));
      EXPECT_LE(orc::max_mixed_error(
                    lg.compute_at(gpos, std::span<const T>(qg), to_eigen<T>(k), to_eigen<T>(v)),
                    dense.out.row(gpos)),
                kTol<T>);
      const auto p = lg.pattern(n);
      EXPECT_EQ(p.row_size(gpos), causal ? gpos + 1 : n);
      for (std::size_t i = causal ? gpos : 0; i < n; ++i) EXPECT_TRUE(p.contains(i, gpos)) << i;
    }
  }
}

// compute() needs a position: without one it throws (nothing is assumed — the Rust original
// silently used n/2); with one it is compute_at. compute_with_mask likewise, against the oracle.
TYPED_TEST(LocalGlobal, ComputeRequiresAPositionAndHonoursMasks) {
  using T = TypeParam;
  const std::size_t n = 31, d = 6, dv = 5;
  const auto q = orc::rounded<T>(orc::random_matrix(1, d, 31));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 32));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 33));
  const auto qv = to_vec<T>(q.a);
  const auto K = to_eigen<T>(k), V = to_eigen<T>(v);

  const ra::local_global_attention<T> unset(d, 2, 1);
  const auto msg = thrown_message<ra::invalid_config>(
      [&] { (void)unset.compute(std::span<const T>(qv), K, V); });
  EXPECT_MESSAGE_HAS(msg, "position");
  EXPECT_MESSAGE_HAS(msg, "compute_at");
  const std::unique_ptr<bool[]> all(new bool[n]);
  std::fill(all.get(), all.get() + n, true);
  EXPECT_THROW((void)unset.compute_with_mask(std::span<const T>(qv), K, V,
                                             std::span<const bool>(all.get(), n)),
               ra::invalid_config);

  const lg_rule rule{.w = 2, .g = 1};
  std::vector<bool> mask(n, true);
  mask[0] = false;   // hide the global token
  mask[14] = false;  // and one window key
  const std::unique_ptr<bool[]> m(new bool[n]);
  std::copy(mask.begin(), mask.end(), m.get());
  for (const std::size_t p : {std::size_t{0}, std::size_t{15}, n - 1}) {
    SCOPED_TRACE(::testing::Message() << "position " << p);
    auto cfg = rule.config(d);
    cfg.position = p;
    const ra::local_global_attention<T> lg(cfg);
    // The oracle: one query at position p = the last of p + 1 queries would shift alignment, so
    // use the full sequence with q in row p and read row p.
    orc::dmat qs(n, d);
    for (std::size_t c = 0; c < d; ++c) qs(p, c) = q(0, c);
    const auto ref =
        orc::reference_attention(qs, k, v, 1.0 / std::sqrt(double(d)), false, {}, rule.bias(n));
    const auto ref_m =
        orc::reference_attention(qs, k, v, 1.0 / std::sqrt(double(d)), false, mask, rule.bias(n));
    EXPECT_LE(orc::max_mixed_error(lg.compute(std::span<const T>(qv), K, V), ref.out.row(p)),
              kTol<T>);
    EXPECT_LE(orc::max_mixed_error(lg.compute_with_mask(std::span<const T>(qv), K, V,
                                                        std::span<const bool>(m.get(), n)),
                                   ref_m.out.row(p)),
              kTol<T>);
    // The seeds-shaped adapters.
    std::vector<std::vector<T>> kk(n), vv(n);
    for (std::size_t j = 0; j < n; ++j) {
      kk[j] = to_vec<T>(k.row(j));
      vv[j] = to_vec<T>(v.row(j));
    }
    EXPECT_EQ(lg.compute(qv, kk, vv), lg.compute(std::span<const T>(qv), K, V));
    EXPECT_EQ(lg.compute_at(p, qv, kk, vv), lg.compute(std::span<const T>(qv), K, V));
  }
  // A position set to last_position follows the sequence length (decoding).
  auto cfg = rule.config(d);
  cfg.position = ra::local_global_config::last_position;
  cfg.causal = true;
  const ra::local_global_attention<T> decode(cfg);
  EXPECT_EQ(decode.compute(std::span<const T>(qv), K, V),
            decode.compute_at(n - 1, std::span<const T>(qv), K, V));
  // Every key hidden: zeros, not NaN.
  const std::unique_ptr<bool[]> none(new bool[n]());
  auto cfg0 = rule.config(d);
  cfg0.position = 5;
  const ra::local_global_attention<T> lg0(cfg0);
  for (const T x :
       lg0.compute_with_mask(std::span<const T>(qv), K, V, std::span<const bool>(none.get(), n)))
    EXPECT_EQ(x, T(0));
}

// The Rust original's LocalGlobalAttention::new(dim, w, g) sees keys [n/2 − ⌊w/2⌋, n/2 + ⌊w/2⌋]
// plus the first g: with window = ⌊w/2⌋ and position = n/2 this reproduces it (explicitly).
TYPED_TEST(LocalGlobal, ReproducesTheRustOriginalWhenAskedExplicitly) {
  using T = TypeParam;
  const std::size_t n = 40, d = 8, dv = 4, rust_w = 6, g = 2;
  const auto q = orc::rounded<T>(orc::random_matrix(1, d, 41));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 42));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 43));
  std::vector<bool> visible(n, false);
  for (std::size_t j = n / 2 - rust_w / 2; j <= n / 2 + rust_w / 2; ++j) visible[j] = true;
  for (std::size_t j = 0; j < g; ++j) visible[j] = true;
  const auto ref = orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)), false, visible);
  const ra::local_global_attention<T> lg(
      {.dim = d, .window = rust_w / 2, .num_global = g, .position = n / 2});
  const auto qv = to_vec<T>(q.a);
  EXPECT_LE(orc::max_mixed_error(lg.compute(std::span<const T>(qv), to_eigen<T>(k), to_eigen<T>(v)),
                                 ref.out.a),
            kTol<T>);
}

// Cost: the single-query path reads only its window and the global keys. Every other key/value
// is NaN; the result is still finite and equal to the oracle on clean data (check_finite on).
TYPED_TEST(LocalGlobal, ComputeAtReadsOnlyWindowAndGlobals) {
  using T = TypeParam;
  const std::size_t n = 200, d = 16, dv = 8, w = 3, p = 120;
  const lg_rule rule{.w = w, .g = 2, .extra = {150}};
  const auto q = orc::rounded<T>(orc::random_matrix(n, d, 51));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 52));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 53));
  const auto ref =
      orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)), false, {}, rule.bias(n));
  auto K = to_eigen<T>(k), V = to_eigen<T>(v);
  for (std::size_t j = 0; j < n; ++j) {
    if (!rule.allowed(p, j, n)) {
      K.row(static_cast<Eigen::Index>(j)).setConstant(std::numeric_limits<T>::quiet_NaN());
      V.row(static_cast<Eigen::Index>(j)).setConstant(std::numeric_limits<T>::quiet_NaN());
    }
  }
  const ra::local_global_attention<T> lg(rule.config(d));
  const auto qp = to_vec<T>(q.row(p));
  const auto out = lg.compute_at(p, std::span<const T>(qp), K, V);
  for (const T x : out) EXPECT_TRUE(std::isfinite(x));
  EXPECT_LE(orc::max_mixed_error(out, ref.out.row(p)), kTol<T>);
  // A NaN inside the window is reported by name.
  K(p + 2, 5) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)lg.compute_at(p, std::span<const T>(qp), K, V); }),
                     "keys[122][5]");
  auto qbad = qp;
  qbad[1] = std::numeric_limits<T>::infinity();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)lg.compute_at(p, std::span<const T>(qbad), K, V); }),
                     "query[1]");
}

// Lq < Lk (the last Lq positions, e.g. a chunk of new tokens) gives the last rows of the full
// forward; the tensor API (GQA, per-batch key mask, lse) matches the 2-D forward per head.
TYPED_TEST(LocalGlobal, ChunkedAndTensorForward) {
  using T = TypeParam;
  const std::size_t n = 45, d = 8, dv = 6;
  const lg_rule rule{.w = 3, .g = 1, .extra = {20}, .causal = true};
  const ra::local_global_attention<T> lg(rule.config(d));
  const auto q = to_eigen<T>(orc::random_matrix(n, d, 61));
  const auto k = to_eigen<T>(orc::random_matrix(n, d, 62));
  const auto v = to_eigen<T>(orc::random_matrix(n, dv, 63));
  const ra::row_matrix<T> full = lg.forward(q, k, v);
  const std::size_t lq = 7;
  const ra::row_matrix<T> part = lg.forward(q.bottomRows(static_cast<Eigen::Index>(lq)), k, v);
  EXPECT_EQ(part, full.bottomRows(static_cast<Eigen::Index>(lq)));
  EXPECT_THROW((void)lg.forward(k, q.topRows(10), v.topRows(10)), ra::dimension_mismatch);

  const std::size_t B = 2, H = 2, Hkv = 1;
  std::vector<T> qb(B * H * n * d), kb(B * Hkv * n * d), vb(B * Hkv * n * dv);
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t h = 0; h < H; ++h) {
      const auto m = to_eigen<T>(orc::random_matrix(n, d, 70 + b * H + h));
      std::copy(m.data(), m.data() + n * d,
                qb.begin() + static_cast<std::ptrdiff_t>((b * H + h) * n * d));
    }
    const auto km = to_eigen<T>(orc::random_matrix(n, d, 80 + b));
    const auto vm = to_eigen<T>(orc::random_matrix(n, dv, 90 + b));
    std::copy(km.data(), km.data() + n * d, kb.begin() + static_cast<std::ptrdiff_t>(b * n * d));
    std::copy(vm.data(), vm.data() + n * dv, vb.begin() + static_cast<std::ptrdiff_t>(b * n * dv));
  }
  const std::unique_ptr<bool[]> mask(new bool[B * n]);
  for (std::size_t t = 0; t < B * n; ++t) mask[t] = t % 11 != 5;
  std::vector<T> ob(B * H * n * dv), lb(B * H * n);
  lg.forward(ra::make_tensor_view<const T>(qb.data(), B, H, n, d),
             ra::make_tensor_view<const T>(kb.data(), B, Hkv, n, d),
             ra::make_tensor_view<const T>(vb.data(), B, Hkv, n, dv),
             ra::make_tensor_view(ob.data(), B, H, n, dv),
             ra::tensor_view<T, 3>(lb.data(), {B, H, n}), std::span<const bool>(mask.get(), B * n));
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h) {
      const auto Q = ra::matrix_view(qb.data() + (b * H + h) * n * d, n, d);
      const auto Kh = ra::matrix_view(kb.data() + b * n * d, n, d);
      const auto Vh = ra::matrix_view(vb.data() + b * n * dv, n, dv);
      ra::row_matrix<T> o(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
      std::vector<T> l(n);
      lg.forward(Q, Kh, Vh, o, l, std::span<const bool>(mask.get() + b * n, n));
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t c = 0; c < dv; ++c)
          EXPECT_EQ(ob[((b * H + h) * n + i) * dv + c],
                    o(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)));
        EXPECT_EQ(lb[(b * H + h) * n + i], l[i]);
      }
    }
}

TYPED_TEST(LocalGlobal, ConfigAndArgumentErrors) {
  using T = TypeParam;
  EXPECT_THROW(ra::local_global_attention<T>(0, 2, 1), ra::invalid_config);
  EXPECT_THROW(ra::local_global_attention<T>({.dim = 4, .scale = std::nan("")}),
               ra::invalid_config);
  const ra::local_global_attention<T> lg({.dim = 4, .window = 1, .global_tokens = {7, 2, 7}});
  EXPECT_EQ(lg.config().global_tokens, (std::vector<std::size_t>{2, 7}));  // sorted, unique
  EXPECT_EQ(lg.scale(), T(1) / std::sqrt(T(4)));
  EXPECT_EQ(ra::local_global_attention<T>({.dim = 4, .scale = 0.25}).scale(), T(0.25));
  const auto K = to_eigen<T>(orc::random_matrix(6, 4, 1));
  const auto V = to_eigen<T>(orc::random_matrix(6, 3, 2));
  const std::vector<T> q(4, T(0.5));
  // A global token beyond the sequence is named.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)lg.compute_at(0, std::span<const T>(q), K, V); }),
                     "global_tokens");
  const ra::local_global_attention<T> ok(4, 1, 1);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ok.compute_at(6, std::span<const T>(q), K, V); }),
                     "position = 6");
  const std::vector<T> q3(3, T(0));
  EXPECT_THROW((void)ok.compute_at(0, std::span<const T>(q3), K, V), ra::dimension_mismatch);
  EXPECT_THROW((void)ok.compute_at(0, std::span<const T>(q), K, V.topRows(5)),
               ra::dimension_mismatch);
  const ra::row_matrix<T> empty(0, 4);
  EXPECT_THROW((void)ok.compute_at(0, std::span<const T>(q), empty, ra::row_matrix<T>(0, 3)),
               ra::invalid_argument);
  const bool short_mask[2] = {true, true};
  EXPECT_THROW(
      (void)ok.compute_at(0, std::span<const T>(q), K, V, std::span<const bool>(short_mask, 2)),
      ra::dimension_mismatch);
  // A single token (n = 1) is its own window.
  const auto K1 = K.topRows(1), V1 = V.topRows(1);
  const auto one = ok.compute_at(0, std::span<const T>(q), K1, V1);
  for (std::size_t c = 0; c < 3; ++c) EXPECT_EQ(one[c], V(0, static_cast<Eigen::Index>(c)));
}

}  // namespace
