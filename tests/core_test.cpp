// core/: tensor views, errors and validation, masks, the seeded RNG and parallel_for.
#include "ruvector/attention/core.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "ruvector/attention/concepts.hpp"

namespace ra = ruvector::attention;

namespace {

// ---- errors and validation --------------------------------------------------------------------

TEST(Errors, EveryErrorDerivesFromTheLibraryBase) {
  EXPECT_THROW(throw ra::dimension_mismatch("x"), ra::error);
  EXPECT_THROW(throw ra::invalid_argument("x"), ra::error);
  EXPECT_THROW(throw ra::non_finite_input("x"), ra::error);
  EXPECT_THROW(throw ra::input_too_large("x"), ra::error);
  EXPECT_THROW(throw ra::invalid_config("x"), ra::error);
  EXPECT_THROW(throw ra::io_error("x"), std::runtime_error);
}

template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected exception was not thrown";
  return {};
}

TEST(Validation, MessagesNameTheArgumentAndTheExpectedValue) {
  const auto m =
      message_of<ra::dimension_mismatch>([] { ra::require_dimension("keys.cols()", 3, 4); });
  EXPECT_NE(m.find("keys.cols()"), std::string::npos) << m;
  EXPECT_NE(m.find("3"), std::string::npos) << m;
  EXPECT_NE(m.find("expected 4"), std::string::npos) << m;
  EXPECT_NO_THROW(ra::require_dimension("x", 5, 5));

  EXPECT_NE(message_of<ra::invalid_argument>([] { ra::require_non_empty("keys", 0); }).find("keys"),
            std::string::npos);
  EXPECT_NO_THROW(ra::require_non_empty("keys", 1));
  EXPECT_NE(message_of<ra::input_too_large>([] { ra::require_at_most("n", 11, 10); }).find("10"),
            std::string::npos);
  EXPECT_NO_THROW(ra::require_at_most("n", 10, 10));
  EXPECT_THROW(ra::require_config(false, "heads"), ra::invalid_config);
}

TEST(Validation, RequireFiniteNamesTheFirstBadIndex) {
  const std::vector<double> ok{1.0, -2.0, 0.0};
  EXPECT_NO_THROW(ra::require_finite<double>("q", ok));
  const std::vector<double> bad{1.0, NAN, INFINITY};
  const auto m = message_of<ra::non_finite_input>([&] { ra::require_finite<double>("q", bad); });
  EXPECT_NE(m.find("q[1]"), std::string::npos) << m;
  // Row-strided matrix form names row and column; padding between rows is ignored.
  std::vector<float> mat{1, 2, NAN /*pad*/, 3, INFINITY, 0 /*pad*/};
  EXPECT_NO_THROW(ra::require_finite("k", mat.data(), 1, 2, 3));
  const auto m2 =
      message_of<ra::non_finite_input>([&] { ra::require_finite("k", mat.data(), 2, 2, 3); });
  EXPECT_NE(m2.find("k[1][1]"), std::string::npos) << m2;
}

// ---- views -----------------------------------------------------------------------------------

TEST(TensorView, ContiguousStridesAndIndexing) {
  std::vector<int> buf(2 * 3 * 4 * 5);
  std::iota(buf.begin(), buf.end(), 0);
  const auto t = ra::make_tensor_view(buf.data(), 2, 3, 4, 5);
  EXPECT_EQ(t.strides(), (std::array<std::ptrdiff_t, 4>{60, 20, 5, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.size(), 120u);
  EXPECT_EQ(t(1, 2, 3, 4), 1 * 60 + 2 * 20 + 3 * 5 + 4);
  EXPECT_EQ(t.row(1, 0, 2), buf.data() + 60 + 10);
  const ra::tensor_view<const int, 4> c = t;  // mutable → const conversion
  EXPECT_EQ(c(0, 1, 1, 1), 26);
  EXPECT_TRUE((ra::tensor_view<const float, 4>{}.absent()));
}

TEST(TensorView, ZeroStrideBroadcastsAndCustomStridesSelectSlices) {
  std::vector<float> row{1, 2, 3};
  const ra::tensor_view<const float, 3> b(row.data(), {4, 2, 3}, {0, 0, 1});
  EXPECT_FALSE(b.is_contiguous());
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 2; ++j) EXPECT_EQ(b(i, j, 2), 3.0f);
  // [L, H*dh] viewed as [H, L, dh] by strides (the zero-copy head split).
  std::vector<int> x(3 * 4);
  std::iota(x.begin(), x.end(), 0);  // L = 3 rows of H*dh = 2*2
  const ra::tensor_view<int, 3> heads(x.data(), {2, 3, 2}, {2, 4, 1});
  EXPECT_EQ(heads(1, 2, 0), 2 * 4 + 2);
}

TEST(MatrixView, RawBuffersAndVectorsOfVectors) {
  std::vector<float> buf{1, 2, 9, 3, 4, 9};
  const auto m = ra::matrix_view(buf.data(), 2, 2, 3);
  EXPECT_EQ(m(1, 0), 3.0f);
  const ra::matrix_cref<float> ref = m;  // binds without copying
  EXPECT_EQ(ref.data(), buf.data());
  EXPECT_EQ(ref.outerStride(), 3);
  const auto mm = ra::to_matrix<double>({{1, 2}, {3, 4}, {5, 6}});
  EXPECT_EQ(mm.rows(), 3);
  EXPECT_EQ(mm(2, 1), 6.0);
  const auto msg = message_of<ra::dimension_mismatch>([] {
    (void)ra::to_matrix<double>({{1, 2}, {3}}, "keys");
  });
  EXPECT_NE(msg.find("keys[1]"), std::string::npos) << msg;
}

// ---- masks -----------------------------------------------------------------------------------

TEST(Masks, CausalIsBottomRightAligned) {
  // Brute force from the definition: query i of Lq sees key j iff j <= i + (Lk - Lq).
  for (std::size_t lq = 1; lq <= 6; ++lq) {
    for (std::size_t lk = 0; lk <= 6; ++lk) {
      const auto m = ra::make_causal_mask(lq, lk);
      for (std::size_t i = 0; i < lq; ++i) {
        std::size_t visible = 0;
        for (std::size_t j = 0; j < lk; ++j) {
          const bool expected = static_cast<long>(j) <= static_cast<long>(i) +
                                                            static_cast<long>(lk) -
                                                            static_cast<long>(lq);
          EXPECT_EQ(m[i * lk + j], expected) << lq << "x" << lk << " i=" << i << " j=" << j;
          visible += expected;
        }
        EXPECT_EQ(ra::causal_visible_keys(i, lq, lk), visible);
      }
    }
  }
}

TEST(Masks, LengthMaskHidesPadding) {
  const std::vector<std::size_t> lengths{0, 2, 4};
  const auto m = ra::make_length_mask(lengths, 3);
  const bool expected[] = {false, false, false, true, true, false, true, true, true};
  for (std::size_t i = 0; i < 9; ++i) EXPECT_EQ(m[i], expected[i]) << i;
}

// ---- rng -------------------------------------------------------------------------------------

TEST(Rng, SameSeedSameStreamDifferentSeedDifferentStream) {
  ra::rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a();
    EXPECT_EQ(x, b());
    differs |= x != c();
  }
  EXPECT_TRUE(differs);
  a.reseed(7);
  b.reseed(7);
  EXPECT_EQ(a.normal<double>(), b.normal<double>());
  static_assert(std::uniform_random_bit_generator<ra::rng>);
}

TEST(Rng, UniformAndNormalMomentsMatchTheirDistributions) {
  ra::rng g(123);
  constexpr int n = 200000;
  double s = 0, s2 = 0, ns = 0, ns2 = 0, ns4 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = g.uniform(-1.0, 3.0);
    ASSERT_GE(u, -1.0);
    ASSERT_LT(u, 3.0);
    s += u;
    s2 += u * u;
    const double z = g.normal(2.0, 0.5);
    ns += z;
    ns2 += z * z;
    ns4 += std::pow((z - 2.0) / 0.5, 4);
  }
  // U(-1,3): mean 1, variance 16/12. N(2, 0.5²): mean 2, variance 0.25, kurtosis 3.
  // Tolerances are ~5 standard errors of the estimators at n = 2e5.
  EXPECT_NEAR(s / n, 1.0, 5 * std::sqrt(16.0 / 12 / n));
  EXPECT_NEAR(s2 / n - (s / n) * (s / n), 16.0 / 12, 0.02);
  EXPECT_NEAR(ns / n, 2.0, 5 * 0.5 / std::sqrt(n));
  EXPECT_NEAR(ns2 / n - (ns / n) * (ns / n), 0.25, 0.004);
  EXPECT_NEAR(ns4 / n, 3.0, 0.1);
}

TEST(Rng, BelowIsUnbiasedChiSquare) {
  ra::rng g(9);
  constexpr int k = 7, n = 70000;
  int counts[k] = {};
  for (int i = 0; i < n; ++i) {
    const auto x = g.below(k);
    ASSERT_LT(x, static_cast<std::uint64_t>(k));
    ++counts[x];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / double(k)) * (c - n / double(k)) / (n / double(k));
  EXPECT_LT(chi2, 22.46);  // χ²(6) at p = 0.001
}

// ---- parallel_for ----------------------------------------------------------------------------

TEST(ParallelFor, VisitsEveryIndexExactlyOnceForAnyThreadCount) {
  for (int threads : {0, 1, 2, 3}) {
    ra::set_num_threads(threads);
    std::vector<std::atomic<int>> hits(1000);
    ra::parallel_for(0, hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); });
    for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
    EXPECT_GE(ra::num_threads(), 1);
  }
  ra::set_num_threads(0);
  int calls = 0;
  ra::parallel_for(5, 5, [&](std::size_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ParallelFor, RethrowsTheIterationsException) {
  ra::set_num_threads(2);
  EXPECT_THROW(ra::parallel_for(0, 100,
                                [](std::size_t i) {
                                  if (i == 57) throw ra::invalid_argument("boom");
                                }),
               ra::invalid_argument);
  ra::set_num_threads(0);
  EXPECT_THROW(ra::set_num_threads(-1), ra::invalid_argument);
}

TEST(Version, MacrosAndStringAgree) {
  const std::string expected = std::to_string(RUVECTOR_ATTENTION_VERSION_MAJOR) + "." +
                               std::to_string(RUVECTOR_ATTENTION_VERSION_MINOR) + "." +
                               std::to_string(RUVECTOR_ATTENTION_VERSION_PATCH);
  EXPECT_EQ(expected, ra::version_string);
}

static_assert(ra::attention_scalar<float> && ra::attention_scalar<double>);
static_assert(!ra::attention_scalar<int>);
static_assert(ra::key_mask_view<ra::tensor_view<const bool, 2>>);

}  // namespace
