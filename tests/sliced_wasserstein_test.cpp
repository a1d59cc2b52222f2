// Sliced-Wasserstein distances and attention (transport/sliced_wasserstein.hpp) for float and
// double, against independent double-precision oracles written below from the mathematics (the
// oracle namespace uses only the standard library and calls no library code):
//
// - 1-D W_p^p by the quantile functions evaluated on the merged breakpoint grid in floating point
//   (t_k = sorted union of {i/n} ∪ {j/m}, F^{-1}(t) = x_(⌈t·n⌉−1) at segment midpoints) — a
//   different evaluation from the library's integer merge; for p = 1 additionally by the CDF
//   formula W_1 = ∫ |F_x(s) − F_y(s)| ds over the real line; hand closed forms.
// - SW_p^p by projecting in double, sorting and calling the 1-D oracle per direction.
// - Attention by SW oracle → max-subtracted softmax → weighted value sum, all in double, with the
//   first-stage filter recomputed as means in double and a full sort of mean·mean.
//
// Tolerances (absolute on O(1) quantities; inputs are N(0,1)/uniform values, d ≤ 32):
// - float 2e-4: a projection of a d-vector accumulates ~√d·2^-24·‖x‖ ≈ 1e-6 of rounding; SW_2^2
//   is a sum of products of O(1) differences, so its error stays ~1e-5; the
//   softmax weights and the outputs inherit that relative error. Any real mistake (a wrong
//   breakpoint, a missing 1/P, a swapped sort) moves values by ≥ 1e-2.
// - double 1e-10, the same argument with 2^-53 (expected errors ~1e-14).
// The oracle always sees exactly the values (rounded to T) that the library sees.
#include "ruvector/attention/transport/sliced_wasserstein.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"

namespace ra = ruvector::attention;

// ================================================================================================
// Oracle (standard library only)
// ================================================================================================
namespace sw_oracle {

using dvec = std::vector<double>;
using dmat = std::vector<dvec>;  // rows

// W_p^p by the quantile functions on the merged breakpoint grid (floating breakpoints).
inline double w1d_quantile(dvec x, dvec y, double p) {
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  const double n = static_cast<double>(x.size()), m = static_cast<double>(y.size());
  std::vector<double> t{0.0, 1.0};
  for (std::size_t i = 1; i < x.size(); ++i) t.push_back(static_cast<double>(i) / n);
  for (std::size_t j = 1; j < y.size(); ++j) t.push_back(static_cast<double>(j) / m);
  std::sort(t.begin(), t.end());
  const auto quantile = [](const dvec& s, double u) {
    auto k = static_cast<long>(std::ceil(u * static_cast<double>(s.size()))) - 1;
    k = std::clamp<long>(k, 0, static_cast<long>(s.size()) - 1);
    return s[static_cast<std::size_t>(k)];
  };
  double acc = 0;
  for (std::size_t k = 0; k + 1 < t.size(); ++k) {
    const double len = t[k + 1] - t[k];
    if (len <= 0) continue;
    const double mid = 0.5 * (t[k] + t[k + 1]);
    acc += len * std::pow(std::abs(quantile(x, mid) - quantile(y, mid)), p);
  }
  return acc;
}

// W_1 = ∫ |F_x(s) − F_y(s)| ds (CDF form; independent of the quantile construction).
inline double w1_cdf(dvec x, dvec y) {
  dvec all = x;
  all.insert(all.end(), y.begin(), y.end());
  std::sort(all.begin(), all.end());
  const auto cdf = [](const dvec& s, double v) {
    double c = 0;
    for (double e : s) c += e <= v ? 1.0 : 0.0;
    return c / static_cast<double>(s.size());
  };
  double acc = 0;
  for (std::size_t k = 0; k + 1 < all.size(); ++k)
    acc += (all[k + 1] - all[k]) * std::abs(cdf(x, all[k]) - cdf(y, all[k]));
  return acc;
}

inline double dot(const dvec& a, const dvec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline dvec unit(dvec v) {
  const double n = std::sqrt(dot(v, v));
  for (auto& e : v) e /= n;
  return v;
}

// SW_p^p: mean over (normalised) directions of W_p^p of the projections.
inline double sliced(const dmat& x, const dmat& y, const dmat& dirs, double p) {
  double acc = 0;
  for (const auto& raw : dirs) {
    const dvec th = unit(raw);
    dvec px, py;
    for (const auto& r : x) px.push_back(dot(r, th));
    for (const auto& r : y) py.push_back(dot(r, th));
    acc += w1d_quantile(px, py, p);
  }
  return acc / static_cast<double>(dirs.size());
}

inline dvec mean(const dmat& x) {
  dvec m(x.front().size(), 0.0);
  for (const auto& r : x)
    for (std::size_t c = 0; c < m.size(); ++c) m[c] += r[c];
  for (auto& e : m) e /= static_cast<double>(x.size());
  return m;
}

struct attention_ref {
  dvec output, weights, distances;  // distances over all N sets
  std::vector<std::size_t> candidates;
};

// Brute-force SW attention; c = 0 or c >= N scores every set.
inline attention_ref attention(const dmat& q, const std::vector<dmat>& keys, const dmat& values,
                               const dmat& dirs, double p, double tau, std::size_t c) {
  const std::size_t n = keys.size();
  attention_ref r;
  r.weights.assign(n, 0.0);
  r.distances.assign(n, 0.0);
  std::vector<std::size_t> cand(n);
  std::iota(cand.begin(), cand.end(), std::size_t{0});
  if (c > 0 && c < n) {
    const dvec qm = mean(q);
    dvec f(n);
    for (std::size_t j = 0; j < n; ++j) f[j] = dot(qm, mean(keys[j]));
    std::stable_sort(cand.begin(), cand.end(),
                     [&](std::size_t a, std::size_t b) { return f[a] > f[b]; });
    cand.resize(c);
  }
  r.candidates = cand;
  double mx = -std::numeric_limits<double>::infinity();
  for (std::size_t j : cand) {
    r.distances[j] = sliced(q, keys[j], dirs, p);
    mx = std::max(mx, -r.distances[j] / tau);
  }
  double z = 0;
  for (std::size_t j : cand) z += std::exp(-r.distances[j] / tau - mx);
  r.output.assign(values.front().size(), 0.0);
  for (std::size_t j : cand) {
    r.weights[j] = std::exp(-r.distances[j] / tau - mx) / z;
    for (std::size_t k = 0; k < r.output.size(); ++k) r.output[k] += r.weights[j] * values[j][k];
  }
  return r;
}

}  // namespace sw_oracle

namespace {

namespace orc = sw_oracle;
using orc::dmat;
using orc::dvec;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 2e-4 : 1e-10;

static_assert(ra::attention_mechanism<ra::sliced_wasserstein_attention<float>>);
static_assert(ra::attention_mechanism<ra::sliced_wasserstein_attention<double>>);

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

template <class E, class F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no exception thrown";
  return {};
}

// Random values already rounded to T (so oracle and library see the same inputs).
template <class T>
dvec rvec(std::mt19937& g, std::size_t n, double sd = 1.0, double mu = 0.0) {
  std::normal_distribution<double> nd(mu, sd);
  dvec v(n);
  for (auto& e : v) e = static_cast<double>(static_cast<T>(nd(g)));
  return v;
}
template <class T>
dmat rmat(std::mt19937& g, std::size_t rows, std::size_t cols, double sd = 1.0) {
  dmat m(rows);
  for (auto& r : m) r = rvec<T>(g, cols, sd);
  return m;
}
// Unit directions rounded to T (the library renormalises them; the oracle normalises in double).
template <class T>
dmat rdirs(std::mt19937& g, std::size_t P, std::size_t d) {
  dmat m(P);
  for (auto& r : m) {
    r = orc::unit(rvec<double>(g, d));
    for (auto& e : r) e = static_cast<double>(static_cast<T>(e));
  }
  return m;
}

template <class T>
ra::row_matrix<T> to_mat(const dmat& m) {
  ra::row_matrix<T> out(static_cast<Eigen::Index>(m.size()),
                        static_cast<Eigen::Index>(m.empty() ? 0 : m.front().size()));
  for (std::size_t i = 0; i < m.size(); ++i)
    for (std::size_t c = 0; c < m[i].size(); ++c)
      out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) = static_cast<T>(m[i][c]);
  return out;
}
template <class T>
std::vector<T> to_vec(const dvec& v) {
  return std::vector<T>(v.begin(), v.end());
}
template <class T>
ra::vector_sets<T> to_sets(const std::vector<dmat>& sets) {
  dmat all;
  std::vector<std::size_t> off{0};
  for (const auto& s : sets) {
    all.insert(all.end(), s.begin(), s.end());
    off.push_back(all.size());
  }
  return ra::vector_sets<T>(to_mat<T>(all), off);
}

template <class T>
class Wasserstein1DTest : public ::testing::Test {};
template <class T>
class SlicedWassersteinTest : public ::testing::Test {};
template <class T>
class SwAttentionTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Wasserstein1DTest, Scalars);
TYPED_TEST_SUITE(SlicedWassersteinTest, Scalars);
TYPED_TEST_SUITE(SwAttentionTest, Scalars);

// ================================================================================================
// 1-D Wasserstein
// ================================================================================================

// {0} vs {a, b}: the single atom is transported half to a, half to b: W_p^p = (|a|^p + |b|^p)/2.
TYPED_TEST(Wasserstein1DTest, SingletonVersusPairClosedForm) {
  using T = TypeParam;
  const std::vector<T> x{T(0)}, y{T(1.5), T(-2.25)};
  for (double p : {1.0, 2.0, 3.0, 1.5}) {
    const double expected = 0.5 * (std::pow(1.5, p) + std::pow(2.25, p));
    EXPECT_NEAR(ra::wasserstein_1d_pp<T>(x, y, T(p)), expected, kTol<T> * expected) << "p=" << p;
    EXPECT_NEAR(ra::wasserstein_1d_pp<T>(y, x, T(p)), expected, kTol<T> * expected) << "p=" << p;
  }
}

// {0, 1} vs {0, 1, 2} by hand: quantiles differ by 1 on (1/3, 1/2] and (2/3, 1] → 1/6 + 1/3.
TYPED_TEST(Wasserstein1DTest, HandComputedUnequalSizes) {
  using T = TypeParam;
  const std::vector<T> x{T(1), T(0)}, y{T(2), T(0), T(1)};
  EXPECT_NEAR(ra::wasserstein_1d_pp<T>(x, y, T(1)), 0.5, kTol<T>);
  EXPECT_NEAR(ra::wasserstein_1d_pp<T>(x, y, T(2)), 0.5, kTol<T>);
  EXPECT_NEAR(ra::wasserstein_1d_pp<T>(x, y, T(2.5)), 0.5, kTol<T>);
}

// Equal sizes: (1/n)·Σ|x_(i) − y_(i)|^p of the sorted values (inputs given unsorted).
TYPED_TEST(Wasserstein1DTest, EqualSizesAreSortedMatching) {
  using T = TypeParam;
  std::mt19937 g(7);
  for (std::size_t n : {1u, 3u, 8u, 17u, 64u, 129u}) {
    const dvec x = rvec<T>(g, n), y = rvec<T>(g, n, 2.0);
    dvec xs = x, ys = y;
    std::sort(xs.begin(), xs.end());
    std::sort(ys.begin(), ys.end());
    for (double p : {1.0, 2.0, 1.7}) {
      double e = 0;
      for (std::size_t i = 0; i < n; ++i) e += std::pow(std::abs(xs[i] - ys[i]), p);
      e /= static_cast<double>(n);
      const auto got = ra::wasserstein_1d_pp<T>(to_vec<T>(x), to_vec<T>(y), T(p));
      EXPECT_NEAR(got, e, kTol<T> * std::max(1.0, e)) << "n=" << n << " p=" << p;
    }
  }
}

// Unequal sizes vs the quantile-grid oracle, and for p = 1 also vs the CDF integral.
TYPED_TEST(Wasserstein1DTest, UnequalSizesMatchQuantileAndCdfOracles) {
  using T = TypeParam;
  std::mt19937 g(11);
  std::uniform_int_distribution<std::size_t> size(1, 13);
  for (int rep = 0; rep < 60; ++rep) {
    const dvec x = rvec<T>(g, size(g)), y = rvec<T>(g, size(g), 1.5, 0.5);
    for (double p : {1.0, 2.0, 1.3, 3.0}) {
      const double e = orc::w1d_quantile(x, y, p);
      const auto got = ra::wasserstein_1d_pp<T>(to_vec<T>(x), to_vec<T>(y), T(p));
      EXPECT_NEAR(got, e, kTol<T> * std::max(1.0, e))
          << "n=" << x.size() << " m=" << y.size() << " p=" << p;
    }
    EXPECT_NEAR(orc::w1d_quantile(x, y, 1.0), orc::w1_cdf(x, y), 1e-12);  // oracles agree
    EXPECT_NEAR(ra::wasserstein_1d_pp<T>(to_vec<T>(x), to_vec<T>(y), T(1)), orc::w1_cdf(x, y),
                kTol<T> * std::max(1.0, orc::w1_cdf(x, y)));
  }
}

// A measure does not change when every atom is repeated k times: W(x, x^{×k}) = 0 and
// W(x^{×2}, y^{×3}) = W(x, y) — unequal sizes with an exact answer.
TYPED_TEST(Wasserstein1DTest, ReplicationInvariance) {
  using T = TypeParam;
  std::mt19937 g(3);
  const dvec x = rvec<T>(g, 5), y = rvec<T>(g, 4);
  dvec x2, y3, x3;
  for (int k = 0; k < 2; ++k) x2.insert(x2.end(), x.begin(), x.end());
  for (int k = 0; k < 3; ++k) y3.insert(y3.end(), y.begin(), y.end());
  for (int k = 0; k < 3; ++k) x3.insert(x3.end(), x.begin(), x.end());
  for (double p : {1.0, 2.0, 1.5}) {
    EXPECT_EQ(ra::wasserstein_1d_pp<T>(to_vec<T>(x), to_vec<T>(x3), T(p)), T(0));
    const double e = orc::w1d_quantile(x, y, p);
    EXPECT_NEAR(ra::wasserstein_1d_pp<T>(to_vec<T>(x2), to_vec<T>(y3), T(p)), e,
                kTol<T> * std::max(1.0, e));
  }
}

TYPED_TEST(Wasserstein1DTest, ZeroOnSelfAndSymmetric) {
  using T = TypeParam;
  std::mt19937 g(5);
  const auto x = to_vec<T>(rvec<T>(g, 9)), y = to_vec<T>(rvec<T>(g, 4));
  EXPECT_EQ(ra::wasserstein_1d_pp<T>(x, x, T(2)), T(0));
  for (double p : {1.0, 2.0, 2.5})
    EXPECT_NEAR(ra::wasserstein_1d_pp<T>(x, y, T(p)), ra::wasserstein_1d_pp<T>(y, x, T(p)),
                kTol<T>);
}

TYPED_TEST(Wasserstein1DTest, Validation) {
  using T = TypeParam;
  const std::vector<T> x{T(1), T(2)}, empty;
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_argument>([&] { (void)ra::wasserstein_1d_pp<T>(empty, x, T(1)); }), "x");
  thrown<ra::invalid_argument>([&] { (void)ra::wasserstein_1d_pp<T>(x, empty, T(1)); });
  const std::vector<T> bad{T(1), std::numeric_limits<T>::quiet_NaN()};
  EXPECT_MESSAGE_HAS(
      thrown<ra::non_finite_input>([&] { (void)ra::wasserstein_1d_pp<T>(x, bad, T(1)); }), "y[1]");
  thrown<ra::non_finite_input>([&] {
    (void)ra::wasserstein_1d_pp<T>(std::vector<T>{std::numeric_limits<T>::infinity()}, x, T(1));
  });
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([&] { (void)ra::wasserstein_1d_pp<T>(x, x, T(0.5)); }),
      "p must be");
  thrown<ra::invalid_config>(
      [&] { (void)ra::wasserstein_1d_pp<T>(x, x, std::numeric_limits<T>::quiet_NaN()); });
}

// ================================================================================================
// Sliced Wasserstein
// ================================================================================================

// With the single direction e_1, SW is the 1-D W of the first coordinates.
TYPED_TEST(SlicedWassersteinTest, SingleAxisDirectionIsOneDimensional) {
  using T = TypeParam;
  std::mt19937 g(1);
  const dmat x = rmat<T>(g, 6, 5), y = rmat<T>(g, 4, 5);
  dmat e1{dvec(5, 0.0)};
  e1[0][0] = 1.0;
  dvec x0, y0;
  for (const auto& r : x) x0.push_back(r[0]);
  for (const auto& r : y) y0.push_back(r[0]);
  for (double p : {1.0, 2.0, 1.5}) {
    const double e = orc::w1d_quantile(x0, y0, p);
    EXPECT_NEAR(ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), to_mat<T>(e1), T(p)), e,
                kTol<T> * std::max(1.0, e));
  }
}

// Random shapes (different set sizes), directions and p vs the brute-force double oracle.
TYPED_TEST(SlicedWassersteinTest, MatchesBruteForceOracle) {
  using T = TypeParam;
  std::mt19937 g(2);
  std::uniform_int_distribution<std::size_t> size(1, 10), dim(1, 24), np(1, 20);
  for (int rep = 0; rep < 30; ++rep) {
    const std::size_t d = dim(g);
    const dmat x = rmat<T>(g, size(g), d), y = rmat<T>(g, size(g), d, 2.0);
    const dmat dirs = rdirs<T>(g, np(g), d);
    for (double p : {1.0, 2.0, 1.5}) {
      const double e = orc::sliced(x, y, dirs, p);
      EXPECT_NEAR(ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), to_mat<T>(dirs), T(p)),
                  e, kTol<T> * std::max(1.0, e))
          << "rep=" << rep << " n=" << x.size() << " m=" << y.size() << " d=" << d;
    }
  }
}

// Non-unit caller directions are normalised: scaling a direction changes nothing.
TYPED_TEST(SlicedWassersteinTest, CallerDirectionsAreNormalised) {
  using T = TypeParam;
  std::mt19937 g(4);
  const dmat x = rmat<T>(g, 5, 6), y = rmat<T>(g, 7, 6);
  dmat dirs = rdirs<T>(g, 5, 6);
  const double e = orc::sliced(x, y, dirs, 2.0);
  for (auto& r : dirs)
    for (auto& v : r) v *= 3.0;  // exact in binary floating point
  EXPECT_NEAR(ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), to_mat<T>(dirs), T(2)), e,
              kTol<T> * std::max(1.0, e));
}

TYPED_TEST(SlicedWassersteinTest, PermutationOfSetElementsChangesNothing) {
  using T = TypeParam;
  std::mt19937 g(6);
  dmat x = rmat<T>(g, 9, 8), y = rmat<T>(g, 5, 8);
  const auto dirs = to_mat<T>(rdirs<T>(g, 16, 8));
  const T before = ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), dirs, T(2));
  std::shuffle(x.begin(), x.end(), g);
  std::shuffle(y.begin(), y.end(), g);
  EXPECT_EQ(ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), dirs, T(2)), before);
}

// ⟨xR, θR⟩ = ⟨x, θ⟩ for orthogonal R: rotating both sets and the directions changes nothing.
TYPED_TEST(SlicedWassersteinTest, JointRotationInvariance) {
  using T = TypeParam;
  std::mt19937 g(8);
  const std::size_t d = 6;
  const dmat x = rmat<T>(g, 7, d), y = rmat<T>(g, 4, d), dirs = rdirs<T>(g, 10, d);
  // Random orthogonal R by Gram–Schmidt (twice) on Gaussian rows.
  dmat r = rmat<double>(g, d, d);
  for (std::size_t i = 0; i < d; ++i)
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t k = 0; k < i; ++k) {
        const double c = orc::dot(r[i], r[k]);
        for (std::size_t j = 0; j < d; ++j) r[i][j] -= c * r[k][j];
      }
      r[i] = orc::unit(r[i]);
    }
  const auto rot = [&](const dmat& m) {
    dmat out(m.size(), dvec(d, 0.0));
    for (std::size_t i = 0; i < m.size(); ++i)
      for (std::size_t j = 0; j < d; ++j) {
        for (std::size_t k = 0; k < d; ++k) out[i][j] += m[i][k] * r[k][j];
        out[i][j] = static_cast<double>(static_cast<T>(out[i][j]));
      }
    return out;
  };
  for (double p : {1.0, 2.0}) {
    const T a = ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), to_mat<T>(dirs), T(p));
    const T b = ra::sliced_wasserstein_pp<T>(to_mat<T>(rot(x)), to_mat<T>(rot(y)),
                                             to_mat<T>(rot(dirs)), T(p));
    EXPECT_NEAR(a, b, 2 * kTol<T> * std::max(1.0, double(a)));
  }
}

TYPED_TEST(SlicedWassersteinTest, CommonTranslationChangesNothing) {
  using T = TypeParam;
  std::mt19937 g(9);
  dmat x = rmat<T>(g, 6, 5), y = rmat<T>(g, 8, 5);
  const auto dirs = to_mat<T>(rdirs<T>(g, 12, 5));
  const T before = ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), dirs, T(1));
  const dvec t{0.5, -1.25, 2.0, 0.75, -0.5};  // exact in T
  for (auto* m : {&x, &y})
    for (auto& r : *m)
      for (std::size_t c = 0; c < 5; ++c) r[c] = static_cast<double>(static_cast<T>(r[c] + t[c]));
  EXPECT_NEAR(ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), dirs, T(1)), before,
              4 * kTol<T>);
}

// In 1-D, W_2²(x + c, y) = W_2²(x, y) + 2c(x̄ − ȳ) + c² for any sizes (∫F^{-1} = mean), so
// translating X by t gives SW_2² + mean_l [2⟨t,θ_l⟩⟨x̄ − ȳ, θ_l⟩ + ⟨t,θ_l⟩²].
TYPED_TEST(SlicedWassersteinTest, TranslatingOneSetAddsTheKnownAmountForP2) {
  using T = TypeParam;
  std::mt19937 g(10);
  for (auto [n, m] : {std::pair<std::size_t, std::size_t>{6, 6}, {5, 9}}) {
    dmat x = rmat<T>(g, n, 4), y = rmat<T>(g, m, 4);
    const dmat dirs = rdirs<T>(g, 15, 4);
    const T before =
        ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), to_mat<T>(dirs), T(2));
    const dvec t{1.5, -0.75, 0.25, 2.0};
    const dvec xm = orc::mean(x), ym = orc::mean(y);
    dvec diff(4);
    for (std::size_t c = 0; c < 4; ++c) diff[c] = xm[c] - ym[c];
    double add = 0;
    for (const auto& th : dirs) {
      const dvec u = orc::unit(th);
      add += 2 * orc::dot(t, u) * orc::dot(diff, u) + orc::dot(t, u) * orc::dot(t, u);
    }
    add /= static_cast<double>(dirs.size());
    for (auto& r : x)
      for (std::size_t c = 0; c < 4; ++c) r[c] = static_cast<double>(static_cast<T>(r[c] + t[c]));
    const T after = ra::sliced_wasserstein_pp<T>(to_mat<T>(x), to_mat<T>(y), to_mat<T>(dirs), T(2));
    EXPECT_NEAR(double(after) - double(before), add, 10 * kTol<T>) << n << "x" << m;
  }
}

TYPED_TEST(SlicedWassersteinTest, ZeroOnSelfAndSymmetric) {
  using T = TypeParam;
  std::mt19937 g(12);
  const auto x = to_mat<T>(rmat<T>(g, 7, 9)), y = to_mat<T>(rmat<T>(g, 3, 9));
  for (double p : {1.0, 2.0, 1.5}) {
    EXPECT_EQ(ra::sliced_wasserstein_pp<T>(x, x, 24, T(p), 3), T(0));
    EXPECT_NEAR(ra::sliced_wasserstein_pp<T>(x, y, 24, T(p), 3),
                ra::sliced_wasserstein_pp<T>(y, x, 24, T(p), 3), kTol<T>);
    EXPECT_GT(ra::sliced_wasserstein_pp<T>(x, y, 24, T(p), 3), T(0.01));
  }
}

// Two Gaussians with the same covariance: each 1-D W_2² → ⟨μ1 − μ2, θ⟩², so for many samples
// SW_2² → mean_l ⟨Δμ, θ_l⟩² (≈ ‖Δμ‖²/d over many directions). Finite-sample bias is O(1/√n)
// per direction ⇒ tolerance 0.06 at n = 3000 (observed ≈ 0.01).
TEST(SlicedWassersteinMonteCarlo, GaussiansApproachMeanShift) {
  std::mt19937 g(13);
  const std::size_t d = 4, n = 3000;
  const dvec mu1{2.0, 0.0, -1.0, 0.5}, mu2{0.0, 0.0, 0.0, 0.0};
  dmat x(n, dvec(d)), y(n, dvec(d));
  std::normal_distribution<double> nd(0, 1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < d; ++c) x[i][c] = mu1[c] + nd(g), y[i][c] = mu2[c] + nd(g);
  const auto dirs = ra::random_directions<double>(d, 200, 77);
  double expected = 0;
  for (Eigen::Index l = 0; l < dirs.rows(); ++l) {
    double s = 0;
    for (std::size_t c = 0; c < d; ++c)
      s += (mu1[c] - mu2[c]) * dirs(l, static_cast<Eigen::Index>(c));
    expected += s * s;
  }
  expected /= static_cast<double>(dirs.rows());
  const double got =
      ra::sliced_wasserstein_pp<double>(to_mat<double>(x), to_mat<double>(y), dirs, 2.0);
  EXPECT_NEAR(got, expected, 0.06);
  EXPECT_NEAR(expected, 5.25 / 4.0, 0.35);  // ‖Δμ‖²/d within the Monte-Carlo spread of 200 dirs
}

TYPED_TEST(SlicedWassersteinTest, RandomDirectionsAreUnitReproducibleAndIsotropic) {
  using T = TypeParam;
  const auto a = ra::random_directions<T>(4, 4000, 42), b = ra::random_directions<T>(4, 4000, 42);
  const auto c = ra::random_directions<T>(4, 4000, 43);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  double m[4][4] = {};
  for (Eigen::Index l = 0; l < a.rows(); ++l) {
    double nrm = 0;
    for (int i = 0; i < 4; ++i) {
      nrm += double(a(l, i)) * double(a(l, i));
      for (int j = 0; j < 4; ++j) m[i][j] += double(a(l, i)) * double(a(l, j));
    }
    EXPECT_NEAR(nrm, 1.0, 1e-6);
  }
  // E[θθᵀ] = I/d; 4000 draws ⇒ entries within ~4·0.01 of it.
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(m[i][j] / 4000.0, i == j ? 0.25 : 0.0, 0.03);
}

TYPED_TEST(SlicedWassersteinTest, Validation) {
  using T = TypeParam;
  const ra::row_matrix<T> x = ra::row_matrix<T>::Ones(3, 4), y = ra::row_matrix<T>::Ones(2, 4);
  const ra::row_matrix<T> y5 = ra::row_matrix<T>::Ones(2, 5), empty(0, 4);
  const ra::row_matrix<T> dirs = ra::row_matrix<T>::Ones(3, 4);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>(
                         [&] { (void)ra::sliced_wasserstein_pp<T>(x, y5, dirs, T(2)); }),
                     "Y.cols()");
  EXPECT_MESSAGE_HAS(
      thrown<ra::dimension_mismatch>(
          [&] { (void)ra::sliced_wasserstein_pp<T>(x, y, ra::row_matrix<T>::Ones(3, 5), T(2)); }),
      "directions.cols()");
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>(
                         [&] { (void)ra::sliced_wasserstein_pp<T>(empty, y, dirs, T(2)); }),
                     "X is empty");
  thrown<ra::invalid_argument>([&] { (void)ra::sliced_wasserstein_pp<T>(x, empty, dirs, T(2)); });
  ra::row_matrix<T> zero_dir = dirs;
  zero_dir.row(1).setZero();
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>(
                         [&] { (void)ra::sliced_wasserstein_pp<T>(x, y, zero_dir, T(2)); }),
                     "row 1");
  ra::row_matrix<T> bad = x;
  bad(2, 3) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown<ra::non_finite_input>([&] { (void)ra::sliced_wasserstein_pp<T>(bad, y, dirs, T(2)); }),
      "X[2][3]");
  ra::row_matrix<T> bad_dir = dirs;
  bad_dir(0, 0) = std::numeric_limits<T>::infinity();
  thrown<ra::non_finite_input>([&] { (void)ra::sliced_wasserstein_pp<T>(x, y, bad_dir, T(2)); });
  thrown<ra::invalid_config>([&] { (void)ra::sliced_wasserstein_pp<T>(x, y, dirs, T(0.99)); });
  thrown<ra::invalid_config>(
      [&] { (void)ra::sliced_wasserstein_pp<T>(x, y, ra::row_matrix<T>(0, 4), T(2)); });
  thrown<ra::invalid_config>(
      [&] { (void)ra::sliced_wasserstein_pp<T>(x, y, std::size_t{0}, T(2)); });
}

// ================================================================================================
// vector_sets
// ================================================================================================

TEST(VectorSets, LayoutAndValidation) {
  ra::row_matrix<float> rows(5, 2);
  rows << 0, 1, 2, 3, 4, 5, 6, 7, 8, 9;
  const ra::vector_sets<float> s(rows, {0, 2, 3, 5});
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.dim(), 2u);
  EXPECT_EQ(s.total_rows(), 5u);
  EXPECT_EQ(s.set_size(0), 2u);
  EXPECT_EQ(s.set_size(1), 1u);
  EXPECT_EQ(s.set(2)(1, 0), 8.0f);
  EXPECT_EQ(s.set(1)(0, 1), 5.0f);
  const auto one = ra::vector_sets<float>::singletons(rows);
  EXPECT_EQ(one.size(), 5u);
  EXPECT_EQ(one.set(3)(0, 1), 7.0f);
  const std::vector<std::size_t> sizes{4, 1};
  EXPECT_EQ(ra::vector_sets<float>::from_sizes(rows, sizes).set(1)(0, 0), 8.0f);
  const auto nested = ra::vector_sets<float>::from_nested({{{1, 2}}, {{3, 4}, {5, 6}}});
  EXPECT_EQ(nested.set_size(1), 2u);
  EXPECT_EQ(nested.set(1)(1, 1), 6.0f);

  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>([&] {
                       ra::vector_sets<float>(rows, {0, 2, 2, 5});
                     }),
                     "set 1 is empty");
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] {
                       ra::vector_sets<float>(rows, {0, 2, 4});
                     }),
                     "offsets.back()");
  thrown<ra::invalid_argument>([&] { ra::vector_sets<float>(rows, {1, 5}); });
  thrown<ra::invalid_argument>([&] { ra::vector_sets<float>(rows, {}); });
  thrown<ra::invalid_argument>([&] { ra::vector_sets<float>(rows, {0, 3, 2, 5}); });
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] {
                       (void)ra::vector_sets<float>::from_nested({{{1, 2}}, {{3}}});
                     }),
                     "sets[1][0]");
  thrown<ra::invalid_argument>([&] { (void)ra::vector_sets<float>::from_nested({{{1, 2}}, {}}); });
}

// ================================================================================================
// Attention
// ================================================================================================

struct attention_case {
  std::vector<dmat> keys;
  dmat values, query, dirs;
};

template <class T>
attention_case make_case(std::mt19937& g, std::size_t n, std::size_t d, std::size_t P,
                         std::size_t dv, std::size_t max_set = 6) {
  std::uniform_int_distribution<std::size_t> size(1, max_set);
  attention_case c;
  for (std::size_t j = 0; j < n; ++j) c.keys.push_back(rmat<T>(g, size(g), d, 0.7));
  c.values = rmat<T>(g, n, dv);
  c.query = rmat<T>(g, size(g), d, 0.7);
  c.dirs = rdirs<T>(g, P, d);
  return c;
}

template <class T>
void expect_matches(const ra::sw_attention_result<T>& r, const orc::attention_ref& e,
                    const std::string& where) {
  ASSERT_EQ(r.output.size(), e.output.size()) << where;
  ASSERT_EQ(r.weights.size(), e.weights.size()) << where;
  for (std::size_t k = 0; k < e.output.size(); ++k)
    EXPECT_NEAR(r.output[k], e.output[k], kTol<T>) << where << " out[" << k << "]";
  for (std::size_t j = 0; j < e.weights.size(); ++j)
    EXPECT_NEAR(r.weights[j], e.weights[j], kTol<T>) << where << " w[" << j << "]";
  ASSERT_EQ(r.candidates.size(), r.distances.size()) << where;
  for (std::size_t k = 0; k < r.candidates.size(); ++k)
    EXPECT_NEAR(r.distances[k], e.distances[r.candidates[k]],
                kTol<T> * std::max(1.0, e.distances[r.candidates[k]]))
        << where;
}

// All candidates (C = 0), random sizes, p ∈ {1, 2, 1.5}, τ ∈ {0.5, 2}: library vs oracle.
TYPED_TEST(SwAttentionTest, MatchesBruteForceReference) {
  using T = TypeParam;
  std::mt19937 g(21);
  for (int rep = 0; rep < 6; ++rep) {
    const std::size_t n = 1 + rep * 5, d = 8, P = 12;
    const auto c = make_case<T>(g, n, d, P, 5);
    const auto keys = to_sets<T>(c.keys);
    for (double p : {1.0, 2.0, 1.5})
      for (double tau : {0.5, 2.0}) {
        const ra::sliced_wasserstein_attention<T> att(
            {.dim = d, .num_projections = P, .p = p, .temperature = tau}, to_mat<T>(c.dirs));
        const auto pk = att.prepare_keys(keys);
        const auto r = att.compute_detailed(to_mat<T>(c.query), pk, to_mat<T>(c.values));
        const auto e = orc::attention(c.query, c.keys, c.values, c.dirs, p, tau, 0);
        expect_matches(r, e, "rep " + std::to_string(rep));
        ASSERT_EQ(r.candidates.size(), n);
        for (std::size_t k = 0; k < n; ++k) EXPECT_EQ(r.candidates[k], k);
        const auto out = att.compute(to_mat<T>(c.query), pk, to_mat<T>(c.values));
        EXPECT_EQ(out, r.output);
      }
  }
}

// The prepared structure holds each key set's sorted projections (checked vs the oracle) and mean.
TYPED_TEST(SwAttentionTest, PreparedKeysHoldSortedProjectionsAndMeans) {
  using T = TypeParam;
  std::mt19937 g(22);
  const auto c = make_case<T>(g, 5, 6, 4, 2);
  const ra::sliced_wasserstein_attention<T> att({.dim = 6, .num_projections = 4},
                                                to_mat<T>(c.dirs));
  const auto pk = att.prepare_keys(to_sets<T>(c.keys));
  ASSERT_EQ(pk.size(), 5u);
  EXPECT_EQ(pk.num_projections(), 4u);
  for (std::size_t j = 0; j < 5; ++j) {
    const std::size_t nj = c.keys[j].size();
    const auto sp = pk.sorted_projections(j);
    ASSERT_EQ(sp.size(), 4 * nj);
    for (std::size_t l = 0; l < 4; ++l) {
      dvec proj;
      for (const auto& r : c.keys[j]) proj.push_back(orc::dot(r, orc::unit(c.dirs[l])));
      std::sort(proj.begin(), proj.end());
      for (std::size_t i = 0; i < nj; ++i) EXPECT_NEAR(sp[l * nj + i], proj[i], kTol<T>);
    }
    const dvec m = orc::mean(c.keys[j]);
    for (std::size_t k = 0; k < 6; ++k)
      EXPECT_NEAR(pk.means()(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(k)), m[k],
                  kTol<T>);
  }
}

// C = N (and C > N) is exactly no filtering.
TYPED_TEST(SwAttentionTest, CandidatesAtLeastNEqualsNoFiltering) {
  using T = TypeParam;
  std::mt19937 g(23);
  const auto c = make_case<T>(g, 17, 8, 10, 4);
  const auto keys = to_sets<T>(c.keys);
  const auto dirs = to_mat<T>(c.dirs);
  const ra::sliced_wasserstein_attention<T> all({.dim = 8, .num_projections = 10}, dirs);
  const auto pk = all.prepare_keys(keys);
  const auto ref = all.compute_detailed(to_mat<T>(c.query), pk, to_mat<T>(c.values));
  for (std::size_t C : {17u, 40u}) {
    const ra::sliced_wasserstein_attention<T> f({.dim = 8, .num_projections = 10, .candidates = C},
                                                dirs);
    const auto r =
        f.compute_detailed(to_mat<T>(c.query), f.prepare_keys(keys), to_mat<T>(c.values));
    EXPECT_EQ(r.output, ref.output);
    EXPECT_EQ(r.weights, ref.weights);
  }
}

// 0 < C < N: the scored sets are exactly the oracle's top-C by mean(Q)·mean(K_j), the others get
// weight 0, and the output is the oracle's softmax over those C sets.
TYPED_TEST(SwAttentionTest, FilteringScoresExactlyTheTopCByMeanDot) {
  using T = TypeParam;
  std::mt19937 g(24);
  int checked = 0;
  for (int rep = 0; rep < 8; ++rep) {
    const std::size_t n = 30, C = 1 + static_cast<std::size_t>(rep) * 3;
    const auto c = make_case<T>(g, n, 8, 9, 3);
    // Skip draws whose C-th and (C+1)-th filter scores are within float rounding (a genuine tie).
    const dvec qm = orc::mean(c.query);
    dvec f;
    for (const auto& k : c.keys) f.push_back(orc::dot(qm, orc::mean(k)));
    dvec fs = f;
    std::sort(fs.begin(), fs.end(), std::greater<>());
    if (fs[C - 1] - fs[C] < 1e-4) continue;
    ++checked;
    const ra::sliced_wasserstein_attention<T> att(
        {.dim = 8, .num_projections = 9, .p = 2.0, .temperature = 0.7, .candidates = C},
        to_mat<T>(c.dirs));
    const auto r = att.compute_detailed(to_mat<T>(c.query), att.prepare_keys(to_sets<T>(c.keys)),
                                        to_mat<T>(c.values));
    const auto e = orc::attention(c.query, c.keys, c.values, c.dirs, 2.0, 0.7, C);
    ASSERT_EQ(r.candidates.size(), C);
    const std::set<std::size_t> got(r.candidates.begin(), r.candidates.end());
    const std::set<std::size_t> want(e.candidates.begin(), e.candidates.end());
    EXPECT_EQ(got, want) << "rep " << rep;
    for (std::size_t k = 0; k + 1 < C; ++k)  // filter order: descending mean·mean
      EXPECT_GE(f[r.candidates[k]], f[r.candidates[k + 1]] - 1e-5);
    for (std::size_t j = 0; j < n; ++j)
      if (!want.count(j)) {
        EXPECT_EQ(r.weights[j], T(0)) << j;
      }
    expect_matches(r, e, "rep " + std::to_string(rep));
  }
  EXPECT_GE(checked, 6);
}

TYPED_TEST(SwAttentionTest, DeterministicUnderSeed) {
  using T = TypeParam;
  std::mt19937 g(25);
  const auto c = make_case<T>(g, 12, 8, 8, 3);
  const ra::sliced_wasserstein_config cfg{.dim = 8, .num_projections = 8, .seed = 99};
  const ra::sliced_wasserstein_attention<T> a(cfg), b(cfg);
  auto other = cfg;
  other.seed = 100;
  const ra::sliced_wasserstein_attention<T> o(other);
  EXPECT_TRUE(a.directions() == b.directions());
  EXPECT_FALSE(a.directions() == o.directions());
  EXPECT_TRUE(a.directions() == ra::random_directions<T>(8, 8, 99));
  const auto keys = to_sets<T>(c.keys);
  EXPECT_EQ(a.compute(to_mat<T>(c.query), a.prepare_keys(keys), to_mat<T>(c.values)),
            b.compute(to_mat<T>(c.query), b.prepare_keys(keys), to_mat<T>(c.values)));
  // Seeded directions vs the oracle using those (unit) directions.
  dmat dirs;
  for (Eigen::Index l = 0; l < a.directions().rows(); ++l) {
    dvec r;
    for (Eigen::Index k = 0; k < 8; ++k) r.push_back(double(a.directions()(l, k)));
    dirs.push_back(r);
  }
  const auto e = orc::attention(c.query, c.keys, c.values, dirs, 2.0, 1.0, 0);
  expect_matches(a.compute_detailed(to_mat<T>(c.query), a.prepare_keys(keys), to_mat<T>(c.values)),
                 e, "seeded");
}

// One key set: weight 1, output = V_0 exactly; a query equal to a key set scores SW = 0 there.
TYPED_TEST(SwAttentionTest, SingleKeySetAndIdenticalSet) {
  using T = TypeParam;
  std::mt19937 g(26);
  const auto c = make_case<T>(g, 1, 5, 6, 4);
  const ra::sliced_wasserstein_attention<T> att({.dim = 5, .num_projections = 6, .candidates = 3});
  const auto r = att.compute_detailed(to_mat<T>(c.query), att.prepare_keys(to_sets<T>(c.keys)),
                                      to_mat<T>(c.values));
  ASSERT_EQ(r.weights.size(), 1u);
  EXPECT_EQ(r.weights[0], T(1));
  for (std::size_t k = 0; k < 4; ++k) EXPECT_EQ(r.output[k], static_cast<T>(c.values[0][k]));

  const auto c2 = make_case<T>(g, 6, 5, 6, 2);
  const ra::sliced_wasserstein_attention<T> all({.dim = 5, .num_projections = 6});
  const auto r2 = all.compute_detailed(to_mat<T>(c2.keys[4]), all.prepare_keys(to_sets<T>(c2.keys)),
                                       to_mat<T>(c2.values));
  ASSERT_EQ(r2.candidates.size(), 6u);
  EXPECT_EQ(r2.distances[4], T(0));
  EXPECT_EQ(std::max_element(r2.weights.begin(), r2.weights.end()) - r2.weights.begin(), 4);
}

// compute_batch (parallel over queries) equals per-query compute bit for bit.
TYPED_TEST(SwAttentionTest, BatchEqualsPerQuery) {
  using T = TypeParam;
  std::mt19937 g(27);
  const auto c = make_case<T>(g, 25, 8, 8, 6);
  std::vector<dmat> queries;
  for (int i = 0; i < 7; ++i) queries.push_back(rmat<T>(g, 1 + static_cast<std::size_t>(i) % 4, 8));
  for (std::size_t C : {0u, 5u}) {
    const ra::sliced_wasserstein_attention<T> att(
        {.dim = 8, .num_projections = 8, .p = 1.0, .candidates = C, .seed = 5});
    const auto pk = att.prepare_keys(to_sets<T>(c.keys));
    const auto qs = to_sets<T>(queries);
    const auto out = att.compute_batch(qs, pk, to_mat<T>(c.values));
    ASSERT_EQ(out.rows(), 7);
    for (std::size_t i = 0; i < 7; ++i) {
      const auto one = att.compute(qs.set(i), pk, to_mat<T>(c.values));
      for (std::size_t k = 0; k < 6; ++k)
        EXPECT_EQ(out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)), one[k]);
    }
  }
}

// Vector API: query and key rows as sets of one: s_j = −mean_l |⟨q − k_j, θ_l⟩|^p / τ.
TYPED_TEST(SwAttentionTest, VectorApiTreatsRowsAsSingletons) {
  using T = TypeParam;
  std::mt19937 g(28);
  const dmat k = rmat<T>(g, 9, 6), v = rmat<T>(g, 9, 3), dirs = rdirs<T>(g, 7, 6);
  const dvec q = rvec<T>(g, 6);
  const ra::sliced_wasserstein_attention<T> att(
      {.dim = 6, .num_projections = 7, .p = 1.0, .temperature = 0.3}, to_mat<T>(dirs));
  const auto qv = to_vec<T>(q);
  const auto out = att.compute(std::span<const T>(qv), to_mat<T>(k), to_mat<T>(v));
  std::vector<dmat> sets;
  for (const auto& r : k) sets.push_back({r});
  const auto e = orc::attention({q}, sets, v, dirs, 1.0, 0.3, 0);
  for (std::size_t c = 0; c < 3; ++c) EXPECT_NEAR(out[c], e.output[c], kTol<T>);
}

TYPED_TEST(SwAttentionTest, Validation) {
  using T = TypeParam;
  using att_t = ra::sliced_wasserstein_attention<T>;
  thrown<ra::invalid_config>([] { att_t({.dim = 0}); });
  thrown<ra::invalid_config>([] { att_t({.dim = 4, .num_projections = 0}); });
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>([] { att_t({.dim = 4, .p = 0.5}); }), "p must be");
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>([] { att_t({.dim = 4, .temperature = 0.0}); }),
                     "temperature");
  thrown<ra::invalid_config>([] { att_t({.dim = 4, .temperature = -1.0}); });
  thrown<ra::invalid_config>([] { att_t({.dim = 4, .temperature = std::nan("")}); });
  thrown<ra::dimension_mismatch>(
      [] { att_t({.dim = 4, .num_projections = 3}, ra::row_matrix<T>::Ones(2, 4)); });
  thrown<ra::dimension_mismatch>(
      [] { att_t({.dim = 4, .num_projections = 2}, ra::row_matrix<T>::Ones(2, 5)); });
  thrown<ra::invalid_argument>(
      [] { att_t({.dim = 4, .num_projections = 2}, ra::row_matrix<T>::Zero(2, 4)); });

  const att_t att({.dim = 4, .num_projections = 3, .candidates = 2});
  const ra::row_matrix<T> rows = ra::row_matrix<T>::Ones(5, 4);
  const ra::vector_sets<T> keys(rows, {0, 2, 3, 5});
  const ra::row_matrix<T> values = ra::row_matrix<T>::Ones(3, 2), q = ra::row_matrix<T>::Ones(2, 4);
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_argument>([&] { (void)att.prepare_keys(ra::vector_sets<T>()); }),
      "key_sets is empty");
  thrown<ra::dimension_mismatch>([&] {
    (void)att.prepare_keys(ra::vector_sets<T>::singletons(ra::row_matrix<T>::Ones(3, 5)));
  });
  ra::row_matrix<T> bad_rows = rows;
  bad_rows(3, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] {
                       (void)att.prepare_keys(ra::vector_sets<T>(bad_rows, {0, 2, 3, 5}));
                     }),
                     "[3][1]");

  const auto pk = att.prepare_keys(keys);
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_argument>([&] { (void)att.compute(ra::row_matrix<T>(0, 4), pk, values); }),
      "query_set is empty");
  thrown<ra::dimension_mismatch>(
      [&] { (void)att.compute(ra::row_matrix<T>::Ones(2, 3), pk, values); });
  ra::row_matrix<T> bad_q = q;
  bad_q(1, 2) = std::numeric_limits<T>::infinity();
  thrown<ra::non_finite_input>([&] { (void)att.compute(bad_q, pk, values); });
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>(
                         [&] { (void)att.compute(q, pk, ra::row_matrix<T>::Ones(4, 2)); }),
                     "values.rows()");
  std::vector<T> small(1);
  thrown<ra::dimension_mismatch>([&] { att.compute_into(q, pk, values, small); });
  ra::row_matrix<T> bad_v = values;
  bad_v(0, 1) = std::numeric_limits<T>::quiet_NaN();  // every set is a candidate of the top 2?
  // All key sets tie on the filter (identical means) → candidates {0, 1}; row 0 is scored.
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)att.compute(q, pk, bad_v); }),
                     "values[0][1]");
  const att_t other({.dim = 4, .num_projections = 3, .seed = 1});
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>([&] { (void)other.compute(q, pk, values); }),
                     "different directions");
  thrown<ra::invalid_argument>([&] { (void)att.compute_batch(ra::vector_sets<T>(), pk, values); });
}

}  // namespace
