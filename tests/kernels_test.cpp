// Kernel layer vs the scalar double-precision references in kernels/detail/reference/, for every
// length 0..70 and misaligned starts (offsets 0..3 elements past an aligned buffer), float and
// double.
#include "ruvector/attention/kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "ruvector/attention/kernels/detail/reference/kernels.hpp"

namespace ra = ruvector::attention;
namespace rk = ruvector::attention::kernels;
namespace ref = ruvector::attention::kernels::detail::reference;

namespace {

constexpr std::size_t kMaxLen = 70;
constexpr std::size_t kMaxOffset = 3;

template <class T>
struct tolerance;
// Relative tolerances against a double reference: float accumulations of ≤ 70 terms of O(1)
// values lose at most ~70·2^-24 ≈ 4e-6 relative to Σ|terms|; double ~70·2^-53.
template <>
struct tolerance<float> {
  static constexpr double rel = 2e-5;
};
template <>
struct tolerance<double> {
  static constexpr double rel = 1e-13;
};

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(gen));
  return v;
}

// Σ|a_i b_i| style magnitude used to scale the absolute tolerance of a reduction.
template <class T>
double abs_dot(const T* a, const T* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::abs(static_cast<double>(a[i]) * b[i]);
  return s;
}

template <class T>
class KernelTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(KernelTest, Scalars);

TYPED_TEST(KernelTest, DotMatchesReferenceAllLengthsAndOffsets) {
  using T = TypeParam;
  const auto a = random_vector<T>(kMaxLen + kMaxOffset, 1);
  const auto b = random_vector<T>(kMaxLen + kMaxOffset, 2);
  for (std::size_t off = 0; off <= kMaxOffset; ++off) {
    for (std::size_t n = 0; n <= kMaxLen; ++n) {
      const double expected = ref::dot(a.data() + off, b.data() + off, n);
      const double got = rk::dot(a.data() + off, b.data() + off, n);
      EXPECT_NEAR(got, expected,
                  tolerance<T>::rel * (1 + abs_dot(a.data() + off, b.data() + off, n)))
          << "n=" << n << " off=" << off;
    }
  }
}

TYPED_TEST(KernelTest, SumAndMaxMatchReference) {
  using T = TypeParam;
  const auto x = random_vector<T>(kMaxLen + kMaxOffset, 3);
  const std::vector<T> ones(kMaxLen + kMaxOffset, T(1));
  for (std::size_t off = 0; off <= kMaxOffset; ++off) {
    for (std::size_t n = 0; n <= kMaxLen; ++n) {
      const T* p = x.data() + off;
      EXPECT_NEAR(rk::sum(p, n), ref::sum(p, n),
                  tolerance<T>::rel * (1 + abs_dot(p, ones.data(), n)))
          << "n=" << n << " off=" << off;
      // max is exact: it selects one of its inputs.
      EXPECT_EQ(static_cast<double>(rk::max(p, n)), ref::max(p, n)) << "n=" << n << " off=" << off;
    }
  }
  EXPECT_EQ(rk::max<T>(nullptr, 0), -std::numeric_limits<T>::infinity());
}

TYPED_TEST(KernelTest, MaxFindsTheLargestAtEveryPosition) {
  using T = TypeParam;
  for (std::size_t n = 1; n <= kMaxLen; ++n) {
    for (std::size_t pos = 0; pos < n; ++pos) {
      std::vector<T> x(n, T(-5));
      x[pos] = T(7);
      ASSERT_EQ(rk::max(x.data(), n), T(7)) << "n=" << n << " pos=" << pos;
    }
  }
}

TYPED_TEST(KernelTest, AxpyAndScaleMatchReference) {
  using T = TypeParam;
  const auto x = random_vector<T>(kMaxLen + kMaxOffset, 4);
  const auto y0 = random_vector<T>(kMaxLen + kMaxOffset, 5);
  const T alpha = T(0.75);
  for (std::size_t off = 0; off <= kMaxOffset; ++off) {
    for (std::size_t n = 0; n <= kMaxLen; ++n) {
      auto y = y0;
      rk::axpy(alpha, x.data() + off, y.data() + off, n);
      const auto expected = ref::axpy(alpha, x.data() + off, y0.data() + off, n);
      for (std::size_t i = 0; i < y.size(); ++i) {
        if (i >= off && i < off + n) {
          EXPECT_NEAR(y[i], expected[i - off], 4 * std::numeric_limits<T>::epsilon() * 4);
        } else {
          EXPECT_EQ(y[i], y0[i]) << "axpy wrote outside its range at " << i;
        }
      }
      auto z = y0;
      rk::scale(alpha, z.data() + off, n);
      const auto zs = ref::scale(alpha, y0.data() + off, n);
      for (std::size_t i = 0; i < z.size(); ++i) {
        if (i >= off && i < off + n) {
          EXPECT_NEAR(z[i], zs[i - off], 2 * std::numeric_limits<T>::epsilon() * 2);
        } else {
          EXPECT_EQ(z[i], y0[i]) << "scale wrote outside its range at " << i;
        }
      }
    }
  }
}

TYPED_TEST(KernelTest, ExpMatchesStdExpOverItsRange) {
  using T = TypeParam;
  const auto x = random_vector<T>(kMaxLen + kMaxOffset, 6, -80.0, 80.0);
  for (std::size_t off = 0; off <= kMaxOffset; ++off) {
    for (std::size_t n = 0; n <= kMaxLen; ++n) {
      auto y = x;
      rk::exp_inplace(y.data() + off, n);
      const auto e = ref::exp(x.data() + off, n);
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_NEAR(y[off + i] / e[i], 1.0, 4 * std::numeric_limits<T>::epsilon())
            << "x=" << x[off + i];
      }
    }
  }
}

TYPED_TEST(KernelTest, ExpEdgeValues) {
  using T = TypeParam;
  std::vector<T> x{-std::numeric_limits<T>::infinity(), T(0), T(-1000), T(1)};
  rk::exp_inplace(x.data(), x.size());
  EXPECT_EQ(x[0], T(0));
  EXPECT_EQ(x[1], T(1));
  EXPECT_EQ(x[2], T(0));
  EXPECT_NEAR(x[3], std::exp(T(1)), 4 * std::numeric_limits<T>::epsilon());
}

TYPED_TEST(KernelTest, SoftmaxAndLogsumexpMatchReference) {
  using T = TypeParam;
  const auto x0 = random_vector<T>(kMaxLen + kMaxOffset, 7, -20.0, 20.0);
  std::vector<T> scratch(kMaxLen + kMaxOffset);
  for (std::size_t off = 0; off <= kMaxOffset; ++off) {
    for (std::size_t n = 0; n <= kMaxLen; ++n) {
      auto x = x0;
      const double lse_ref = ref::logsumexp(x0.data() + off, n);
      const T lse_nd = rk::logsumexp(x0.data() + off, n, scratch.data());
      const T lse = rk::softmax(x.data() + off, n);
      const auto p = ref::softmax(x0.data() + off, n);
      if (n == 0) {
        EXPECT_EQ(lse, -std::numeric_limits<T>::infinity());
        EXPECT_EQ(lse_nd, -std::numeric_limits<T>::infinity());
        continue;
      }
      EXPECT_NEAR(lse, lse_ref, 8 * std::numeric_limits<T>::epsilon() * (1 + std::abs(lse_ref)));
      EXPECT_NEAR(lse_nd, lse_ref, 8 * std::numeric_limits<T>::epsilon() * (1 + std::abs(lse_ref)));
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_NEAR(x[off + i], p[i], 16 * std::numeric_limits<T>::epsilon()) << "n=" << n;
      }
    }
  }
}

TYPED_TEST(KernelTest, SoftmaxHugeLogitsAndMaskedEntries) {
  using T = TypeParam;
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> x{T(1e4), T(-1e4), T(1e4) - T(1), -inf};
  const T lse = rk::softmax(x.data(), x.size());
  // Closed form: weights 1/(1+e^-1), 0, e^-1/(1+e^-1), 0; lse = 1e4 + log(1 + e^-1).
  const double e1 = std::exp(-1.0);
  EXPECT_NEAR(x[0], 1 / (1 + e1), 8 * std::numeric_limits<T>::epsilon());
  EXPECT_EQ(x[1], T(0));
  EXPECT_NEAR(x[2], e1 / (1 + e1), 8 * std::numeric_limits<T>::epsilon());
  EXPECT_EQ(x[3], T(0));
  EXPECT_NEAR(lse, 1e4 + std::log1p(e1), 1e4 * std::numeric_limits<T>::epsilon() * 2);

  std::vector<T> masked(17, -inf);
  EXPECT_EQ(rk::softmax(masked.data(), masked.size()), -inf);
  for (T w : masked) EXPECT_EQ(w, T(0));  // zeros, never NaN
}

TYPED_TEST(KernelTest, AllFiniteDetectsNanAndInfAnywhere) {
  using T = TypeParam;
  for (std::size_t n = 1; n <= kMaxLen; ++n) {
    std::vector<T> x(n, T(1));
    EXPECT_TRUE(rk::all_finite(x.data(), n));
    for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
      for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                    -std::numeric_limits<T>::infinity()}) {
        auto y = x;
        y[pos] = bad;
        EXPECT_FALSE(rk::all_finite(y.data(), n)) << "n=" << n << " pos=" << pos;
      }
    }
  }
  EXPECT_TRUE(rk::all_finite<T>(nullptr, 0));
}

TYPED_TEST(KernelTest, RowDotsMatchReference) {
  using T = TypeParam;
  for (std::size_t d : {1, 3, 8, 16, 17, 33, 64, 70}) {
    for (std::size_t n : {0, 1, 7, 8, 9, 17, 31}) {
      for (std::size_t pad : {0, 3}) {
        const std::size_t ld = d + pad;
        const auto k = random_vector<T>(n * ld + 1, 10 + d + n);
        const auto q = random_vector<T>(d + 1, 11 + d);
        std::vector<T> out(n + 1, T(-99));
        rk::row_dots(k.data() + 1, n, d, ld, q.data() + 1, T(0.5), out.data());
        const auto expected = ref::row_dots(k.data() + 1, n, d, ld, q.data() + 1, 0.5);
        for (std::size_t j = 0; j < n; ++j) {
          EXPECT_NEAR(out[j], expected[j],
                      tolerance<T>::rel * (1 + abs_dot(q.data() + 1, k.data() + 1 + j * ld, d)))
              << "d=" << d << " n=" << n << " j=" << j;
        }
        EXPECT_EQ(out[n], T(-99)) << "row_dots wrote past n";
      }
    }
  }
}

TYPED_TEST(KernelTest, RowSquaredDistancesMatchReference) {
  using T = TypeParam;
  for (std::size_t d : {1, 3, 8, 16, 17, 33, 64, 70}) {
    for (std::size_t n : {0, 1, 3, 4, 5, 9, 31}) {
      for (std::size_t pad : {0, 3}) {
        const std::size_t ld = d + pad;
        const auto k = random_vector<T>(n * ld + 1, 20 + d + n);
        auto q = random_vector<T>(d + 1, 21 + d);
        std::vector<T> out(n + 1, T(-99));
        std::vector<T> norms(n + 1, T(-99));
        rk::row_squared_distances(k.data() + 1, n, d, ld, q.data() + 1, out.data(), norms.data());
        const auto expected = ref::row_squared_distances(k.data() + 1, n, d, ld, q.data() + 1);
        const std::vector<T> zero(d, T(0));
        const auto expected_norms = ref::row_squared_distances(k.data() + 1, n, d, ld, zero.data());
        for (std::size_t j = 0; j < n; ++j) {
          // Sums of d non-negative terms: relative error ≤ d·u.
          EXPECT_NEAR(out[j], expected[j], tolerance<T>::rel * (1 + expected[j]))
              << "d=" << d << " n=" << n << " j=" << j;
          EXPECT_NEAR(norms[j], expected_norms[j], tolerance<T>::rel * (1 + expected_norms[j]));
        }
        EXPECT_EQ(out[n], T(-99)) << "row_squared_distances wrote past n";
        EXPECT_EQ(norms[n], T(-99));
        // Without the norms output, and for a key equal to the query: exactly 0.
        if (n > 0) {
          for (std::size_t c = 0; c < d; ++c) q[1 + c] = k[1 + c];
          rk::row_squared_distances(k.data() + 1, n, d, ld, q.data() + 1, out.data());
          EXPECT_EQ(out[0], T(0));
        }
      }
    }
  }
}

TYPED_TEST(KernelTest, WeightedRowSumMatchesReference) {
  using T = TypeParam;
  for (std::size_t dv : {0, 1, 5, 8, 16, 31, 48, 64, 70, 129, 200}) {
    for (std::size_t n : {0, 1, 2, 9, 33}) {
      for (double beta : {0.0, 1.0, 0.25}) {
        const std::size_t ld = dv + 2;
        const auto v = random_vector<T>(n * ld + 1, 20 + dv + n);
        const auto w = random_vector<T>(n + 1, 21 + n, 0.0, 1.0);
        auto out = random_vector<T>(dv + 2, 22 + dv);
        const auto before = out;
        if (beta == 0.0 && dv > 0) out[1] = std::numeric_limits<T>::quiet_NaN();  // ignored
        rk::weighted_row_sum(w.data(), n, v.data() + 1, dv, ld, static_cast<T>(beta),
                             out.data() + 1);
        const auto expected =
            ref::weighted_row_sum(w.data(), n, v.data() + 1, dv, ld, beta, before.data() + 1);
        for (std::size_t c = 0; c < dv; ++c) {
          EXPECT_NEAR(out[c + 1], expected[c], tolerance<T>::rel * (1 + 2 * static_cast<double>(n)))
              << "dv=" << dv << " n=" << n << " beta=" << beta << " c=" << c;
        }
        EXPECT_EQ(out[0], before[0]);
        EXPECT_EQ(out[dv + 1], before[dv + 1]) << "weighted_row_sum wrote past dv";
      }
    }
  }
}

// ---- online softmax state -------------------------------------------------------------------

template <class T>
std::vector<double> reference_attention_row(const std::vector<T>& s, const std::vector<T>& v,
                                            std::size_t dv, double* lse) {
  *lse = ref::logsumexp(s.data(), s.size());
  const auto p = ref::softmax(s.data(), s.size());
  std::vector<double> out(dv, 0.0);
  for (std::size_t j = 0; j < s.size(); ++j)
    for (std::size_t c = 0; c < dv; ++c) out[c] += p[j] * static_cast<double>(v[j * dv + c]);
  return out;
}

TYPED_TEST(KernelTest, OnlineSoftmaxEqualsOneShotForAnySplit) {
  using T = TypeParam;
  const std::size_t n = 53, dv = 19;
  const auto s0 = random_vector<T>(n, 30, -30.0, 30.0);
  const auto v = random_vector<T>(n * dv, 31);
  double lse_ref = 0;
  const auto expected = reference_attention_row(s0, v, dv, &lse_ref);
  for (std::size_t blk : {1, 2, 5, 16, 53, 64}) {
    rk::online_softmax_state<T> st(dv);
    auto s = s0;
    for (std::size_t j = 0; j < n; j += blk) {
      const std::size_t m = std::min(blk, n - j);
      st.add_block(s.data() + j, m, v.data() + j * dv, dv);
    }
    std::vector<T> out(dv);
    st.finalize(out.data());
    for (std::size_t c = 0; c < dv; ++c) {
      EXPECT_NEAR(out[c], expected[c], 1e3 * std::numeric_limits<T>::epsilon()) << "blk=" << blk;
    }
    EXPECT_NEAR(st.log_sum_exp(), lse_ref,
                64 * std::numeric_limits<T>::epsilon() * std::abs(lse_ref));
  }
}

TYPED_TEST(KernelTest, OnlineSoftmaxMergeIsExactInAnyOrderAndGrouping) {
  using T = TypeParam;
  const std::size_t n = 40, dv = 7;
  const auto s0 = random_vector<T>(n, 40, -50.0, 50.0);
  const auto v = random_vector<T>(n * dv, 41);
  double lse_ref = 0;
  const auto expected = reference_attention_row(s0, v, dv, &lse_ref);
  // Four partial states over disjoint key ranges, one of them fully masked (empty).
  const std::size_t cuts[] = {0, 9, 10, 27, 40};
  std::vector<rk::online_softmax_state<T>> parts;
  for (int p = 0; p < 4; ++p) {
    rk::online_softmax_state<T> st(dv);
    std::vector<T> s(s0.begin() + cuts[p], s0.begin() + cuts[p + 1]);
    if (p == 1) s.assign(s.size(), -std::numeric_limits<T>::infinity());  // masked part
    st.add_block(s.data(), s.size(), v.data() + cuts[p] * dv, dv);
    parts.push_back(st);
  }
  // The masked part changes the reference: recompute it with key 9 hidden.
  auto s_masked = s0;
  s_masked[9] = -std::numeric_limits<T>::infinity();
  const auto exp_masked = reference_attention_row(s_masked, v, dv, &lse_ref);
  const auto check = [&](const rk::online_softmax_state<T>& st, const char* what) {
    std::vector<T> out(dv);
    st.finalize(out.data());
    for (std::size_t c = 0; c < dv; ++c)
      EXPECT_NEAR(out[c], exp_masked[c], 1e3 * std::numeric_limits<T>::epsilon()) << what;
    EXPECT_NEAR(st.log_sum_exp(), lse_ref,
                64 * std::numeric_limits<T>::epsilon() * std::abs(lse_ref))
        << what;
  };
  auto left = parts[0];  // ((0 1) 2) 3
  left.merge(parts[1]);
  left.merge(parts[2]);
  left.merge(parts[3]);
  check(left, "left fold");
  auto a = parts[3];  // (3 2) (1 0)
  a.merge(parts[2]);
  auto b = parts[1];
  b.merge(parts[0]);
  a.merge(b);
  check(a, "reversed pairs");
  rk::online_softmax_state<T> empty(dv);  // identity element
  empty.merge(left);
  check(empty, "empty merged with all");
  (void)expected;
}

TYPED_TEST(KernelTest, OnlineSoftmaxAllMaskedGivesZerosNotNan) {
  using T = TypeParam;
  rk::online_softmax_state<T> st(3);
  std::vector<T> s(5, -std::numeric_limits<T>::infinity());
  const std::vector<T> v(15, T(1));
  st.add_block(s.data(), s.size(), v.data(), 3);
  rk::online_softmax_state<T> other(3);
  st.merge(other);
  std::vector<T> out(3, T(7));
  st.finalize(out.data());
  for (T x : out) EXPECT_EQ(x, T(0));
  EXPECT_TRUE(st.empty());
  EXPECT_EQ(st.log_sum_exp(), -std::numeric_limits<T>::infinity());
}

// exact_knn against a brute-force double oracle: all pairwise distances, sorted by (distance,
// index). Integer coordinates make float distances exact, so ties (and their index order) are
// checked exactly; random real coordinates check the distances within rounding.
std::vector<std::vector<std::pair<double, std::size_t>>> brute_force_knn(
    const std::vector<double>& x, std::size_t n, std::size_t d, std::size_t k) {
  std::vector<std::vector<std::pair<double, std::size_t>>> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, std::size_t>> all;
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double s = 0;
      for (std::size_t c = 0; c < d; ++c)
        s += (x[i * d + c] - x[j * d + c]) * (x[i * d + c] - x[j * d + c]);
      all.emplace_back(s, j);
    }
    std::sort(all.begin(), all.end());
    all.resize(k);
    out[i] = all;
  }
  return out;
}

TYPED_TEST(KernelTest, ExactKnnMatchesBruteForceWithTies) {
  using T = TypeParam;
  std::mt19937_64 gen(77);
  std::uniform_int_distribution<int> coord(-3, 3);  // a small grid: many equal distances
  for (std::size_t d : {1, 2, 5, 17}) {
    for (std::size_t n : {2, 3, 9, 40}) {
      std::vector<double> x(n * d);
      for (auto& v : x) v = coord(gen);
      ra::row_matrix<T> pts(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
      for (std::size_t i = 0; i < n * d; ++i) pts.data()[i] = static_cast<T>(x[i]);
      for (std::size_t k : {std::size_t{1}, n / 2 + 1, n - 1}) {
        if (k >= n) continue;
        const auto got = ra::exact_knn<T>(pts, k);
        const auto want = brute_force_knn(x, n, d, k);
        ASSERT_EQ(got.n, n);
        ASSERT_EQ(got.k, k);
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t m = 0; m < k; ++m) {
            EXPECT_EQ(got.neighbor(i, m), want[i][m].second) << "i=" << i << " m=" << m;
            EXPECT_EQ(static_cast<double>(got.squared_distance(i, m)), want[i][m].first);
          }
      }
    }
  }
}

TYPED_TEST(KernelTest, ExactKnnDistancesMatchOnRealCoordinates) {
  using T = TypeParam;
  const std::size_t n = 57, d = 13, k = 6;
  const auto xs = random_vector<T>(n * d, 5);
  const std::vector<double> x(xs.begin(), xs.end());
  ra::row_matrix<T> pts(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  std::copy(xs.begin(), xs.end(), pts.data());
  const auto got = ra::exact_knn<T>(pts, k);
  const auto want = brute_force_knn(x, n, d, k);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t m = 0; m < k; ++m) {
      // The m-th smallest distance agrees even where near-ties could swap two indices; each
      // returned index's own distance agrees too. Sums of d squares: relative error ≤ d·u.
      EXPECT_NEAR(got.squared_distance(i, m), want[i][m].first,
                  tolerance<T>::rel * (1 + want[i][m].first));
      double own = 0;
      const std::size_t j = got.neighbor(i, m);
      EXPECT_NE(j, i);
      for (std::size_t c = 0; c < d; ++c)
        own += (x[i * d + c] - x[j * d + c]) * (x[i * d + c] - x[j * d + c]);
      EXPECT_NEAR(got.squared_distance(i, m), own, tolerance<T>::rel * (1 + own));
    }
}

TEST(KernelKnn, RejectsBadArguments) {
  ra::row_matrix<double> pts = ra::row_matrix<double>::Random(4, 3);
  EXPECT_THROW((void)ra::exact_knn<double>(pts, 0), ra::invalid_argument);
  EXPECT_THROW((void)ra::exact_knn<double>(pts, 4), ra::invalid_argument);
  EXPECT_THROW((void)ra::exact_knn<double>(ra::row_matrix<double>(0, 3), 1), ra::invalid_argument);
  pts(2, 1) = std::nan("");
  EXPECT_THROW((void)ra::exact_knn<double>(pts, 2), ra::non_finite_input);
}

TEST(KernelArch, ReportsTheCompiledArchitecture) {
  const std::string name = rk::simd_arch_name();
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(name, xsimd::default_arch::name());
}

}  // namespace
