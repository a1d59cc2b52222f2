// Scaled dot-product attention (standard/scaled_dot_product.hpp): the single-query class
// `scaled_dot_product_attention<T>` and the batched tensor API `sdpa<T>`, for float and double,
// against the independent double-precision brute-force oracle in support/oracle.hpp.
//
// Tolerances (kTol<T>, checked as max_i |got − ref| / max(|ref|, 1), i.e. absolute for O(1)
// values and relative for large ones such as a log-sum-exp of ~1e4):
// - float: 1e-5 (≈ 170 ulp of 1). The library rounds in float: a length-d dot product of N(0,1)
//   values accumulates ~d·2^-24 of rounding (a random walk of d roundings of partial sums of size
//   ~√d), i.e. ~√d·6e-8 ≲ 7e-7 in a scaled score for d ≤ 128, which moves each weight by at most
//   that relative amount; the output is a
//   convex combination of O(1) values, so its error stays at the same level plus O(Lk·2^-24) from
//   the softmax sum. The largest error observed over every shape below is 5.5e-7, so 1e-5 leaves
//   ~20× headroom while any real mistake (wrong scale, mask or head mapping) is ≥ 1e-2.
// - double: 1e-12, the same argument with 2^-53 (observed ≤ 1.2e-15).
// The oracle always sees exactly the (rounded-to-T) values the library sees.
#include "ruvector/attention/standard/scaled_dot_product.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;
using ruvector_test::to_vec;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

constexpr double kInf = std::numeric_limits<double>::infinity();

static_assert(ra::masked_attention_mechanism<ra::scaled_dot_product_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::scaled_dot_product_attention<double>>);

template <class T>
std::vector<T> vec_of(std::initializer_list<double> xs) {
  std::vector<T> v;
  for (double x : xs) v.push_back(static_cast<T>(x));
  return v;
}

// EXPECT that an error message contains `needle`.
#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// ================================================================================================
// Vector API: scaled_dot_product_attention<T>
// ================================================================================================

template <class T>
class SdpaVectorTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SdpaVectorTest, Scalars);

// One query over n keys of width d and values of width dv: library vs oracle (output, weights,
// log-sum-exp), plus the structural properties of the weights.
template <class T>
void check_single_query(std::size_t n, std::size_t d, std::size_t dv, std::uint64_t seed,
                        std::optional<double> scale = std::nullopt) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " d=" << d << " dv=" << dv << " seed=" << seed);
  const auto q = orc::rounded<T>(orc::random_matrix(1, d, seed));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, seed + 1000));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, seed + 2000));
  const std::optional<T> lib_scale =
      scale ? std::optional<T>(static_cast<T>(*scale)) : std::optional<T>{};
  const double ref_scale =
      scale ? static_cast<double>(static_cast<T>(*scale)) : 1.0 / std::sqrt(static_cast<double>(d));
  const auto ref = orc::reference_attention(q, k, v, ref_scale);

  const ra::scaled_dot_product_attention<T> attn(d, lib_scale);
  EXPECT_EQ(attn.dim(), d);
  const auto qv = to_vec<T>(q.a);
  const auto K = to_eigen<T>(k);
  const auto V = to_eigen<T>(v);

  const std::vector<T> out = attn.compute(std::span<const T>(qv), K, V);
  EXPECT_LE(orc::max_mixed_error(out, ref.out.a), kTol<T>);

  const auto r = attn.compute_with_weights(std::span<const T>(qv), K, V);
  EXPECT_LE(orc::max_mixed_error(r.output, ref.out.a), kTol<T>);
  EXPECT_LE(orc::max_mixed_error(r.weights, ref.weights.a), kTol<T>);
  EXPECT_LE(std::abs(static_cast<double>(r.lse) - ref.lse[0]) / std::max(1.0, std::abs(ref.lse[0])),
            kTol<T>);

  double sum = 0;
  for (T w : r.weights) {
    EXPECT_GE(w, T(0));
    EXPECT_LE(w, T(1) + T(kTol<T>));
    sum += static_cast<double>(w);
  }
  EXPECT_NEAR(sum, 1.0, kTol<T>);
  // The output is a convex combination of the value rows.
  for (std::size_t c = 0; c < dv; ++c) {
    double lo = kInf, hi = -kInf;
    for (std::size_t j = 0; j < n; ++j) {
      lo = std::min(lo, v(j, c));
      hi = std::max(hi, v(j, c));
    }
    EXPECT_GE(static_cast<double>(out[c]), lo - kTol<T>);
    EXPECT_LE(static_cast<double>(out[c]), hi + kTol<T>);
  }
}

TYPED_TEST(SdpaVectorTest, MatchesOracleOnSelectedShapes) {
  using T = TypeParam;
  struct shape {
    std::size_t n, d, dv;
  };
  // n = 1, d not a multiple of 16 (or of any SIMD width), dv != d, n around the 8-row step.
  for (const shape s : {shape{1, 4, 4}, shape{1, 7, 3}, shape{1, 1, 1}, shape{2, 3, 9},
                        shape{7, 17, 5}, shape{8, 16, 16}, shape{9, 33, 2}, shape{16, 64, 64},
                        shape{17, 31, 40}, shape{100, 13, 29}, shape{65, 128, 1}}) {
    check_single_query<T>(s.n, s.d, s.dv, 17 * s.n + s.d);
  }
}

TYPED_TEST(SdpaVectorTest, MatchesOracleOnRandomShapes) {
  using T = TypeParam;
  std::mt19937_64 gen(20240601);
  std::uniform_int_distribution<std::size_t> n_dist(1, 90), d_dist(1, 70);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const std::size_t n = n_dist(gen), d = d_dist(gen), dv = d_dist(gen);
    check_single_query<T>(n, d, dv, 1000 + seed);
  }
}

TYPED_TEST(SdpaVectorTest, CustomScaleMatchesOracle) {
  using T = TypeParam;
  check_single_query<T>(11, 6, 5, 7, 0.3);
  check_single_query<T>(11, 6, 5, 8, 2.0);
  const ra::scaled_dot_product_attention<T> a(9, T(0.25));
  EXPECT_EQ(a.scale(), T(0.25));
  const ra::scaled_dot_product_attention<T> b(9);
  EXPECT_EQ(b.scale(), T(1) / std::sqrt(T(9)));
}

// q = e1, keys e1 and e2, scale 1/√4 = 1/2: scores (1/2, 0), so w = softmax(1/2, 0) =
// (e^{1/2}, 1) / (e^{1/2} + 1) and out = w_0·(1,2,3,4) + w_1·(5,6,7,8) (out_0 = 2.51016...).
TYPED_TEST(SdpaVectorTest, ClosedFormTwoKeys) {
  using T = TypeParam;
  const double w0 = std::exp(0.5) / (std::exp(0.5) + 1.0), w1 = 1.0 / (std::exp(0.5) + 1.0);
  const std::vector<T> q = vec_of<T>({1, 0, 0, 0});
  const std::vector<std::vector<T>> keys{vec_of<T>({1, 0, 0, 0}), vec_of<T>({0, 1, 0, 0})};
  const std::vector<std::vector<T>> values{vec_of<T>({1, 2, 3, 4}), vec_of<T>({5, 6, 7, 8})};
  const ra::scaled_dot_product_attention<T> attn(4);
  const auto out = attn.compute(q, keys, values);
  ASSERT_EQ(out.size(), 4u);
  for (std::size_t c = 0; c < 4; ++c) {
    const double expected = w0 * static_cast<double>(c + 1) + w1 * static_cast<double>(c + 5);
    EXPECT_NEAR(static_cast<double>(out[c]), expected, kTol<T>) << c;
  }
  EXPECT_NEAR(static_cast<double>(out[0]), 2.51016, 1e-5);
  const auto K = ra::to_matrix(keys), V = ra::to_matrix(values);
  const auto r = attn.compute_with_weights(std::span<const T>(q), K, V);
  EXPECT_NEAR(static_cast<double>(r.weights[0]), w0, kTol<T>);
  EXPECT_NEAR(static_cast<double>(r.weights[1]), w1, kTol<T>);
  EXPECT_NEAR(static_cast<double>(r.lse), std::log(std::exp(0.5) + 1.0), kTol<T>);
}

TYPED_TEST(SdpaVectorTest, ComputeWithMaskMatchesOracle) {
  using T = TypeParam;
  const std::size_t n = 13, d = 10, dv = 6;
  const auto q = orc::rounded<T>(orc::random_matrix(1, d, 1));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 2));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 3));
  std::vector<bool> mask(n);
  for (std::size_t j = 0; j < n; ++j) mask[j] = (j % 3) != 1;
  const auto ref = orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)), false, mask);

  const ra::scaled_dot_product_attention<T> attn(d);
  const auto qv = to_vec<T>(q.a);
  const auto K = to_eigen<T>(k), V = to_eigen<T>(v);
  const std::unique_ptr<bool[]> m(new bool[n]);
  for (std::size_t j = 0; j < n; ++j) m[j] = mask[j];
  const std::span<const bool> ms(m.get(), n);

  EXPECT_LE(
      orc::max_mixed_error(attn.compute_with_mask(std::span<const T>(qv), K, V, ms), ref.out.a),
      kTol<T>);
  const auto r = attn.compute_with_weights(std::span<const T>(qv), K, V, ms);
  EXPECT_LE(orc::max_mixed_error(r.weights, ref.weights.a), kTol<T>);
  for (std::size_t j = 0; j < n; ++j) {
    if (!mask[j]) {
      EXPECT_EQ(r.weights[j], T(0)) << j;
    }
  }
  EXPECT_NEAR(static_cast<double>(r.lse), ref.lse[0],
              kTol<T> * std::max(1.0, std::abs(ref.lse[0])));

  // The seeds-shaped adapter with std::vector<bool>.
  std::vector<std::vector<T>> kk(n), vv(n);
  for (std::size_t j = 0; j < n; ++j) {
    kk[j] = to_vec<T>(k.row(j));
    vv[j] = to_vec<T>(v.row(j));
  }
  EXPECT_LE(orc::max_mixed_error(attn.compute_with_mask(qv, kk, vv, mask), ref.out.a), kTol<T>);
  // The adapter without a mask agrees with the unmasked oracle.
  const auto ref_all = orc::reference_attention(q, k, v, 1.0 / std::sqrt(double(d)));
  EXPECT_LE(orc::max_mixed_error(attn.compute(qv, kk, vv), ref_all.out.a), kTol<T>);
}

TYPED_TEST(SdpaVectorTest, AllMaskedGivesZerosNotNaN) {
  using T = TypeParam;
  const std::size_t n = 5, d = 3, dv = 4;
  const auto K = to_eigen<T>(orc::random_matrix(n, d, 4));
  const auto V = to_eigen<T>(orc::random_matrix(n, dv, 5));
  const auto qv = to_vec<T>(orc::random_vector(d, 6));
  const bool none[n] = {false, false, false, false, false};
  const ra::scaled_dot_product_attention<T> attn(d);
  const auto out =
      attn.compute_with_mask(std::span<const T>(qv), K, V, std::span<const bool>(none, n));
  ASSERT_EQ(out.size(), dv);
  for (T x : out) EXPECT_EQ(x, T(0));
  const auto r =
      attn.compute_with_weights(std::span<const T>(qv), K, V, std::span<const bool>(none, n));
  for (T x : r.output) EXPECT_EQ(x, T(0));
  for (T w : r.weights) EXPECT_EQ(w, T(0));
  EXPECT_EQ(r.lse, -std::numeric_limits<T>::infinity());
  // The adapter agrees.
  std::vector<std::vector<T>> kk(n, std::vector<T>(d, T(1))), vv(n, std::vector<T>(dv, T(2)));
  for (T x : attn.compute_with_mask(qv, kk, vv, std::vector<bool>(n, false))) EXPECT_EQ(x, T(0));
}

// Scores ≈ ±1e4 (q = 200·e1, key first coordinates ±100, 99, 50, −60, scale 1/√4): a naive
// exp overflows; the max-subtracted softmax is one-hot on the argmax (the runner-up is e^-100
// behind) and must equal the oracle.
TYPED_TEST(SdpaVectorTest, HugeLogitsAreFiniteAndOneHot) {
  using T = TypeParam;
  const std::size_t d = 4, dv = 3;
  const double firsts[] = {50, -100, 100, 99, -60};
  const std::size_t n = std::size(firsts);
  auto q = orc::random_matrix(1, d, 9, 0.01);
  q(0, 0) = 200;
  auto k = orc::random_matrix(n, d, 10, 0.01);
  for (std::size_t j = 0; j < n; ++j) k(j, 0) = firsts[j];
  q = orc::rounded<T>(q);
  k = orc::rounded<T>(k);
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 11));
  const auto ref = orc::reference_attention(q, k, v, 0.5);
  ASSERT_GT(std::abs(ref.lse[0]), 9000.0);
  ASSERT_NEAR(ref.weights(0, 2), 1.0, 1e-30);

  const ra::scaled_dot_product_attention<T> attn(d);
  const auto qv = to_vec<T>(q.a);
  const auto r = attn.compute_with_weights(std::span<const T>(qv), to_eigen<T>(k), to_eigen<T>(v));
  for (T x : r.output) EXPECT_TRUE(std::isfinite(x));
  for (T x : r.weights) EXPECT_TRUE(std::isfinite(x));
  EXPECT_LE(orc::max_mixed_error(r.output, ref.out.a), kTol<T>);
  EXPECT_LE(orc::max_mixed_error(r.weights, ref.weights.a), kTol<T>);
  EXPECT_LE(orc::max_rel_error(std::vector<T>{r.lse}, ref.lse), kTol<T>);
  for (std::size_t c = 0; c < dv; ++c)
    EXPECT_NEAR(static_cast<double>(r.output[c]), v(2, c), kTol<T>);
}

TYPED_TEST(SdpaVectorTest, NonFiniteInputsNameTheArgument) {
  using T = TypeParam;
  const std::size_t n = 6, d = 5, dv = 4;
  const auto K0 = to_eigen<T>(orc::random_matrix(n, d, 12));
  const auto V0 = to_eigen<T>(orc::random_matrix(n, dv, 13));
  const auto q0 = to_vec<T>(orc::random_vector(d, 14));
  const ra::scaled_dot_product_attention<T> attn(d);
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "bad = " << bad);
    {
      auto q = q0;
      q[3] = bad;
      const auto msg = thrown_message<ra::non_finite_input>(
          [&] { (void)attn.compute(std::span<const T>(q), K0, V0); });
      EXPECT_MESSAGE_HAS(msg, "query[3]");
    }
    {
      auto K = K0;
      K(4, 2) = bad;
      const auto msg = thrown_message<ra::non_finite_input>(
          [&] { (void)attn.compute(std::span<const T>(q0), K, V0); });
      EXPECT_MESSAGE_HAS(msg, "keys[4][2]");
    }
    {
      auto V = V0;
      V(1, 3) = bad;
      const auto msg = thrown_message<ra::non_finite_input>(
          [&] { (void)attn.compute(std::span<const T>(q0), K0, V); });
      EXPECT_MESSAGE_HAS(msg, "values[1][3]");
    }
  }
  // Every non_finite_input is a ruvector::attention::error.
  auto q = q0;
  q[0] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_THROW((void)attn.compute(std::span<const T>(q), K0, V0), ra::error);
}

TYPED_TEST(SdpaVectorTest, MaskedOutNonFiniteStillThrows) {
  using T = TypeParam;
  const std::size_t n = 4, d = 3, dv = 2;
  const auto q = to_vec<T>(orc::random_vector(d, 15));
  const bool mask[n] = {true, false, true, true};
  const std::span<const bool> ms(mask, n);
  const ra::scaled_dot_product_attention<T> attn(d);
  {
    auto K = to_eigen<T>(orc::random_matrix(n, d, 16));
    K(1, 0) = std::numeric_limits<T>::quiet_NaN();
    const auto msg = thrown_message<ra::non_finite_input>([&] {
      (void)attn.compute_with_mask(std::span<const T>(q), K,
                                   to_eigen<T>(orc::random_matrix(n, dv, 17)), ms);
    });
    EXPECT_MESSAGE_HAS(msg, "keys[1][0]");
  }
  {
    auto V = to_eigen<T>(orc::random_matrix(n, dv, 18));
    V(1, 1) = std::numeric_limits<T>::infinity();
    const auto msg = thrown_message<ra::non_finite_input>([&] {
      (void)attn.compute_with_mask(std::span<const T>(q), to_eigen<T>(orc::random_matrix(n, d, 19)),
                                   V, ms);
    });
    EXPECT_MESSAGE_HAS(msg, "values[1][1]");
  }
}

TYPED_TEST(SdpaVectorTest, CheckFiniteFalseSkipsTheCheck) {
  using T = TypeParam;
  const std::size_t n = 4, d = 3, dv = 2;
  auto K = to_eigen<T>(orc::random_matrix(n, d, 20));
  K(2, 1) = std::numeric_limits<T>::quiet_NaN();
  const auto V = to_eigen<T>(orc::random_matrix(n, dv, 21));
  const auto q = to_vec<T>(orc::random_vector(d, 22));
  const ra::scaled_dot_product_attention<T> attn(d, std::nullopt, /*check_finite=*/false);
  // Documented: no validation of values, so only "does not throw" is asserted.
  EXPECT_NO_THROW((void)attn.compute(std::span<const T>(q), K, V));
}

TYPED_TEST(SdpaVectorTest, DimensionMismatchNamesTheArgument) {
  using T = TypeParam;
  const std::size_t n = 5, d = 4, dv = 3;
  const auto K = to_eigen<T>(orc::random_matrix(n, d, 23));
  const auto V = to_eigen<T>(orc::random_matrix(n, dv, 24));
  const auto q = to_vec<T>(orc::random_vector(d, 25));
  const ra::scaled_dot_product_attention<T> attn(d);

  const auto q5 = to_vec<T>(orc::random_vector(d + 1, 26));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q5), K, V); }),
                     "query.size()");
  const auto K3 = to_eigen<T>(orc::random_matrix(n, d - 1, 27));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q), K3, V); }),
                     "keys.cols()");
  // Keys/values count mismatch.
  const auto V4 = to_eigen<T>(orc::random_matrix(n - 1, dv, 28));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q), K, V4); }),
                     "values.rows()");
  // Key mask of the wrong length.
  const bool mask[3] = {true, true, true};
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)attn.compute_with_mask(std::span<const T>(q), K, V,
                                                    std::span<const bool>(mask, 3));
                     }),
                     "key_mask.size()");
  EXPECT_THROW((void)attn.compute_with_mask(q, std::vector<std::vector<T>>(n, std::vector<T>(d)),
                                            std::vector<std::vector<T>>(n, std::vector<T>(dv)),
                                            std::vector<bool>(n + 1, true)),
               ra::dimension_mismatch);
  // compute_into: output and weights spans of the wrong size.
  std::vector<T> out(dv + 1);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)attn.compute_into(std::span<const T>(q), K, V, std::span<T>(out));
                     }),
                     "out.size()");
  std::vector<T> out_ok(dv), w_bad(n + 2);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)attn.compute_into(std::span<const T>(q), K, V, std::span<T>(out_ok),
                                               {}, std::span<T>(w_bad));
                     }),
                     "weights.size()");
}

TYPED_TEST(SdpaVectorTest, EmptyKeysAndBadConstruction) {
  using T = TypeParam;
  const ra::scaled_dot_product_attention<T> attn(4);
  const ra::row_matrix<T> K(0, 4), V(0, 3);
  const auto q = to_vec<T>(orc::random_vector(4, 29));
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)attn.compute(std::span<const T>(q), K, V); }),
                     "keys");
  EXPECT_THROW((void)attn.compute(q, std::vector<std::vector<T>>{}, std::vector<std::vector<T>>{}),
               ra::error);
  EXPECT_THROW((void)ra::scaled_dot_product_attention<T>(0), ra::invalid_config);
  EXPECT_THROW((void)ra::scaled_dot_product_attention<T>(ra::max_dimension + 1),
               ra::input_too_large);
}

TYPED_TEST(SdpaVectorTest, RaggedAdapterRowNamed) {
  using T = TypeParam;
  const ra::scaled_dot_product_attention<T> attn(3);
  const std::vector<T> q(3, T(1));
  std::vector<std::vector<T>> keys(4, std::vector<T>(3, T(0.5)));
  std::vector<std::vector<T>> values(4, std::vector<T>(2, T(1)));
  keys[2].pop_back();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)attn.compute(q, keys, values); }),
      "keys[2].size()");
  keys[2].push_back(T(0.5));
  values[3].push_back(T(1));
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)attn.compute(q, keys, values); }),
      "values[3].size()");
}

// Keys and values as row blocks of larger matrices (outer stride > cols), no copy.
TYPED_TEST(SdpaVectorTest, StridedKeyAndValueViews) {
  using T = TypeParam;
  const std::size_t n = 11, d = 9, dv = 5;
  const auto big_k = orc::rounded<T>(orc::random_matrix(n + 3, d + 7, 30));
  const auto big_v = orc::rounded<T>(orc::random_matrix(n + 2, dv + 4, 31));
  const auto q = orc::rounded<T>(orc::random_matrix(1, d, 32));
  const auto BK = to_eigen<T>(big_k), BV = to_eigen<T>(big_v);
  const ra::matrix_cref<T> K =
      BK.block(2, 3, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  const ra::matrix_cref<T> V =
      BV.block(1, 4, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
  ASSERT_EQ(K.data(), &BK(2, 3));  // bound without a copy
  orc::dmat k(n, d), v(n, dv);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t c = 0; c < d; ++c) k(j, c) = big_k(j + 2, c + 3);
    for (std::size_t c = 0; c < dv; ++c) v(j, c) = big_v(j + 1, c + 4);
  }
  const auto ref = orc::reference_attention(q, k, v, 1.0 / 3.0);
  const ra::scaled_dot_product_attention<T> attn(d);
  const auto qv = to_vec<T>(q.a);
  EXPECT_LE(orc::max_mixed_error(attn.compute(std::span<const T>(qv), K, V), ref.out.a), kTol<T>);
}

// One immutable object shared by several threads gives the same results as serial calls.
TYPED_TEST(SdpaVectorTest, SharedAcrossThreads) {
  using T = TypeParam;
  const std::size_t n = 37, d = 19, dv = 23;
  const ra::scaled_dot_product_attention<T> attn(d);
  const auto K = to_eigen<T>(orc::random_matrix(n, d, 33));
  const auto V = to_eigen<T>(orc::random_matrix(n, dv, 34));
  std::vector<std::vector<T>> queries, serial;
  for (int i = 0; i < 8; ++i) {
    queries.push_back(to_vec<T>(orc::random_vector(d, 100 + static_cast<std::uint64_t>(i))));
    serial.push_back(attn.compute(std::span<const T>(queries.back()), K, V));
  }
  std::vector<std::vector<T>> parallel(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (std::size_t i = static_cast<std::size_t>(t); i < 8; i += 2)
          parallel[i] = attn.compute(std::span<const T>(queries[i]), K, V);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(parallel, serial);
}

// ================================================================================================
// Tensor API: sdpa<T>
// ================================================================================================

// An owning contiguous rank-4 tensor.
template <class T>
struct tensor4 {
  std::array<std::size_t, 4> ext{};
  std::vector<T> buf;
  tensor4(std::size_t a, std::size_t b, std::size_t c, std::size_t d, T fill = T(0))
      : ext{a, b, c, d}, buf(a * b * c * d, fill) {}
  [[nodiscard]] ra::tensor_view<T, 4> view() { return {buf.data(), ext}; }
  [[nodiscard]] ra::tensor_view<const T, 4> cview() const { return {buf.data(), ext}; }
};

template <class T>
tensor4<T> random_tensor(std::size_t a, std::size_t b, std::size_t c, std::size_t d,
                         std::uint64_t seed, double stddev = 1.0) {
  tensor4<T> t(a, b, c, d);
  const auto r = orc::random_vector(t.buf.size(), seed, stddev);
  for (std::size_t i = 0; i < r.size(); ++i) t.buf[i] = static_cast<T>(r[i]);
  return t;
}

// [L][w] slice (b, h) of a rank-4 view, in double.
template <class U>
orc::dmat slice(const ra::tensor_view<U, 4>& t, std::size_t b, std::size_t h) {
  orc::dmat m(t.extent(2), t.extent(3));
  for (std::size_t i = 0; i < m.rows; ++i)
    for (std::size_t j = 0; j < m.cols; ++j) m(i, j) = static_cast<double>(t(b, h, i, j));
  return m;
}

template <class T>
struct tensor_case {
  ra::tensor_view<const T, 4> q, k, v;
  ra::sdpa_options<T> opt{};
};

// Oracle per (b, h): query head h reads kv head h / (H / Hkv); key-mask row b; the bias
// broadcast over extents of 1.
template <class T>
std::vector<orc::attention_result> reference_sdpa(const tensor_case<T>& c) {
  const std::size_t B = c.q.extent(0), H = c.q.extent(1), Hkv = c.k.extent(1);
  const double scale = c.opt.scale ? static_cast<double>(*c.opt.scale)
                                   : 1.0 / std::sqrt(static_cast<double>(c.q.extent(3)));
  std::vector<orc::attention_result> refs;
  for (std::size_t b = 0; b < B; ++b) {
    std::vector<bool> mask;
    if (!c.opt.mask.key_mask.absent())
      for (std::size_t j = 0; j < c.k.extent(2); ++j) mask.push_back(c.opt.mask.key_mask(b, j));
    for (std::size_t h = 0; h < H; ++h) {
      orc::dmat bias;
      if (!c.opt.mask.bias.absent())
        bias = slice(c.opt.mask.bias, c.opt.mask.bias.extent(0) == 1 ? 0 : b,
                     c.opt.mask.bias.extent(1) == 1 ? 0 : h);
      const std::size_t hk = h / (H / Hkv);
      refs.push_back(orc::reference_attention(slice(c.q, b, h), slice(c.k, b, hk),
                                              slice(c.v, b, hk), scale, c.opt.mask.causal, mask,
                                              bias));
    }
  }
  return refs;
}

// Runs sdpa with weights and lse outputs and compares all three with the oracle.
template <class T>
void check_sdpa(const tensor_case<T>& c, const std::string& label) {
  SCOPED_TRACE(label);
  const std::size_t B = c.q.extent(0), H = c.q.extent(1), Lq = c.q.extent(2), Lk = c.k.extent(2),
                    dv = c.v.extent(3);
  tensor4<T> out(B, H, Lq, dv, T(-7)), w(B, H, Lq, Lk, T(-7));
  std::vector<T> lse(B * H * Lq, T(-7));
  ra::sdpa_extras<T> ex;
  ex.weights = w.view();
  ex.lse = ra::tensor_view<T, 3>(lse.data(), {B, H, Lq});
  ra::sdpa<T>(c.q, c.k, c.v, out.view(), c.opt, ex);

  // Without extras the output is identical.
  tensor4<T> out2(B, H, Lq, dv, T(-7));
  ra::sdpa<T>(c.q, c.k, c.v, out2.view(), c.opt);
  EXPECT_EQ(out.buf, out2.buf);

  const auto refs = reference_sdpa(c);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h) {
      SCOPED_TRACE(::testing::Message() << "b=" << b << " h=" << h);
      const auto& ref = refs[b * H + h];
      EXPECT_LE(orc::max_mixed_error(slice(out.cview(), b, h).a, ref.out.a), kTol<T>);
      EXPECT_LE(orc::max_mixed_error(slice(w.cview(), b, h).a, ref.weights.a), kTol<T>);
      for (std::size_t i = 0; i < Lq; ++i) {
        const double got = static_cast<double>(lse[(b * H + h) * Lq + i]);
        if (std::isinf(ref.lse[i])) {
          EXPECT_EQ(got, ref.lse[i]) << "lse row " << i;
          // A row that sees no key: zero output and zero weights, never NaN.
          for (std::size_t c2 = 0; c2 < dv; ++c2) EXPECT_EQ(out.cview()(b, h, i, c2), T(0));
          for (std::size_t j = 0; j < Lk; ++j) EXPECT_EQ(w.cview()(b, h, i, j), T(0));
        } else {
          EXPECT_LE(std::abs(got - ref.lse[i]) / std::max(1.0, std::abs(ref.lse[i])), kTol<T>)
              << "lse row " << i;
          double sum = 0;
          for (std::size_t j = 0; j < Lk; ++j) sum += static_cast<double>(w.cview()(b, h, i, j));
          EXPECT_NEAR(sum, 1.0, kTol<T>) << "weights row " << i;
        }
      }
    }
}

template <class T>
class SdpaTensorTest : public ::testing::Test {};
TYPED_TEST_SUITE(SdpaTensorTest, Scalars);

TYPED_TEST(SdpaTensorTest, MhaGqaMqaMatchOracle) {
  using T = TypeParam;
  const std::size_t B = 2, H = 4, Lq = 5, Lk = 9, d = 12, dv = 7;
  for (const std::size_t Hkv : {std::size_t{4}, std::size_t{2}, std::size_t{1}}) {
    const auto q = random_tensor<T>(B, H, Lq, d, 40 + Hkv);
    const auto k = random_tensor<T>(B, Hkv, Lk, d, 50 + Hkv);
    const auto v = random_tensor<T>(B, Hkv, Lk, dv, 60 + Hkv);
    check_sdpa<T>({q.cview(), k.cview(), v.cview()}, "Hkv=" + std::to_string(Hkv));
  }
}

TYPED_TEST(SdpaTensorTest, ManyQueryBlocksAndCustomScale) {
  using T = TypeParam;
  // Lq = 150 spans three default blocks of 64 queries.
  const auto q = random_tensor<T>(1, 2, 150, 20, 70);
  const auto k = random_tensor<T>(1, 2, 70, 20, 71);
  const auto v = random_tensor<T>(1, 2, 70, 33, 72);
  tensor_case<T> c{q.cview(), k.cview(), v.cview()};
  check_sdpa<T>(c, "default scale");
  c.opt.scale = T(0.125);
  check_sdpa<T>(c, "scale 0.125");
  c.opt.mask.causal = true;
  check_sdpa<T>(c, "scale 0.125, causal, Lq > Lk");
}

TYPED_TEST(SdpaTensorTest, CausalIsBottomRightAligned) {
  using T = TypeParam;
  struct lens {
    std::size_t lq, lk;
  };
  for (const lens L : {lens{6, 11}, lens{11, 6}, lens{7, 7}, lens{1, 5}, lens{5, 1}}) {
    const auto q = random_tensor<T>(2, 2, L.lq, 8, 80 + L.lq);
    const auto k = random_tensor<T>(2, 1, L.lk, 8, 90 + L.lk);
    const auto v = random_tensor<T>(2, 1, L.lk, 5, 100 + L.lk);
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.mask.causal = true;
    check_sdpa<T>(c, "Lq=" + std::to_string(L.lq) + " Lk=" + std::to_string(L.lk));

    // Independently of the oracle: query i sees exactly keys j <= i + Lk - Lq.
    tensor4<T> out(2, 2, L.lq, 5), w(2, 2, L.lq, L.lk);
    std::vector<T> lse(2 * 2 * L.lq);
    ra::sdpa_extras<T> ex;
    ex.weights = w.view();
    ex.lse = ra::tensor_view<T, 3>(lse.data(), {2, 2, L.lq});
    ra::sdpa<T>(c.q, c.k, c.v, out.view(), c.opt, ex);
    for (std::size_t i = 0; i < L.lq; ++i) {
      const long long last = static_cast<long long>(i + L.lk) - static_cast<long long>(L.lq);
      for (std::size_t j = 0; j < L.lk; ++j) {
        const bool visible = static_cast<long long>(j) <= last;
        EXPECT_EQ(w.cview()(1, 1, i, j) > T(0), visible) << "i=" << i << " j=" << j;
      }
      if (last < 0) {
        EXPECT_EQ(lse[(1 * 2 + 1) * L.lq + i], -std::numeric_limits<T>::infinity());
        for (std::size_t c2 = 0; c2 < 5; ++c2) EXPECT_EQ(out.cview()(1, 1, i, c2), T(0));
      }
    }
  }
}

TYPED_TEST(SdpaTensorTest, KeyMaskWithAFullyMaskedBatch) {
  using T = TypeParam;
  const std::size_t B = 3, H = 2, Lq = 4, Lk = 6, d = 5, dv = 3;
  const auto q = random_tensor<T>(B, H, Lq, d, 110);
  const auto k = random_tensor<T>(B, H, Lk, d, 111);
  const auto v = random_tensor<T>(B, H, Lk, dv, 112);
  const std::unique_ptr<bool[]> mask(new bool[B * Lk]);
  for (std::size_t j = 0; j < Lk; ++j) {
    mask[0 * Lk + j] = j % 2 == 0;
    mask[1 * Lk + j] = false;  // batch 1 sees nothing
    mask[2 * Lk + j] = j != 3;
  }
  tensor_case<T> c{q.cview(), k.cview(), v.cview()};
  c.opt.mask.key_mask = ra::tensor_view<const bool, 2>(mask.get(), {B, Lk});
  check_sdpa<T>(c, "key mask");
  c.opt.mask.causal = true;
  check_sdpa<T>(c, "key mask + causal");

  // make_length_mask builds the same kind of padding mask.
  const std::size_t lengths[] = {6, 0, 2};
  const auto lm = ra::make_length_mask(std::span<const std::size_t>(lengths), Lk);
  c.opt.mask.key_mask = ra::tensor_view<const bool, 2>(lm.get(), {B, Lk});
  c.opt.mask.causal = false;
  check_sdpa<T>(c, "length mask");
}

TYPED_TEST(SdpaTensorTest, AdditiveBiasBroadcastsAndMinusInfMasks) {
  using T = TypeParam;
  const std::size_t B = 2, H = 3, Lq = 5, Lk = 7, d = 6, dv = 4;
  const auto q = random_tensor<T>(B, H, Lq, d, 120);
  const auto k = random_tensor<T>(B, H, Lk, d, 121);
  const auto v = random_tensor<T>(B, H, Lk, dv, 122);
  struct bshape {
    std::size_t b, h;
  };
  for (const bshape s : {bshape{1, 1}, bshape{B, 1}, bshape{1, H}, bshape{B, H}}) {
    auto bias = random_tensor<T>(s.b, s.h, Lq, Lk, 123 + s.b * 10 + s.h);
    // -inf entries act as a mask; row 2 of the first bias slice hides every key.
    bias.view()(0, 0, 0, 1) = -std::numeric_limits<T>::infinity();
    bias.view()(s.b - 1, s.h - 1, 3, 4) = -std::numeric_limits<T>::infinity();
    for (std::size_t j = 0; j < Lk; ++j)
      bias.view()(0, 0, 2, j) = -std::numeric_limits<T>::infinity();
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.mask.bias = bias.cview();
    const std::string label = "bias [" + std::to_string(s.b) + "," + std::to_string(s.h) + "]";
    check_sdpa<T>(c, label);
    c.opt.mask.causal = true;
    check_sdpa<T>(c, label + " + causal");
  }
  // A stride-0 view broadcasts an extent too (bias shared across the batch with extent B).
  auto shared = random_tensor<T>(1, H, Lq, Lk, 130);
  const ra::tensor_view<const T, 4> bview(
      shared.buf.data(), {B, H, Lq, Lk},
      {0, static_cast<std::ptrdiff_t>(Lq * Lk), static_cast<std::ptrdiff_t>(Lk), 1});
  tensor_case<T> c{q.cview(), k.cview(), v.cview()};
  c.opt.mask.bias = bview;
  check_sdpa<T>(c, "stride-0 bias");
}

TYPED_TEST(SdpaTensorTest, NonFiniteBiasRejected) {
  using T = TypeParam;
  const auto q = random_tensor<T>(1, 2, 3, 4, 140);
  const auto k = random_tensor<T>(1, 2, 5, 4, 141);
  const auto v = random_tensor<T>(1, 2, 5, 4, 142);
  tensor4<T> out(1, 2, 3, 4);
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
    auto bias = random_tensor<T>(1, 2, 3, 5, 143);
    bias.view()(0, 1, 2, 3) = bad;
    ra::sdpa_options<T> opt;
    opt.mask.bias = bias.cview();
    const auto msg = thrown_message<ra::non_finite_input>(
        [&] { ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out.view(), opt); });
    EXPECT_MESSAGE_HAS(msg, "mask.bias[0][1][2][3]");
  }
}

TYPED_TEST(SdpaTensorTest, NonFiniteInputsNameTheTensorAndIndex) {
  using T = TypeParam;
  const auto q0 = random_tensor<T>(2, 2, 3, 4, 150);
  const auto k0 = random_tensor<T>(2, 1, 5, 4, 151);
  const auto v0 = random_tensor<T>(2, 1, 5, 6, 152);
  tensor4<T> out(2, 2, 3, 6);
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "bad = " << bad);
    {
      auto q = q0;
      q.view()(1, 0, 2, 3) = bad;
      EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                             [&] { ra::sdpa<T>(q.cview(), k0.cview(), v0.cview(), out.view()); }),
                         "q[1][0][2][3]");
    }
    {
      auto k = k0;
      k.view()(1, 0, 4, 0) = bad;
      EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                             [&] { ra::sdpa<T>(q0.cview(), k.cview(), v0.cview(), out.view()); }),
                         "k[1][0][4][0]");
    }
    {
      auto v = v0;
      v.view()(0, 0, 1, 5) = bad;
      EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                             [&] { ra::sdpa<T>(q0.cview(), k0.cview(), v.cview(), out.view()); }),
                         "v[0][0][1][5]");
    }
  }
  // A key hidden by the mask (and by causality) still has its NaN reported.
  auto k = k0;
  k.view()(0, 0, 4, 1) = std::numeric_limits<T>::quiet_NaN();
  const std::unique_ptr<bool[]> mask(new bool[2 * 5]);
  for (std::size_t j = 0; j < 10; ++j) mask[j] = (j % 5) != 4;
  ra::sdpa_options<T> opt;
  opt.mask.key_mask = ra::tensor_view<const bool, 2>(mask.get(), {2, 5});
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { ra::sdpa<T>(q0.cview(), k.cview(), v0.cview(), out.view(), opt); }),
                     "k[0][0][4][1]");
  // check_finite = false: no validation (documented; values are not asserted).
  opt.check_finite = false;
  EXPECT_NO_THROW(ra::sdpa<T>(q0.cview(), k.cview(), v0.cview(), out.view(), opt));
  auto bias = random_tensor<T>(1, 1, 3, 5, 153);
  bias.view()(0, 0, 0, 0) = std::numeric_limits<T>::quiet_NaN();
  opt.mask.bias = bias.cview();
  EXPECT_NO_THROW(ra::sdpa<T>(q0.cview(), k0.cview(), v0.cview(), out.view(), opt));
}

TYPED_TEST(SdpaTensorTest, HugeLogitsMatchOracle) {
  using T = TypeParam;
  const std::size_t Lq = 3, Lk = 5, d = 4, dv = 3;
  auto q = random_tensor<T>(1, 1, Lq, d, 160, 0.01);
  auto k = random_tensor<T>(1, 1, Lk, d, 161, 0.01);
  const auto v = random_tensor<T>(1, 1, Lk, dv, 162);
  const double firsts[] = {50, -100, 100, 99, -60};
  const double qs[] = {200, -200, 150};
  for (std::size_t i = 0; i < Lq; ++i) q.view()(0, 0, i, 0) = static_cast<T>(qs[i]);
  for (std::size_t j = 0; j < Lk; ++j) k.view()(0, 0, j, 0) = static_cast<T>(firsts[j]);
  ra::sdpa_options<T> opt;
  opt.scale = T(0.5);  // scores up to ±1e4
  check_sdpa<T>({q.cview(), k.cview(), v.cview(), opt}, "huge logits");
  tensor4<T> out(1, 1, Lq, dv);
  ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out.view(), opt);
  for (T x : out.buf) EXPECT_TRUE(std::isfinite(x));
  // One-hot on the argmax: query 0 → key 2, query 1 → key 1.
  for (std::size_t c = 0; c < dv; ++c) {
    EXPECT_NEAR(static_cast<double>(out.cview()(0, 0, 0, c)),
                static_cast<double>(v.cview()(0, 0, 2, c)), kTol<T>);
    EXPECT_NEAR(static_cast<double>(out.cview()(0, 0, 1, c)),
                static_cast<double>(v.cview()(0, 0, 1, c)), kTol<T>);
  }
}

// q is a slice of a bigger buffer (larger row, head and batch strides); k and v use the
// [B, L, H, d] layout (heads interleaved, as multi-head attention produces); out is strided too.
TYPED_TEST(SdpaTensorTest, StridedViewsMatchOracle) {
  using T = TypeParam;
  const std::size_t B = 2, H = 4, Hkv = 2, Lq = 6, Lk = 9, d = 5, dv = 3;
  const std::size_t qrow = d + 4, qhead = Lq * qrow + 3, qbatch = H * qhead + 11;
  std::vector<T> qbuf(B * qbatch + 5, std::numeric_limits<T>::quiet_NaN());  // padding is NaN
  const ra::tensor_view<T, 4> qv(
      qbuf.data() + 2, {B, H, Lq, d},
      {static_cast<std::ptrdiff_t>(qbatch), static_cast<std::ptrdiff_t>(qhead),
       static_cast<std::ptrdiff_t>(qrow), 1});
  const auto qr = orc::random_vector(B * H * Lq * d, 170);
  std::size_t idx = 0;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < Lq; ++i)
        for (std::size_t c = 0; c < d; ++c) qv(b, h, i, c) = static_cast<T>(qr[idx++]);

  // k, v stored [B, Lk, Hkv, d].
  const auto kb = random_tensor<T>(B, Lk, Hkv, d, 171);
  const auto vb = random_tensor<T>(B, Lk, Hkv, dv, 172);
  const auto sd = [](std::size_t x) { return static_cast<std::ptrdiff_t>(x); };
  const ra::tensor_view<const T, 4> kv(kb.buf.data(), {B, Hkv, Lk, d},
                                       {sd(Lk * Hkv * d), sd(d), sd(Hkv * d), 1});
  const ra::tensor_view<const T, 4> vv(vb.buf.data(), {B, Hkv, Lk, dv},
                                       {sd(Lk * Hkv * dv), sd(dv), sd(Hkv * dv), 1});
  tensor_case<T> c{qv, kv, vv};
  check_sdpa<T>(c, "strided");
  c.opt.mask.causal = true;
  c.opt.query_block = 4;
  check_sdpa<T>(c, "strided causal, block 4");

  // A strided output [B, Lq, H, dv + 2]: only the addressed elements are written.
  std::vector<T> obuf(B * Lq * H * (dv + 2), T(42));
  const ra::tensor_view<T, 4> ov(obuf.data(), {B, H, Lq, dv},
                                 {sd(Lq * H * (dv + 2)), sd(dv + 2), sd(H * (dv + 2)), 1});
  c.opt = {};
  ra::sdpa<T>(qv, kv, vv, ov, c.opt);
  const auto refs = reference_sdpa(c);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      EXPECT_LE(orc::max_mixed_error(slice(ra::tensor_view<const T, 4>(ov), b, h).a,
                                     refs[b * H + h].out.a),
                kTol<T>);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t i = 0; i < Lq; ++i)
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t e = dv; e < dv + 2; ++e)
          EXPECT_EQ(obuf[((b * Lq + i) * H + h) * (dv + 2) + e], T(42));
}

TYPED_TEST(SdpaTensorTest, QueryBlockNotDividingLq) {
  using T = TypeParam;
  const std::size_t B = 2, H = 2, Lq = 20, Lk = 23, d = 9, dv = 4;
  const auto q = random_tensor<T>(B, H, Lq, d, 180);
  const auto k = random_tensor<T>(B, 1, Lk, d, 181);
  const auto v = random_tensor<T>(B, 1, Lk, dv, 182);
  for (const std::size_t block :
       {std::size_t{7}, std::size_t{1}, std::size_t{3}, std::size_t{20}, std::size_t{1000}}) {
    for (const bool causal : {false, true}) {
      tensor_case<T> c{q.cview(), k.cview(), v.cview()};
      c.opt.query_block = block;
      c.opt.mask.causal = causal;
      check_sdpa<T>(c, "block " + std::to_string(block) + (causal ? " causal" : ""));
    }
  }
}

// Any query_block value is valid ("queries per block"); one larger than Lq means one block.
// Values near SIZE_MAX must not overflow the block count.
TYPED_TEST(SdpaTensorTest, HugeQueryBlockStillComputesEveryRow) {
  using T = TypeParam;
  const auto q = random_tensor<T>(2, 2, 5, 4, 185);
  const auto k = random_tensor<T>(2, 2, 6, 4, 186);
  const auto v = random_tensor<T>(2, 2, 6, 3, 187);
  for (const std::size_t block :
       {std::numeric_limits<std::size_t>::max(), std::numeric_limits<std::size_t>::max() - 1,
        std::numeric_limits<std::size_t>::max() / 2 + 1}) {
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.query_block = block;
    check_sdpa<T>(c, "query_block " + std::to_string(block));
  }
}

// The mask, bias and weights views are tensor_views like q, k, v: a non-unit innermost stride
// (a transposed layout, or stride 0 to broadcast) must either be honoured or rejected with
// invalid_argument — never silently misread (q/k/v/out are rejected explicitly).
TYPED_TEST(SdpaTensorTest, StridedMaskBiasAndWeightsViewsHonouredOrRejected) {
  using T = TypeParam;
  const std::size_t B = 2, H = 2, Lq = 3, Lk = 5, d = 4, dv = 3;
  const auto q = random_tensor<T>(B, H, Lq, d, 240);
  const auto k = random_tensor<T>(B, H, Lk, d, 241);
  const auto v = random_tensor<T>(B, H, Lk, dv, 242);
  const auto sd = [](std::size_t x) { return static_cast<std::ptrdiff_t>(x); };
  // Runs `call`; passes if it throws invalid_argument, otherwise hands over to `check`.
  const auto honoured_or_rejected = [](const char* what, const auto& call, const auto& check) {
    SCOPED_TRACE(what);
    try {
      call();
    } catch (const ra::invalid_argument&) {
      return;  // rejected: fine
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception: " << e.what();
      return;
    }
    check();
  };
  const auto compare_out = [&](const tensor4<T>& out, const tensor_case<T>& c) {
    const auto refs = reference_sdpa(c);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h)
        EXPECT_LE(orc::max_mixed_error(slice(out.cview(), b, h).a, refs[b * H + h].out.a), kTol<T>)
            << "b=" << b << " h=" << h;
  };

  {  // (a) key mask stored [Lk][B], viewed as [B, Lk] with strides {1, B}.
    const std::unique_ptr<bool[]> storage(new bool[Lk * B]);
    for (std::size_t j = 0; j < Lk; ++j) {
      storage[j * B + 0] = j == 2;      // batch 0 sees key 2 only
      storage[j * B + 1] = j % 2 == 0;  // batch 1 sees keys 0, 2, 4
    }
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.mask.key_mask = ra::tensor_view<const bool, 2>(storage.get(), {B, Lk}, {1, sd(B)});
    tensor4<T> out(B, H, Lq, dv);
    honoured_or_rejected(
        "transposed key mask", [&] { ra::sdpa<T>(c.q, c.k, c.v, out.view(), c.opt); },
        [&] { compare_out(out, c); });
  }
  {  // (b) bias stored [Lk][Lq], viewed as [1, 1, Lq, Lk] with strides {0, 0, 1, Lq}.
    const auto r = orc::random_vector(Lk * Lq, 243);
    std::vector<T> storage(r.begin(), r.end());
    storage[3 * Lq + 1] = -std::numeric_limits<T>::infinity();  // bias(1, 3) hides a key
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.mask.bias =
        ra::tensor_view<const T, 4>(storage.data(), {1, 1, Lq, Lk}, {0, 0, 1, sd(Lq)});
    tensor4<T> out(B, H, Lq, dv);
    honoured_or_rejected(
        "transposed bias", [&] { ra::sdpa<T>(c.q, c.k, c.v, out.view(), c.opt); },
        [&] { compare_out(out, c); });
  }
  {  // (c) a per-query bias broadcast over the keys (innermost stride 0); the rest of the
     // allocation is NaN so a misread shows up instead of reading out of bounds.
    std::vector<T> storage(Lq * Lk, std::numeric_limits<T>::quiet_NaN());
    for (std::size_t i = 0; i < Lq; ++i) storage[i] = static_cast<T>(0.5 * static_cast<double>(i));
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.mask.bias = ra::tensor_view<const T, 4>(storage.data(), {1, 1, Lq, Lk}, {0, 0, 1, 0});
    tensor4<T> out(B, H, Lq, dv);
    honoured_or_rejected(
        "key-broadcast bias (stride 0)", [&] { ra::sdpa<T>(c.q, c.k, c.v, out.view(), c.opt); },
        [&] { compare_out(out, c); });
  }
  {  // (d) weights output stored [B][H][Lk][Lq], viewed as [B, H, Lq, Lk] (inner stride Lq).
    tensor_case<T> c{q.cview(), k.cview(), v.cview()};
    c.opt.mask.causal = true;
    std::vector<T> storage(B * H * Lk * Lq, T(-1));
    ra::sdpa_extras<T> ex;
    ex.weights = ra::tensor_view<T, 4>(storage.data(), {B, H, Lq, Lk},
                                       {sd(H * Lk * Lq), sd(Lk * Lq), 1, sd(Lq)});
    tensor4<T> out(B, H, Lq, dv);
    honoured_or_rejected(
        "transposed weights output", [&] { ra::sdpa<T>(c.q, c.k, c.v, out.view(), c.opt, ex); },
        [&] {
          const auto refs = reference_sdpa(c);
          for (std::size_t b = 0; b < B; ++b)
            for (std::size_t h = 0; h < H; ++h)
              EXPECT_LE(orc::max_mixed_error(slice(ra::tensor_view<const T, 4>(ex.weights), b, h).a,
                                             refs[b * H + h].weights.a),
                        kTol<T>)
                  << "b=" << b << " h=" << h;
        });
  }
}

TYPED_TEST(SdpaTensorTest, NoKeysGivesZeros) {
  using T = TypeParam;
  const std::size_t B = 2, H = 2, Lq = 3, d = 4, dv = 5;
  const auto q = random_tensor<T>(B, H, Lq, d, 190);
  std::vector<T> empty;  // Lk = 0: no storage at all
  const ra::tensor_view<const T, 4> k(empty.data(), {B, H, 0, d});
  const ra::tensor_view<const T, 4> v(empty.data(), {B, H, 0, dv});
  tensor4<T> out(B, H, Lq, dv, T(9));
  std::vector<T> lse(B * H * Lq, T(9));
  ra::sdpa_extras<T> ex;
  ex.lse = ra::tensor_view<T, 3>(lse.data(), {B, H, Lq});
  ra::sdpa<T>(q.cview(), k, v, out.view(), {}, ex);
  for (T x : out.buf) EXPECT_EQ(x, T(0));
  for (T x : lse) EXPECT_EQ(x, -std::numeric_limits<T>::infinity());
  ra::sdpa_options<T> opt;
  opt.mask.causal = true;
  std::fill(out.buf.begin(), out.buf.end(), T(9));
  ra::sdpa<T>(q.cview(), k, v, out.view(), opt);
  for (T x : out.buf) EXPECT_EQ(x, T(0));
}

TYPED_TEST(SdpaTensorTest, EmptyBatchOrQueriesIsANoOp) {
  using T = TypeParam;
  const auto k = random_tensor<T>(0, 2, 4, 3, 195);
  const auto v = random_tensor<T>(0, 2, 4, 3, 196);
  const auto q = random_tensor<T>(0, 2, 5, 3, 197);
  tensor4<T> out(0, 2, 5, 3);
  EXPECT_NO_THROW(ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out.view()));
  const auto q1 = random_tensor<T>(1, 2, 0, 3, 198);
  const auto k1 = random_tensor<T>(1, 2, 4, 3, 199);
  tensor4<T> out1(1, 2, 0, 3);
  EXPECT_NO_THROW(ra::sdpa<T>(q1.cview(), k1.cview(), k1.cview(), out1.view()));
}

TYPED_TEST(SdpaTensorTest, ShapeErrorsNameTheArgument) {
  using T = TypeParam;
  const auto q = random_tensor<T>(2, 4, 3, 5, 200);
  const auto k = random_tensor<T>(2, 2, 6, 5, 201);
  const auto v = random_tensor<T>(2, 2, 6, 7, 202);
  tensor4<T> out(2, 4, 3, 7);
  const auto expect_dm = [&](const ra::tensor_view<const T, 4>& qq,
                             const ra::tensor_view<const T, 4>& kk,
                             const ra::tensor_view<const T, 4>& vv, const ra::tensor_view<T, 4>& oo,
                             const ra::sdpa_options<T>& opt, const char* needle) {
    EXPECT_MESSAGE_HAS(
        thrown_message<ra::dimension_mismatch>([&] { ra::sdpa<T>(qq, kk, vv, oo, opt); }), needle);
  };
  const ra::sdpa_options<T> none;
  const auto k_d = random_tensor<T>(2, 2, 6, 4, 203);
  expect_dm(q.cview(), k_d.cview(), v.cview(), out.view(), none, "k.extent(3)");
  const auto v_n = random_tensor<T>(2, 2, 5, 7, 204);
  expect_dm(q.cview(), k.cview(), v_n.cview(), out.view(), none, "v.extent(2)");
  const auto k_b = random_tensor<T>(1, 2, 6, 5, 205);
  expect_dm(q.cview(), k_b.cview(), v.cview(), out.view(), none, "k.extent(0)");
  const auto k_h = random_tensor<T>(2, 3, 6, 5, 206);
  const auto v_h = random_tensor<T>(2, 3, 6, 7, 207);
  expect_dm(q.cview(), k_h.cview(), v_h.cview(), out.view(), none, "k.extent(1)");
  tensor4<T> out_bad(2, 4, 3, 6);
  expect_dm(q.cview(), k.cview(), v.cview(), out_bad.view(), none, "out.extent(3)");

  const std::unique_ptr<bool[]> mask(new bool[2 * 5]());
  ra::sdpa_options<T> opt;
  opt.mask.key_mask = ra::tensor_view<const bool, 2>(mask.get(), {2, 5});
  expect_dm(q.cview(), k.cview(), v.cview(), out.view(), opt, "mask.key_mask.extent(1)");
  ra::sdpa_options<T> opt_b;
  const auto bias = random_tensor<T>(3, 1, 3, 6, 208);
  opt_b.mask.bias = bias.cview();
  expect_dm(q.cview(), k.cview(), v.cview(), out.view(), opt_b, "mask.bias.extent(0)");
  const auto bias2 = random_tensor<T>(1, 1, 3, 5, 209);
  opt_b.mask.bias = bias2.cview();
  expect_dm(q.cview(), k.cview(), v.cview(), out.view(), opt_b, "mask.bias.extent(3)");

  // Extras of the wrong shape.
  tensor4<T> w_bad(2, 4, 3, 5);
  ra::sdpa_extras<T> ex;
  ex.weights = w_bad.view();
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out.view(), {}, ex); }),
                     "extras.weights.extent(3)");

  // A non-unit inner stride is rejected.
  const ra::tensor_view<const T, 4> q_strided(q.buf.data(), {2, 4, 3, 2}, {60, 15, 5, 2});
  const auto k2 = random_tensor<T>(2, 2, 6, 2, 210);
  EXPECT_THROW(ra::sdpa<T>(q_strided, k2.cview(), v.cview(), out.view()), ra::invalid_argument);
}

// Results do not depend on the thread count (each output row is computed by exactly one task).
TYPED_TEST(SdpaTensorTest, DeterministicAcrossThreadCounts) {
  using T = TypeParam;
  const std::size_t B = 3, H = 4, Lq = 70, Lk = 90, d = 24, dv = 16;
  const auto q = random_tensor<T>(B, H, Lq, d, 220);
  const auto k = random_tensor<T>(B, 2, Lk, d, 221);
  const auto v = random_tensor<T>(B, 2, Lk, dv, 222);
  ra::sdpa_options<T> opt;
  opt.mask.causal = true;
  opt.query_block = 16;
  tensor4<T> out1(B, H, Lq, dv), out2(B, H, Lq, dv);
  tensor4<T> w1(B, H, Lq, Lk), w2(B, H, Lq, Lk);
  ra::sdpa_extras<T> ex1, ex2;
  ex1.weights = w1.view();
  ex2.weights = w2.view();
  ra::set_num_threads(1);
  ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out1.view(), opt, ex1);
  ra::set_num_threads(2);
  ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out2.view(), opt, ex2);
  ra::set_num_threads(0);
  EXPECT_EQ(out1.buf, out2.buf);
  EXPECT_EQ(w1.buf, w2.buf);
  // Errors raised inside worker tasks reach the caller.
  auto kbad = k;
  kbad.view()(2, 1, 80, 3) = std::numeric_limits<T>::quiet_NaN();
  ra::set_num_threads(2);
  EXPECT_THROW(ra::sdpa<T>(q.cview(), kbad.cview(), v.cview(), out1.view(), opt),
               ra::non_finite_input);
  ra::set_num_threads(0);
  EXPECT_THROW(ra::set_num_threads(-1), ra::invalid_argument);
}

// The vector API and the tensor API agree (same maths, different kernels).
TYPED_TEST(SdpaTensorTest, AgreesWithVectorApi) {
  using T = TypeParam;
  const std::size_t Lk = 29, d = 21, dv = 11;
  const auto q = random_tensor<T>(1, 1, 1, d, 230);
  const auto k = random_tensor<T>(1, 1, Lk, d, 231);
  const auto v = random_tensor<T>(1, 1, Lk, dv, 232);
  tensor4<T> out(1, 1, 1, dv);
  ra::sdpa<T>(q.cview(), k.cview(), v.cview(), out.view());
  const ra::scaled_dot_product_attention<T> attn(d);
  const auto vec = attn.compute(std::span<const T>(q.buf), ra::matrix_view(k.buf.data(), Lk, d),
                                ra::matrix_view(v.buf.data(), Lk, dv));
  const auto ref = orc::reference_attention(slice(q.cview(), 0, 0), slice(k.cview(), 0, 0),
                                            slice(v.cview(), 0, 0), 1.0 / std::sqrt(double(d)));
  EXPECT_LE(orc::max_mixed_error(vec, ref.out.a), kTol<T>);
  EXPECT_LE(orc::max_mixed_error(out.buf, ref.out.a), kTol<T>);
}

}  // namespace
