// Flash attention (sparse/flash.hpp), exact partial merges and ring attention
// (sparse/partial.hpp), for float and double, against the independent double-precision oracle in
// support/oracle.hpp (dense attention with the equivalent explicit mask).
//
// Tolerances, as max |got − ref| / max(|ref|, 1): float 1e-5, double 1e-12 — the same budget and
// argument as tests/scaled_dot_product_test.cpp (each score carries ~√d·2^-24 of rounding and the
// output is a convex combination of O(1) values). The online rescaling adds one rounding per key
// block and row (≤ Lk/B_k factors of 1 ± 2^-24), far inside the budget for the sizes used here.
#include "ruvector/attention/sparse/flash.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/sparse/partial.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::to_eigen;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

static_assert(ra::masked_attention_mechanism<ra::flash_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::flash_attention<double>>);

template <class T>
struct tensor4 {
  std::size_t e[4];
  std::vector<T> buf;
  tensor4(std::size_t a, std::size_t b, std::size_t c, std::size_t d, T fill = T(0))
      : e{a, b, c, d}, buf(a * b * c * d, fill) {}
  ra::tensor_view<T, 4> view() { return ra::make_tensor_view(buf.data(), e[0], e[1], e[2], e[3]); }
  ra::tensor_view<const T, 4> cview() const {
    return ra::make_tensor_view<const T>(buf.data(), e[0], e[1], e[2], e[3]);
  }
  // The (i, j) slice as an oracle matrix.
  orc::dmat slice(std::size_t i, std::size_t j) const {
    orc::dmat m(e[2], e[3]);
    for (std::size_t r = 0; r < e[2]; ++r)
      for (std::size_t c = 0; c < e[3]; ++c) m(r, c) = buf[((i * e[1] + j) * e[2] + r) * e[3] + c];
    return m;
  }
};

template <class T>
tensor4<T> random_tensor(std::size_t a, std::size_t b, std::size_t c, std::size_t d,
                         std::uint64_t seed, double stddev = 1.0) {
  tensor4<T> t(a, b, c, d);
  const auto v = orc::random_vector(t.buf.size(), seed, stddev);
  for (std::size_t i = 0; i < v.size(); ++i) t.buf[i] = static_cast<T>(v[i]);
  return t;
}

template <class T>
double row_error(const T* got, const std::vector<double>& ref) {
  double e = 0;
  for (std::size_t c = 0; c < ref.size(); ++c)
    e = std::max(e,
                 std::abs(static_cast<double>(got[c]) - ref[c]) / std::max(1.0, std::abs(ref[c])));
  return e;
}

// Checks lse against the oracle: both −inf, or within tolerance.
template <class T>
void expect_lse(T got, double ref, const std::string& what) {
  if (ref == kNegInf) {
    EXPECT_EQ(static_cast<double>(got), kNegInf) << what;
  } else {
    EXPECT_LE(std::abs(static_cast<double>(got) - ref) / std::max(1.0, std::abs(ref)), kTol<T>)
        << what;
  }
}

struct flash_case {
  std::size_t B, H, Hkv, Lq, Lk, d, dv;
  bool causal;
  bool key_mask;  // random key mask with one fully masked batch when B > 1
  bool bias;      // broadcast [1, H, Lq, Lk] bias with some −inf entries
  ra::flash_block_sizes blocks;
};

template <class T>
void run_flash_case(const flash_case& c, std::uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "B=" << c.B << " H=" << c.H << " Hkv=" << c.Hkv << " Lq=" << c.Lq
               << " Lk=" << c.Lk << " d=" << c.d << " dv=" << c.dv << " causal=" << c.causal
               << " mask=" << c.key_mask << " bias=" << c.bias << " blocks=" << c.blocks.query
               << "x" << c.blocks.key);
  const auto q = random_tensor<T>(c.B, c.H, c.Lq, c.d, seed);
  const auto k = random_tensor<T>(c.B, c.Hkv, c.Lk, c.d, seed + 1);
  const auto v = random_tensor<T>(c.B, c.Hkv, c.Lk, c.dv, seed + 2);
  std::unique_ptr<bool[]> mask(new bool[c.B * c.Lk]);
  std::mt19937_64 gen(seed + 3);
  for (std::size_t i = 0; i < c.B * c.Lk; ++i) mask[i] = gen() % 4 != 0;
  if (c.B > 1)
    for (std::size_t j = 0; j < c.Lk; ++j) mask[c.Lk + j] = false;  // batch 1: nothing visible
  tensor4<T> bias(1, c.H, c.Lq, c.Lk);
  for (std::size_t i = 0; i < bias.buf.size(); ++i)
    bias.buf[i] = gen() % 7 == 0 ? -std::numeric_limits<T>::infinity()
                                 : static_cast<T>(static_cast<double>(gen() % 1000) / 500.0 - 1.0);

  ra::flash_options<T> opt;
  opt.mask.causal = c.causal;
  if (c.key_mask) opt.mask.key_mask = ra::tensor_view<const bool, 2>(mask.get(), {c.B, c.Lk});
  if (c.bias) opt.mask.bias = bias.cview();
  opt.blocks = c.blocks;
  tensor4<T> out(c.B, c.H, c.Lq, c.dv, T(-7));
  std::vector<T> lse(c.B * c.H * c.Lq, T(-7));
  ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), out.view(), opt,
                    ra::tensor_view<T, 3>(lse.data(), {c.B, c.H, c.Lq}));

  const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  for (std::size_t b = 0; b < c.B; ++b) {
    std::vector<bool> km;
    if (c.key_mask)
      for (std::size_t j = 0; j < c.Lk; ++j) km.push_back(mask[b * c.Lk + j]);
    for (std::size_t h = 0; h < c.H; ++h) {
      const std::size_t hk = h / (c.H / c.Hkv);
      const auto ref =
          orc::reference_attention(q.slice(b, h), k.slice(b, hk), v.slice(b, hk), scale, c.causal,
                                   km, c.bias ? bias.slice(0, h) : orc::dmat{});
      for (std::size_t i = 0; i < c.Lq; ++i) {
        const T* got = &out.buf[((b * c.H + h) * c.Lq + i) * c.dv];
        EXPECT_LE(row_error(got, ref.out.row(i)), kTol<T>) << "b=" << b << " h=" << h << " i=" << i;
        expect_lse(
            lse[(b * c.H + h) * c.Lq + i], ref.lse[i],
            "lse b=" + std::to_string(b) + " h=" + std::to_string(h) + " i=" + std::to_string(i));
      }
    }
  }
}

template <class T>
class FlashTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FlashTest, Scalars);

TYPED_TEST(FlashTest, MatchesOracleOverShapesMasksAndBlockSizes) {
  using T = TypeParam;
  const flash_case cases[] = {
      {1, 1, 1, 1, 1, 8, 8, false, false, false, {}},           // L = 1
      {1, 1, 1, 1, 1, 8, 8, true, false, false, {}},            // L = 1, causal
      {2, 2, 2, 33, 33, 16, 16, false, false, false, {8, 8}},   // L not a multiple of the block
      {2, 4, 2, 40, 57, 32, 24, true, false, false, {16, 16}},  // GQA, Lq < Lk, causal
      {1, 3, 1, 70, 50, 20, 12, true, false, false, {16, 8}},   // MQA, Lq > Lk: top rows empty
      {3, 2, 1, 45, 45, 64, 64, true, true, false, {32, 16}},   // causal + key mask (batch 1 empty)
      {2, 2, 2, 19, 77, 24, 8, false, true, true, {4, 32}},     // mask + bias with −inf
      {1, 2, 2, 64, 64, 64, 64, true, false, true, {64, 64}},   // causal + bias, one tile
      {1, 1, 1, 9, 130, 7, 5, false, false, false, {1, 1}},     // 1×1 tiles
      {1, 2, 1, 100, 300, 64, 64, false, false, false, {}},     // default blocks
      {1, 1, 1, 130, 130, 128, 32, true, false, false, {}},     // d = 128 default blocks
      {1, 1, 1, 20, 40, 200, 16, false, false, false, {}},      // d = 200 default blocks
  };
  std::uint64_t seed = 100;
  for (const auto& c : cases) run_flash_case<T>(c, seed += 10);
}

TYPED_TEST(FlashTest, RandomShapesProperty) {
  using T = TypeParam;
  std::mt19937_64 gen(7);
  for (int trial = 0; trial < 25; ++trial) {
    const std::size_t hkv = 1 + gen() % 2;
    flash_case c{1 + gen() % 2,
                 hkv * (1 + gen() % 2),
                 hkv,
                 1 + gen() % 90,
                 1 + gen() % 90,
                 1 + gen() % 40,
                 1 + gen() % 20,
                 gen() % 2 == 0,
                 gen() % 3 == 0,
                 gen() % 3 == 0,
                 {1 + gen() % 40, 1 + gen() % 40}};
    run_flash_case<T>(c, 1000 + static_cast<std::uint64_t>(trial) * 17);
  }
}

TYPED_TEST(FlashTest, HugeLogitsStayFinite) {
  using T = TypeParam;
  // q·k/√d of magnitude ~1e4: the oracle is (nearly) one-hot; flash must agree, not overflow.
  flash_case c{1, 1, 1, 12, 40, 16, 8, false, false, false, {4, 8}};
  const auto q = random_tensor<T>(1, 1, 12, 16, 5, 40.0);
  const auto k = random_tensor<T>(1, 1, 40, 16, 6, 40.0);
  const auto v = random_tensor<T>(1, 1, 40, 8, 7);
  tensor4<T> out(1, 1, 12, 8);
  ra::flash_options<T> opt;
  opt.blocks = c.blocks;
  ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), out.view(), opt);
  const auto ref = orc::reference_attention(q.slice(0, 0), k.slice(0, 0), v.slice(0, 0), 0.25);
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(out.buf[i * 8])));
    // Scores of ~1e4 (|q|,|k| ~ 160) carry up to d·2^-24·Σ|q_c k_c|/√d ≈ 6e-3 absolute rounding
    // in float, which moves near-tied weights by up to that relative amount; double: ~1e-12.
    EXPECT_LE(row_error(&out.buf[i * 8], ref.out.row(i)), (std::is_same_v<T, float> ? 2e-2 : 1e-9));
  }
}

TYPED_TEST(FlashTest, EqualsSdpaOnTheSameInputs) {
  using T = TypeParam;
  const auto q = random_tensor<T>(2, 4, 77, 32, 11);
  const auto k = random_tensor<T>(2, 2, 91, 32, 12);
  const auto v = random_tensor<T>(2, 2, 91, 16, 13);
  tensor4<T> a(2, 4, 77, 16), b(2, 4, 77, 16);
  ra::sdpa_options<T> so;
  so.mask.causal = true;
  ra::sdpa<T>(q.cview(), k.cview(), v.cview(), a.view(), so);
  ra::flash_options<T> fo;
  fo.mask.causal = true;
  ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), b.view(), fo);
  for (std::size_t i = 0; i < a.buf.size(); ++i) ASSERT_NEAR(a.buf[i], b.buf[i], 2 * kTol<T>) << i;
}

TYPED_TEST(FlashTest, ThreadCountDoesNotChangeTheResult) {
  using T = TypeParam;
  const auto q = random_tensor<T>(2, 3, 130, 16, 21);
  const auto k = random_tensor<T>(2, 3, 140, 16, 22);
  const auto v = random_tensor<T>(2, 3, 140, 16, 23);
  tensor4<T> a(2, 3, 130, 16), b(2, 3, 130, 16);
  ra::set_num_threads(1);
  ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), a.view());
  ra::set_num_threads(2);
  ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), b.view());
  ra::set_num_threads(0);
  EXPECT_EQ(a.buf, b.buf);
}

TYPED_TEST(FlashTest, NonFiniteInputsAndBadShapesAreRejected) {
  using T = TypeParam;
  auto q = random_tensor<T>(1, 2, 10, 8, 31);
  auto k = random_tensor<T>(1, 2, 12, 8, 32);
  const auto v = random_tensor<T>(1, 2, 12, 8, 33);
  tensor4<T> out(1, 2, 10, 8);
  k.buf[(1 * 12 + 5) * 8 + 3] = std::numeric_limits<T>::quiet_NaN();
  try {
    ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), out.view());
    ADD_FAILURE() << "NaN accepted";
  } catch (const ra::non_finite_input& e) {
    EXPECT_NE(std::string(e.what()).find("k[0][1][5][3]"), std::string::npos) << e.what();
  }
  tensor4<T> wrong(1, 2, 10, 7);
  EXPECT_THROW(ra::flash_sdpa<T>(q.cview(), k.cview(), v.cview(), wrong.view()),
               ra::dimension_mismatch);
  const auto k3 = random_tensor<T>(1, 3, 12, 8, 34);  // 3 kv heads do not divide 2 query heads
  EXPECT_THROW(ra::flash_sdpa<T>(q.cview(), k3.cview(), v.cview(), out.view()),
               ra::dimension_mismatch);
}

// ---- single query / sequence API ---------------------------------------------------------------

TYPED_TEST(FlashTest, DecodePathMatchesOracleForAnyBlockSize) {
  using T = TypeParam;
  for (std::size_t n : {1, 2, 63, 64, 65, 1000, 2500}) {
    const auto K = orc::random_matrix(n, 24, 40 + n), V = orc::random_matrix(n, 10, 41 + n);
    const auto Q = orc::random_matrix(1, 24, 42 + n);
    const auto Kt = to_eigen<T>(K), Vt = to_eigen<T>(V);
    std::vector<T> q(24);
    for (std::size_t c = 0; c < 24; ++c) q[c] = static_cast<T>(Q(0, c));
    std::vector<bool> mask(n);
    std::unique_ptr<bool[]> m(new bool[n]);
    for (std::size_t j = 0; j < n; ++j) m[j] = mask[j] = (j * 7) % 5 != 0;
    const auto ref = orc::reference_attention(orc::rounded<T>(Q), orc::rounded<T>(K),
                                              orc::rounded<T>(V), 1 / std::sqrt(24.0));
    const auto ref_m =
        orc::reference_attention(orc::rounded<T>(Q), orc::rounded<T>(K), orc::rounded<T>(V),
                                 1 / std::sqrt(24.0), false, mask);
    for (std::size_t block : {0, 1, 7, 64, 512}) {
      const ra::flash_attention<T> fa(24, block);
      const auto out = fa.compute(q, Kt, Vt);
      EXPECT_LE(row_error(out.data(), ref.out.row(0)), kTol<T>) << "n=" << n << " block=" << block;
      const auto outm = fa.compute_with_mask(q, Kt, Vt, std::span<const bool>(m.get(), n));
      EXPECT_LE(row_error(outm.data(), ref_m.out.row(0)), kTol<T>)
          << "n=" << n << " block=" << block;
    }
  }
}

TYPED_TEST(FlashTest, SequenceForwardWithCausalMaskAndLse) {
  using T = TypeParam;
  const auto Q = orc::rounded<T>(orc::random_matrix(50, 16, 51));
  const auto K = orc::rounded<T>(orc::random_matrix(70, 16, 52));
  const auto V = orc::rounded<T>(orc::random_matrix(70, 12, 53));
  const ra::flash_attention<T> fa(16, 8, /*causal=*/true);
  std::vector<T> lse(50);
  const auto out = fa.forward(to_eigen<T>(Q), to_eigen<T>(K), to_eigen<T>(V), lse);
  const auto ref = orc::reference_attention(Q, K, V, 0.25, true);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_LE(row_error(out.row(static_cast<Eigen::Index>(i)).data(), ref.out.row(i)), kTol<T>);
    expect_lse(lse[i], ref.lse[i], "row " + std::to_string(i));
  }
}

// ---- partial merges ----------------------------------------------------------------------------

TYPED_TEST(FlashTest, PartialsMergeExactlyInAnyOrderAndGrouping) {
  using T = TypeParam;
  const std::size_t n = 200, d = 32, dv = 16;
  const auto K = orc::rounded<T>(orc::random_matrix(n, d, 61, 2.0));
  const auto V = orc::rounded<T>(orc::random_matrix(n, dv, 62));
  const auto Q = orc::rounded<T>(orc::random_matrix(1, d, 63, 2.0));
  const auto ref = orc::reference_attention(Q, K, V, 1 / std::sqrt(double(d)));
  const auto Kt = to_eigen<T>(K), Vt = to_eigen<T>(V);
  std::vector<T> q(d);
  for (std::size_t c = 0; c < d; ++c) q[c] = static_cast<T>(Q(0, c));

  std::mt19937_64 gen(64);
  for (int trial = 0; trial < 20; ++trial) {
    // Random contiguous cut points (including empty shards are impossible for the vector API, so
    // an "empty" shard is expressed as an all-masked one).
    std::vector<std::size_t> cuts{0, n};
    const std::size_t parts = 1 + gen() % 7;
    for (std::size_t p = 1; p < parts; ++p) cuts.push_back(1 + gen() % (n - 1));
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::vector<ra::attention_partial<T>> ps;
    for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
      const auto rows = static_cast<Eigen::Index>(cuts[p + 1] - cuts[p]);
      ps.push_back(
          ra::partial_attention<T>(q, Kt.middleRows(static_cast<Eigen::Index>(cuts[p]), rows),
                                   Vt.middleRows(static_cast<Eigen::Index>(cuts[p]), rows)));
    }
    // An all-masked partial is the identity.
    std::unique_ptr<bool[]> none(new bool[3]{false, false, false});
    ps.push_back(ra::partial_attention<T>(q, Kt.topRows(3), Vt.topRows(3),
                                          std::span<const bool>(none.get(), 3)));
    EXPECT_EQ(ps.back().lse, -std::numeric_limits<T>::infinity());
    std::shuffle(ps.begin(), ps.end(), gen);
    const auto all = ra::merge_partials<T>(ps);
    EXPECT_LE(row_error(all.output.data(), ref.out.row(0)), kTol<T>) << "trial " << trial;
    expect_lse(all.lse, ref.lse[0], "merged lse");
    // Grouping: merge pairs first, then the pair results.
    std::vector<ra::attention_partial<T>> pairs;
    for (std::size_t p = 0; p < ps.size(); p += 2) {
      auto acc = ps[p];
      if (p + 1 < ps.size()) ra::merge_into(acc, ps[p + 1]);
      pairs.push_back(acc);
    }
    const auto grouped = ra::merge_partials<T>(pairs);
    EXPECT_LE(row_error(grouped.output.data(), ref.out.row(0)), kTol<T>) << "trial " << trial;
  }
}

TYPED_TEST(FlashTest, MergeRejectsMismatchedPartials) {
  using T = TypeParam;
  std::vector<ra::attention_partial<T>> ps(2);
  ps[0].output.assign(3, T(1));
  ps[0].lse = T(0);
  ps[1].output.assign(4, T(1));
  ps[1].lse = T(0);
  EXPECT_THROW((void)ra::merge_partials<T>(ps), ra::dimension_mismatch);
  EXPECT_TRUE(ra::merge_partials<T>({}).output.empty());
}

// The Rust original's ring merge used the partial LSE as the running max and exp(LSE) as the sum.
// Recomputing that rule here shows the error it makes on the same data the exact merge gets right.
TYPED_TEST(FlashTest, TheOriginalRingMergeRuleIsWrongAndOursIsNot) {
  using T = TypeParam;
  const auto K = orc::rounded<T>(orc::random_matrix(32, 16, 71));
  const auto V = orc::rounded<T>(orc::random_matrix(32, 16, 72));
  const auto Q = orc::rounded<T>(orc::random_matrix(1, 16, 73));
  const auto ref = orc::reference_attention(Q, K, V, 0.25);
  const auto Kt = to_eigen<T>(K), Vt = to_eigen<T>(V);
  std::vector<T> q(16);
  for (std::size_t c = 0; c < 16; ++c) q[c] = static_cast<T>(Q(0, c));
  std::vector<ra::attention_partial<T>> ps;
  for (int p = 0; p < 4; ++p)
    ps.push_back(ra::partial_attention<T>(q, Kt.middleRows(8 * p, 8), Vt.middleRows(8 * p, 8)));
  // Wrong rule: m = max(m, lse_p); l = l·e^{m_old − m} + e^{lse_p}·e^{lse_p − m}; acc likewise.
  double m = kNegInf, l = 0;
  std::vector<double> acc(16, 0.0);
  for (const auto& p : ps) {
    const double mn = std::max(m, double(p.lse));
    const double a = std::isinf(m) ? 0.0 : std::exp(m - mn),
                 w = std::exp(double(p.lse)) * std::exp(p.lse - mn);
    l = l * a + w;
    for (std::size_t c = 0; c < 16; ++c) acc[c] = acc[c] * a + w * p.output[c];
    m = mn;
  }
  double wrong = 0;
  for (std::size_t c = 0; c < 16; ++c)
    wrong = std::max(wrong, std::abs(acc[c] / l - ref.out(0, c)));
  EXPECT_GT(wrong, 1e-3);  // the original rule is off by far more than rounding
  const auto ok = ra::merge_partials<T>(ps);
  EXPECT_LE(row_error(ok.output.data(), ref.out.row(0)), kTol<T>);
}

// ---- ring attention ----------------------------------------------------------------------------

TYPED_TEST(FlashTest, RingAttentionEqualsFullAttention) {
  using T = TypeParam;
  for (bool causal : {false, true}) {
    for (std::size_t D : {1, 2, 3, 4}) {
      // Uneven shards: sizes 5, 9, 13, ... for queries and 7, 4, 11, ... for keys.
      std::vector<ra::row_matrix<T>> qs, ks, vs;
      std::vector<std::size_t> lq, lk;
      for (std::size_t p = 0; p < D; ++p) {
        lq.push_back(5 + 4 * p);
        lk.push_back(causal ? 5 + 4 * p : 7 + (p * 5) % 9);
      }
      const std::size_t LQ = std::accumulate(lq.begin(), lq.end(), std::size_t{0});
      const std::size_t LK = std::accumulate(lk.begin(), lk.end(), std::size_t{0});
      const auto Q = orc::rounded<T>(orc::random_matrix(LQ, 8, 80 + D));
      const auto K = orc::rounded<T>(orc::random_matrix(LK, 8, 81 + D));
      const auto V = orc::rounded<T>(orc::random_matrix(LK, 6, 82 + D));
      const auto Qt = to_eigen<T>(Q), Kt = to_eigen<T>(K), Vt = to_eigen<T>(V);
      std::size_t qo = 0, ko = 0;
      for (std::size_t p = 0; p < D; ++p) {
        qs.push_back(
            Qt.middleRows(static_cast<Eigen::Index>(qo), static_cast<Eigen::Index>(lq[p])));
        ks.push_back(
            Kt.middleRows(static_cast<Eigen::Index>(ko), static_cast<Eigen::Index>(lk[p])));
        vs.push_back(
            Vt.middleRows(static_cast<Eigen::Index>(ko), static_cast<Eigen::Index>(lk[p])));
        qo += lq[p];
        ko += lk[p];
      }
      const auto r = ra::ring_attention<T>(qs, ks, vs, causal);
      const auto ref = orc::reference_attention(Q, K, V, 1 / std::sqrt(8.0), causal);
      std::size_t row = 0;
      for (std::size_t p = 0; p < D; ++p) {
        for (std::size_t i = 0; i < lq[p]; ++i, ++row) {
          EXPECT_LE(
              row_error(r.outputs[p].row(static_cast<Eigen::Index>(i)).data(), ref.out.row(row)),
              kTol<T>)
              << "D=" << D << " causal=" << causal << " shard " << p << " row " << i;
          expect_lse(r.lse[p][i], ref.lse[row], "ring lse");
        }
      }
    }
  }
}

TYPED_TEST(FlashTest, RingAttentionValidatesShards) {
  using T = TypeParam;
  std::vector<ra::row_matrix<T>> qs{ra::row_matrix<T>::Ones(2, 4)},
      ks{ra::row_matrix<T>::Ones(3, 4)}, vs{ra::row_matrix<T>::Ones(2, 4)};
  EXPECT_THROW((void)ra::ring_attention<T>(qs, ks, vs), ra::dimension_mismatch);
  EXPECT_THROW((void)ra::ring_attention<T>({}, {}, {}), ra::invalid_argument);
}

}  // namespace
