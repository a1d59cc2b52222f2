// Euclidean space, the sphere, product manifolds and the mixed-curvature space
// (geometry/{euclidean,sphere,product}.hpp), plus the generic Fréchet mean (geometry/means.hpp)
// on them, for float and double, against the independent long-double oracle in
// support/sphere_oracle.hpp (chord-formula angles, rotation-based transport, Möbius-addition
// Poincaré maps; no library code) and closed forms.
//
// Tolerances (checked as |got − ref| ≤ m·tol·scale, scale = R or the magnitude of the quantity,
// m a small multiplier where several operations are chained):
// - kTol<float> = 2e-5: every operation is a few O(n) reductions in float (n ≤ 100) plus one
//   sin/cos/atan2; the rounding is ≲ n·2^-24 relative in the worst case and ~√n·2^-24 typically
//   (every check still passes with tol = 1e-6), so 2e-5 leaves ≥ 20× headroom while a wrong
//   formula (R vs 1/R, a missing factor 2, a sign) is off by O(1).
// - kTol<double> = 1e-12: the same argument with 2^-53 (every check passes with 1e-14).
// - Near-identical points use a *relative* tolerance (kNearRel: 1e-4 float, 1e-9 double) on
//   distances of 1e-3·R (float) / 1e-6·R (double): the library's angle keeps relative accuracy
//   O(n·ε) (passes at 1e-6 / 1e-12), whereas a bare acos would be off by √ε/δ ≈ 0.2 (float) /
//   1e-2 (double) and fail.
// - Fréchet means (kMeanTol: 2e-4 float, 1e-9 double): the iteration stops when the Riemannian
//   gradient norm is ≤ 1e-5 / 1e-12, and near a strongly convex minimum the distance to it is
//   about the gradient norm; observed errors are ≤ 1e-5·R (float).
// The oracle always sees exactly the (rounded-to-T) values the library sees.
// GCC 12 at -O3 reports -Warray-bounds on the size-mismatch tests below: it inlines the copy that
// follows the size check on the path where the check has already thrown (a known false positive
// of its flow analysis); the library code is not reached with mismatched sizes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "ruvector/attention/geometry/euclidean.hpp"
#include "ruvector/attention/geometry/means.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/geometry/product.hpp"
#include "ruvector/attention/geometry/sphere.hpp"
#include "support/helpers.hpp"
#include "support/sphere_oracle.hpp"

namespace ra = ruvector::attention;
namespace so = ruvector_test::sphere_oracle;

namespace {

using ruvector_test::thrown_message;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
template <class T>
constexpr double kNearRel = std::is_same_v<T, float> ? 1e-4 : 1e-9;

constexpr double kPi = std::numbers::pi;
constexpr std::array<double, 3> kCurvatures = {0.1, 1.0, 10.0};
constexpr std::array<std::size_t, 6> kDims = {2, 3, 5, 16, 33, 100};

static_assert(ra::constant_curvature_manifold<ra::euclidean_space<float>>);
static_assert(ra::constant_curvature_manifold<ra::euclidean_space<double>>);
static_assert(ra::constant_curvature_manifold<ra::sphere<float>>);
static_assert(ra::constant_curvature_manifold<ra::sphere<double>>);
using product_esf = ra::product_manifold<ra::euclidean_space<float>, ra::sphere<float>>;
using product_essd =
    ra::product_manifold<ra::euclidean_space<double>, ra::sphere<double>, ra::sphere<double>>;
static_assert(ra::manifold<product_esf>);
static_assert(ra::manifold<product_essd>);
static_assert(!ra::constant_curvature_manifold<product_esf>);
static_assert(!ra::constant_curvature_manifold<product_essd>);
static_assert(std::is_same_v<product_essd::value_type, double>);
static_assert(product_essd::component_count == 3);

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

/// A double vector rounded to T.
template <class T>
std::vector<T> to_t(const so::vec& v) {
  return std::vector<T>(v.begin(), v.end());
}

/// A T vector widened to double.
template <class T>
so::vec wide(const std::vector<T>& v) {
  return so::vec(v.begin(), v.end());
}

/// Rounds a double vector to T and back (what the library sees, as the oracle sees it).
template <class T>
so::vec rounded(const so::vec& v) {
  return wide(to_t<T>(v));
}

double max_abs_diff(const so::vec& a, const so::vec& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates into m
  }
  return m;
}

template <class T>
bool all_finite(const std::vector<T>& v) {
  return std::all_of(v.begin(), v.end(), [](T a) { return std::isfinite(a); });
}

template <class T>
std::span<const T> cs(const std::vector<T>& v) {
  return std::span<const T>(v);
}

/// The oracle's radius for the library's c (rounded to T).
template <class T>
double radius_of(double c) {
  return 1.0 / std::sqrt(static_cast<double>(static_cast<T>(c)));
}

// ================================================================================================
// Euclidean space
// ================================================================================================

template <class T>
class EuclideanTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(EuclideanTest, Scalars);

TYPED_TEST(EuclideanTest, TrivialIdentitiesAgainstOracle) {
  using T = TypeParam;
  const ra::euclidean_space<T> e;
  EXPECT_EQ(e.curvature(), T(0));
  std::mt19937_64 rng(11);
  for (std::size_t n : kDims) {
    const so::vec x = rounded<T>(so::gaussian(n, rng));
    const so::vec y = rounded<T>(so::gaussian(n, rng));
    const so::vec v = rounded<T>(so::gaussian(n, rng));
    const auto xt = to_t<T>(x), yt = to_t<T>(y), vt = to_t<T>(v);
    const double ref = so::euclidean_distance(x, y);
    EXPECT_NEAR(static_cast<double>(e.distance(cs(xt), cs(yt))), ref, kTol<T> * ref);
    EXPECT_EQ(e.distance(cs(xt), cs(xt)), T(0));
    EXPECT_NEAR(static_cast<double>(e.inner(cs(xt), cs(yt), cs(vt))), so::dot(y, v),
                kTol<T> * (so::norm(y) * so::norm(v)));

    std::vector<T> out(n), back(n);
    e.exp(cs(xt), cs(vt), out);
    so::vec expect(n);
    for (std::size_t i = 0; i < n; ++i) expect[i] = x[i] + v[i];
    EXPECT_LE(max_abs_diff(wide(out), expect), kTol<T> * 4);
    e.log(cs(xt), cs(out), back);  // log ∘ exp = id
    EXPECT_LE(max_abs_diff(wide(back), v), kTol<T> * 4);
    e.log(cs(xt), cs(yt), out);
    for (std::size_t i = 0; i < n; ++i) expect[i] = y[i] - x[i];
    EXPECT_LE(max_abs_diff(wide(out), expect), kTol<T> * 4);

    e.exp0(cs(vt), out);
    EXPECT_EQ(wide(out), v);
    e.log0(cs(yt), out);
    EXPECT_EQ(wide(out), y);
    e.transport(cs(xt), cs(yt), cs(vt), out);
    EXPECT_EQ(wide(out), v);
    e.project(cs(xt), out);
    EXPECT_EQ(wide(out), x);
    e.origin(out);
    EXPECT_EQ(wide(out), so::vec(n, 0.0));
  }
}

TYPED_TEST(EuclideanTest, ZeroDimensionAndMismatches) {
  using T = TypeParam;
  const ra::euclidean_space<T> e;
  const std::vector<T> empty;
  std::vector<T> out_empty;
  EXPECT_EQ(e.distance(cs(empty), cs(empty)), T(0));
  EXPECT_EQ(e.inner(cs(empty), cs(empty), cs(empty)), T(0));
  e.exp(cs(empty), cs(empty), out_empty);
  e.origin(out_empty);

  const std::vector<T> a(3, T(1)), b(4, T(1));
  std::vector<T> o3(3), o4(4);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)e.distance(cs(a), cs(b)); }),
      "euclidean_space::distance: y.size() is 4, expected 3");
  EXPECT_THROW((void)e.inner(cs(a), cs(a), cs(b)), ra::dimension_mismatch);
  EXPECT_THROW(e.exp(cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_THROW(e.exp(cs(a), cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(e.log(cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_THROW(e.exp0(cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(e.log0(cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(e.transport(cs(a), cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_THROW(e.project(cs(a), o4), ra::dimension_mismatch);
}

// ================================================================================================
// Sphere
// ================================================================================================

template <class T>
class SphereTest : public ::testing::Test {};
TYPED_TEST_SUITE(SphereTest, Scalars);

TYPED_TEST(SphereTest, ConstructorAndAccessors) {
  using T = TypeParam;
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    EXPECT_EQ(s.c(), static_cast<T>(c));
    EXPECT_EQ(s.curvature(), static_cast<T>(c));
    EXPECT_NEAR(static_cast<double>(s.radius()), radius_of<T>(c), kTol<T> * radius_of<T>(c));
  }
  EXPECT_EQ(ra::sphere<T>().c(), T(1));
  const T bad[] = {T(0), T(-1), std::numeric_limits<T>::quiet_NaN(),
                   std::numeric_limits<T>::infinity(), std::numeric_limits<T>::denorm_min()};
  for (T c : bad) {
    EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { ra::sphere<T> s(c); }),
                       "sphere curvature c =");
  }
}

// Closed forms whose directions are exact in any precision: d = R·(angle).
TYPED_TEST(SphereTest, DistanceClosedForms) {
  using T = TypeParam;
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    const T r = s.radius();
    const double tol = kTol<T> * R;
    auto d = [&](std::vector<T> x, std::vector<T> y) {
      return static_cast<double>(s.distance(cs(x), cs(y)));
    };
    EXPECT_NEAR(d({r, 0, 0}, {0, r, 0}), R * kPi / 2, tol);               // orthogonal
    EXPECT_NEAR(d({r, 0, 0}, {-r, 0, 0}), R * kPi, tol);                  // antipodal
    EXPECT_NEAR(d({0, 0, r}, {0, 0, -r}), R * kPi, tol);                  // antipodal
    EXPECT_EQ(d({r, 0, 0}, {r, 0, 0}), 0.0);                              // identical
    EXPECT_NEAR(d({r, 0}, {r, r}), R * kPi / 4, tol);                     // 45°, direction-only
    EXPECT_NEAR(d({1, 1, 1, 1}, {1, 0, 0, 0}), R * kPi / 3, tol);         // cos = 1/2
    EXPECT_NEAR(d({1, 1, 1, 1}, {1, 1, 1, -1}), R * kPi / 3, tol);        // cos = 1/2
    EXPECT_NEAR(d({1, 1, 1, 1}, {-1, -1, -1, 1}), 2 * R * kPi / 3, tol);  // cos = −1/2
    // Symmetric and invariant under scaling of either argument (points are read by direction).
    EXPECT_NEAR(d({r, r, 0}, {0, r, 0}), d({0, r, 0}, {r, r, 0}), tol);
    EXPECT_NEAR(d({5, 5, 0}, {0, T(0.25), 0}), R * kPi / 4, tol);
  }
}

TYPED_TEST(SphereTest, DistanceMatchesOracleAndTriangleInequality) {
  using T = TypeParam;
  std::mt19937_64 rng(21);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const so::vec x = rounded<T>(so::random_point(n, R, rng));
        const so::vec y = rounded<T>(so::random_point(n, R, rng));
        const so::vec z = rounded<T>(so::random_point(n, R, rng));
        const auto xt = to_t<T>(x), yt = to_t<T>(y), zt = to_t<T>(z);
        const double dxy = static_cast<double>(s.distance(cs(xt), cs(yt)));
        const double dyz = static_cast<double>(s.distance(cs(yt), cs(zt)));
        const double dxz = static_cast<double>(s.distance(cs(xt), cs(zt)));
        EXPECT_NEAR(dxy, so::distance(x, y, R), kTol<T> * R);
        EXPECT_NEAR(dyz, so::distance(y, z, R), kTol<T> * R);
        EXPECT_NEAR(dxz, so::distance(x, z, R), kTol<T> * R);
        EXPECT_NEAR(dxy, static_cast<double>(s.distance(cs(yt), cs(xt))), kTol<T> * R);
        EXPECT_GE(dxy, 0.0);
        EXPECT_LE(dxy, R * kPi * (1 + kTol<T>));
        EXPECT_LE(dxz, dxy + dyz + kTol<T> * R);
        EXPECT_EQ(s.distance(cs(xt), cs(xt)), T(0));
      }
    }
  }
}

// A point on the geodesic between x and z turns the triangle inequality into an equality.
TYPED_TEST(SphereTest, GeodesicPointsSplitDistancesAdditively) {
  using T = TypeParam;
  std::mt19937_64 rng(22);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      const so::vec x = rounded<T>(so::random_point(n, R, rng));
      const so::vec v = rounded<T>(so::random_tangent(x, 2.5 * R, rng));
      const auto xt = to_t<T>(x), vt = to_t<T>(v);
      std::vector<T> z(n), y(n), half(n);
      s.exp(cs(xt), cs(vt), z);
      for (std::size_t i = 0; i < n; ++i) half[i] = vt[i] * T(0.3);
      s.exp(cs(xt), cs(half), y);
      const double dxz = static_cast<double>(s.distance(cs(xt), cs(z)));
      const double dxy = static_cast<double>(s.distance(cs(xt), cs(y)));
      const double dyz = static_cast<double>(s.distance(cs(y), cs(z)));
      EXPECT_NEAR(dxz, so::norm(v), 4 * kTol<T> * R);
      EXPECT_NEAR(dxy, 0.3 * so::norm(v), 4 * kTol<T> * R);
      EXPECT_NEAR(dxy + dyz, dxz, 4 * kTol<T> * R);
    }
  }
}

TYPED_TEST(SphereTest, ExpAndLogMatchOracleAndRoundTrip) {
  using T = TypeParam;
  std::mt19937_64 rng(23);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      for (double frac : {0.0, 1e-3, 0.2, 0.5, 0.9}) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " |v|/(πR)=" << frac);
        const so::vec x = rounded<T>(so::random_point(n, R, rng));
        const so::vec v = rounded<T>(so::random_tangent(x, frac * kPi * R, rng));
        const auto xt = to_t<T>(x), vt = to_t<T>(v);
        std::vector<T> y(n), back(n);
        s.exp(cs(xt), cs(vt), y);
        EXPECT_LE(max_abs_diff(wide(y), so::exp(x, v, R)), kTol<T> * R);
        EXPECT_NEAR(so::norm(wide(y)), R, kTol<T> * R);  // stays on the sphere
        s.log(cs(xt), cs(y), back);                      // log ∘ exp = id
        EXPECT_LE(max_abs_diff(wide(back), v), 4 * kTol<T> * R);

        const so::vec w = rounded<T>(so::random_point(n, R, rng));
        const auto wt = to_t<T>(w);
        if (so::angle(x, w) > 0.95 * kPi) continue;  // log is ill-conditioned near −x
        std::vector<T> lw(n), again(n);
        s.log(cs(xt), cs(wt), lw);
        EXPECT_LE(max_abs_diff(wide(lw), so::log(x, w, R)), 4 * kTol<T> * R);
        EXPECT_NEAR(so::dot(wide(lw), x), 0.0, kTol<T> * R * R);  // tangent at x
        s.exp(cs(xt), cs(lw), again);                             // exp ∘ log = id
        EXPECT_LE(max_abs_diff(wide(again), w), 4 * kTol<T> * R);
      }
    }
  }
}

TYPED_TEST(SphereTest, LogOfSamePointIsZeroAndExpOfZeroIsIdentity) {
  using T = TypeParam;
  std::mt19937_64 rng(24);
  const ra::sphere<T> s(T(2));
  const double R = radius_of<T>(2.0);
  for (std::size_t n : kDims) {
    const auto xt = to_t<T>(so::random_point(n, R, rng));
    std::vector<T> out(n), zero(n, T(0));
    s.log(cs(xt), cs(xt), out);
    EXPECT_EQ(wide(out), so::vec(n, 0.0));
    s.exp(cs(xt), cs(zero), out);
    EXPECT_LE(max_abs_diff(wide(out), wide(xt)), kTol<T> * R);
  }
}

// Points 1e-3·R (float) / 1e-6·R (double) apart: the distance keeps its relative accuracy.
TYPED_TEST(SphereTest, NearIdenticalPointsAreAccurate) {
  using T = TypeParam;
  const double delta = std::is_same_v<T, float> ? 1e-3 : 1e-6;
  std::mt19937_64 rng(25);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 4; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const so::vec x = rounded<T>(so::random_point(n, R, rng));
        const so::vec t = so::random_tangent(x, delta * R, rng);
        so::vec yy(n);
        for (std::size_t i = 0; i < n; ++i) yy[i] = x[i] + t[i];
        const so::vec y = rounded<T>(so::to_sphere(yy, R));
        const auto xt = to_t<T>(x), yt = to_t<T>(y);
        const double ref = so::distance(x, y, R);
        ASSERT_GT(ref, 0.0);
        const double got = static_cast<double>(s.distance(cs(xt), cs(yt)));
        EXPECT_LE(std::abs(got - ref) / ref, kNearRel<T>) << "got " << got << " ref " << ref;
        std::vector<T> l(n), back(n);
        s.log(cs(xt), cs(yt), l);
        ASSERT_TRUE(all_finite(l));
        const so::vec lref = so::log(x, y, R);
        EXPECT_LE(max_abs_diff(wide(l), lref) / ref, kNearRel<T>);
        s.exp(cs(xt), cs(l), back);
        EXPECT_LE(max_abs_diff(wide(back), y), kTol<T> * R);
      }
    }
  }
}

// y ≈ −x: no NaN, distances accurate in absolute terms, exp ∘ log = id.
TYPED_TEST(SphereTest, NearAntipodalPointsStayFinite) {
  using T = TypeParam;
  std::mt19937_64 rng(26);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      for (double delta : {1e-2, 1e-4, 1e-6, 1e-9, 0.0}) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " delta=" << delta);
        const so::vec x = rounded<T>(so::random_point(n, R, rng));
        const so::vec t = so::random_tangent(x, delta * R, rng);
        so::vec yy(n);
        for (std::size_t i = 0; i < n; ++i) yy[i] = -x[i] + t[i];
        const so::vec y = rounded<T>(so::to_sphere(yy, R));
        const auto xt = to_t<T>(x), yt = to_t<T>(y);
        const double got = static_cast<double>(s.distance(cs(xt), cs(yt)));
        EXPECT_NEAR(got, so::distance(x, y, R), kTol<T> * R);
        std::vector<T> l(n), back(n), lr(n), p(n);
        s.log(cs(xt), cs(yt), l);
        ASSERT_TRUE(all_finite(l));
        EXPECT_NEAR(so::norm(wide(l)), got, kTol<T> * R);
        EXPECT_NEAR(so::dot(wide(l), x) / (R * R), 0.0, kTol<T>);  // tangent
        s.exp(cs(xt), cs(l), back);
        EXPECT_LE(max_abs_diff(wide(back), y), 4 * kTol<T> * R);
        s.transport(cs(xt), cs(yt), cs(l), p);
        ASSERT_TRUE(all_finite(p));
        EXPECT_NEAR(so::norm(wide(p)), so::norm(wide(l)), 4 * kTol<T> * R);
        EXPECT_NEAR(so::dot(wide(p), y) / (R * R), 0.0, 4 * kTol<T>);  // tangent at y
        const so::vec u = rounded<T>(so::random_tangent(x, 1.0, rng));
        s.transport(cs(xt), cs(yt), cs(to_t<T>(u)), p);
        EXPECT_NEAR(so::norm(wide(p)), 1.0, 4 * kTol<T>);
        EXPECT_NEAR(so::dot(wide(p), y) / R, 0.0, 4 * kTol<T>);
      }
    }
  }
}

// Exactly antipodal points: the documented convention (geodesic toward the axis e_k with the
// smallest |x_k|, lowest k on ties), consistent between log and transport.
TYPED_TEST(SphereTest, ExactlyAntipodalConvention) {
  using T = TypeParam;
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    const T r = s.radius();
    // x = R·(0.6, 0.8, 0, 0.0): smallest |x_k| at k = 2 (tie with k = 3 → lowest index).
    const std::vector<T> x = {T(0.6) * r, T(0.8) * r, T(0), T(0)};
    std::vector<T> y(4);
    for (std::size_t i = 0; i < 4; ++i) y[i] = -x[i];
    std::vector<T> l(4), lback(4), p(4), e(4);
    s.log(cs(x), cs(y), l);
    EXPECT_LE(max_abs_diff(wide(l), {0, 0, R * kPi, 0}), kTol<T> * R);
    s.log(cs(y), cs(x), lback);
    EXPECT_LE(max_abs_diff(wide(lback), {0, 0, R * kPi, 0}), kTol<T> * R);
    s.exp(cs(x), cs(l), e);
    EXPECT_LE(max_abs_diff(wide(e), wide(y)), kTol<T> * R);
    // Γ_{x→−x}(log_x(−x)) = −log_{−x}(x), and the transport is an isometry there.
    s.transport(cs(x), cs(y), cs(l), p);
    EXPECT_LE(max_abs_diff(wide(p), {0, 0, -R * kPi, 0}), kTol<T> * R);
    const std::vector<T> v = {T(-0.8), T(0.6), T(0.5), T(-2)};  // tangent at x
    s.transport(cs(x), cs(y), cs(v), p);
    EXPECT_LE(max_abs_diff(wide(p), {-0.8, 0.6, -0.5, -2}), kTol<T> * 4);

    // Generic direction: the axis with the smallest |x_k| is k = 1; w = e_1 − (x_1/R²)·x.
    const std::vector<T> x2 = {T(0.5) * r, T(-0.1) * r, T(0.7) * r};
    const so::vec xd = wide(x2);
    std::vector<T> y2 = {-x2[0], -x2[1], -x2[2]}, l2(3);
    s.log(cs(x2), cs(y2), l2);
    ASSERT_TRUE(all_finite(l2));
    const double q = so::dot(xd, xd);
    so::vec w = {-(xd[1] / q) * xd[0], 1 - (xd[1] / q) * xd[1], -(xd[1] / q) * xd[2]};
    const double nw = so::norm(w);
    for (auto& a : w) a *= R * kPi / nw;
    EXPECT_LE(max_abs_diff(wide(l2), w), kTol<T> * R);
  }
}

TYPED_TEST(SphereTest, TransportIsParallelTransport) {
  using T = TypeParam;
  std::mt19937_64 rng(27);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 4; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const so::vec x = rounded<T>(so::random_point(n, R, rng));
        const so::vec y = rounded<T>(so::random_point(n, R, rng));
        if (so::angle(x, y) > 0.9 * kPi) continue;
        const so::vec u = rounded<T>(so::random_tangent(x, 1.0, rng));
        const so::vec v = rounded<T>(so::random_tangent(x, 2.0, rng));
        const auto xt = to_t<T>(x), yt = to_t<T>(y), ut = to_t<T>(u), vt = to_t<T>(v);
        std::vector<T> pu(n), pv(n), lxy(n), lyx(n), plxy(n);
        s.transport(cs(xt), cs(yt), cs(ut), pu);
        s.transport(cs(xt), cs(yt), cs(vt), pv);
        EXPECT_LE(max_abs_diff(wide(pv), so::transport(x, y, v)), 4 * kTol<T> * 2);
        // Isometry, and the image is tangent at y.
        EXPECT_NEAR(static_cast<double>(s.inner(cs(yt), cs(pu), cs(pv))), so::dot(u, v),
                    4 * kTol<T> * 2);
        EXPECT_NEAR(so::dot(wide(pu), wide(pu)), so::dot(u, u), 4 * kTol<T>);
        EXPECT_NEAR(so::dot(wide(pv), y) / R, 0.0, 4 * kTol<T> * 2);
        // Γ_{x→y}(log_x y) = −log_y x.
        s.log(cs(xt), cs(yt), lxy);
        s.log(cs(yt), cs(xt), lyx);
        s.transport(cs(xt), cs(yt), cs(lxy), plxy);
        for (auto& a : lyx) a = -a;
        EXPECT_LE(max_abs_diff(wide(plxy), wide(lyx)), 4 * kTol<T> * R);
        // Γ_{x→x} = id.
        s.transport(cs(xt), cs(xt), cs(vt), pv);
        EXPECT_LE(max_abs_diff(wide(pv), v), 4 * kTol<T> * 2);
      }
    }
  }
}

TYPED_TEST(SphereTest, OriginMapsMatchGeneralMaps) {
  using T = TypeParam;
  std::mt19937_64 rng(28);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      std::vector<T> o(n);
      s.origin(o);
      so::vec od(n, 0.0);
      od[0] = R;
      EXPECT_LE(max_abs_diff(wide(o), od), kTol<T> * R);
      const so::vec v = rounded<T>(so::random_tangent(od, 0.7 * R, rng));
      const so::vec y = rounded<T>(so::random_point(n, R, rng));
      const auto vt = to_t<T>(v), yt = to_t<T>(y);
      std::vector<T> out(n), back(n);
      s.exp0(cs(vt), out);
      EXPECT_LE(max_abs_diff(wide(out), so::exp(od, v, R)), kTol<T> * R);
      s.log0(cs(out), back);
      EXPECT_LE(max_abs_diff(wide(back), v), 4 * kTol<T> * R);
      if (so::angle(od, y) < 0.95 * kPi) {
        s.log0(cs(yt), out);
        EXPECT_LE(max_abs_diff(wide(out), so::log(od, y, R)), 4 * kTol<T> * R);
      }
    }
  }
}

TYPED_TEST(SphereTest, ProjectAndProjectTangent) {
  using T = TypeParam;
  std::mt19937_64 rng(29);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : kDims) {
      const so::vec g = so::gaussian(n, rng);
      for (double k : {1e-30, 1e-3, 1.0, 1e3, 1e30}) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " scale=" << k);
        so::vec gk(n);
        for (std::size_t i = 0; i < n; ++i) gk[i] = g[i] * k;
        const so::vec x = rounded<T>(gk);
        std::vector<T> out(n);
        s.project(cs(to_t<T>(x)), out);
        ASSERT_TRUE(all_finite(out));
        EXPECT_LE(max_abs_diff(wide(out), so::to_sphere(x, R)), kTol<T> * R);
      }
      // Zero → origin; a point of the sphere is (nearly) fixed.
      std::vector<T> zero(n, T(0)), out(n);
      s.project(cs(zero), out);
      so::vec od(n, 0.0);
      od[0] = R;
      EXPECT_LE(max_abs_diff(wide(out), od), kTol<T> * R);
      const so::vec x = rounded<T>(so::random_point(n, R, rng));
      s.project(cs(to_t<T>(x)), out);
      EXPECT_LE(max_abs_diff(wide(out), x), kTol<T> * R);

      // project_tangent: v − (⟨x, v⟩/R²)·x, tangent and idempotent.
      const so::vec v = rounded<T>(so::gaussian(n, rng));
      std::vector<T> pt(n), pt2(n);
      s.project_tangent(cs(to_t<T>(x)), cs(to_t<T>(v)), pt);
      const double xv = so::dot(x, v) / so::dot(x, x);
      so::vec ref(n);
      for (std::size_t i = 0; i < n; ++i) ref[i] = v[i] - xv * x[i];
      EXPECT_LE(max_abs_diff(wide(pt), ref), 4 * kTol<T> * std::max(1.0, so::norm(v)));
      s.project_tangent(cs(to_t<T>(x)), cs(pt), pt2);
      EXPECT_LE(max_abs_diff(wide(pt2), wide(pt)), 4 * kTol<T> * std::max(1.0, so::norm(v)));
    }
  }
}

// Points are read by direction; the zero vector reads as the origin.
TYPED_TEST(SphereTest, PointsAreReadByDirection) {
  using T = TypeParam;
  std::mt19937_64 rng(30);
  const ra::sphere<T> s(T(4));
  const double R = radius_of<T>(4.0);
  const std::size_t n = 5;
  const so::vec x = rounded<T>(so::random_point(n, R, rng));
  const so::vec y = rounded<T>(so::random_point(n, R, rng));
  const auto xt = to_t<T>(x), yt = to_t<T>(y);
  std::vector<T> x3(n), zero(n, T(0)), o(n);
  for (std::size_t i = 0; i < n; ++i) x3[i] = xt[i] * T(3);
  s.origin(o);
  EXPECT_NEAR(static_cast<double>(s.distance(cs(x3), cs(yt))), so::distance(x, y, R), kTol<T> * R);
  const double d0 = so::distance(wide(o), y, R);
  EXPECT_NEAR(static_cast<double>(s.distance(cs(zero), cs(yt))), d0, kTol<T> * R);
  EXPECT_NEAR(static_cast<double>(s.distance(cs(yt), cs(zero))), d0, kTol<T> * R);
  std::vector<T> a(n), b(n);
  s.log(cs(zero), cs(yt), a);
  s.log0(cs(yt), b);
  EXPECT_EQ(a, b);
  s.log(cs(x3), cs(yt), a);
  EXPECT_LE(max_abs_diff(wide(a), so::log(x, y, R)), 4 * kTol<T> * R);
  s.exp(cs(x3), cs(a), b);  // the result is on the sphere of radius R
  EXPECT_LE(max_abs_diff(wide(b), y), 4 * kTol<T> * R);
}

// S^0 ⊂ R^1 is degenerate but must not produce NaN.
TYPED_TEST(SphereTest, ZeroDimensionalSphere) {
  using T = TypeParam;
  const ra::sphere<T> s(T(1));
  const std::vector<T> p = {T(1)}, m = {T(-1)}, p2 = {T(2)}, zero = {T(0)};
  EXPECT_NEAR(static_cast<double>(s.distance(cs(p), cs(m))), kPi, kTol<T>);
  EXPECT_EQ(s.distance(cs(p), cs(p2)), T(0));
  std::vector<T> out(1);
  s.log(cs(p), cs(m), out);
  EXPECT_EQ(out[0], T(0));
  s.log(cs(p), cs(p2), out);
  EXPECT_EQ(out[0], T(0));
  s.transport(cs(p), cs(m), cs(zero), out);
  EXPECT_EQ(out[0], T(0));
  s.exp(cs(p), cs(zero), out);
  EXPECT_EQ(out[0], T(1));
  s.project(cs(m), out);
  EXPECT_EQ(out[0], T(-1));
}

TYPED_TEST(SphereTest, ValidatesSizes) {
  using T = TypeParam;
  const ra::sphere<T> s;
  const std::vector<T> a = {1, 0, 0}, b = {1, 0, 0, 0}, empty;
  std::vector<T> o3(3), o4(4), oe;
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { s.log(cs(a), cs(a), o4); }),
                     "sphere::log: out.size() is 4, expected 3");
  EXPECT_THROW((void)s.distance(cs(a), cs(b)), ra::dimension_mismatch);
  EXPECT_THROW((void)s.inner(cs(a), cs(b), cs(a)), ra::dimension_mismatch);
  EXPECT_THROW((void)s.inner(cs(a), cs(a), cs(b)), ra::dimension_mismatch);
  EXPECT_THROW(s.exp(cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_THROW(s.exp(cs(a), cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(s.log(cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_THROW(s.exp0(cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(s.log0(cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(s.transport(cs(a), cs(b), cs(a), o3), ra::dimension_mismatch);
  EXPECT_THROW(s.transport(cs(a), cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_THROW(s.transport(cs(a), cs(a), cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(s.project(cs(a), o4), ra::dimension_mismatch);
  EXPECT_THROW(s.project_tangent(cs(a), cs(b), o3), ra::dimension_mismatch);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>([&] { (void)s.distance(cs(empty), cs(empty)); }),
      "sphere::distance: x is empty");
  EXPECT_THROW(s.origin(oe), ra::invalid_argument);
  EXPECT_THROW(s.exp0(cs(empty), oe), ra::invalid_argument);
  EXPECT_THROW(s.project(cs(empty), oe), ra::invalid_argument);
}

TYPED_TEST(SphereTest, NonFiniteInputPropagates) {
  using T = TypeParam;
  const ra::sphere<T> s;
  const std::vector<T> a = {1, 0, 0}, nan = {std::numeric_limits<T>::quiet_NaN(), 0, 1};
  EXPECT_TRUE(std::isnan(s.distance(cs(a), cs(nan))));
}

// ================================================================================================
// Product manifolds
// ================================================================================================

template <class T>
class ProductTest : public ::testing::Test {};
TYPED_TEST_SUITE(ProductTest, Scalars);

// E^4 × S^2 (c = 1, ambient 3) × S^4 (c = 10, ambient 5), ambient 12.
template <class T>
auto make_ess() {
  return ra::product_manifold(std::array<std::size_t, 3>{4, 3, 5}, ra::euclidean_space<T>{},
                              ra::sphere<T>(T(1)), ra::sphere<T>(T(10)));
}

struct ess_layout {
  std::size_t off[3] = {0, 4, 7};
  std::size_t dim[3] = {4, 3, 5};
  double r[3] = {0, 1, 0};  // radius of the spherical parts (set per T)
};

template <class T>
ess_layout layout() {
  ess_layout l;
  l.r[1] = radius_of<T>(1.0);
  l.r[2] = radius_of<T>(10.0);
  return l;
}

so::vec slice(const so::vec& v, std::size_t off, std::size_t n) {
  return so::vec(v.begin() + static_cast<std::ptrdiff_t>(off),
                 v.begin() + static_cast<std::ptrdiff_t>(off + n));
}

void put(so::vec& v, std::size_t off, const so::vec& part) {
  std::copy(part.begin(), part.end(), v.begin() + static_cast<std::ptrdiff_t>(off));
}

// A random product point (Gaussian Euclidean part, sphere parts uniform).
template <class T>
so::vec random_product_point(std::mt19937_64& rng) {
  const auto l = layout<T>();
  so::vec x(12);
  put(x, 0, so::gaussian(4, rng));
  put(x, 4, so::random_point(3, l.r[1], rng));
  put(x, 7, so::random_point(5, l.r[2], rng));
  return rounded<T>(x);
}

// A random tangent vector at x with sphere parts of length frac·π·R.
template <class T>
so::vec random_product_tangent(const so::vec& x, double frac, std::mt19937_64& rng) {
  const auto l = layout<T>();
  so::vec v(12);
  put(v, 0, so::gaussian(4, rng));
  put(v, 4, so::random_tangent(slice(x, 4, 3), frac * kPi * l.r[1], rng));
  put(v, 7, so::random_tangent(slice(x, 7, 5), frac * kPi * l.r[2], rng));
  return rounded<T>(v);
}

TYPED_TEST(ProductTest, LayoutAndAccessors) {
  using T = TypeParam;
  const auto pm = make_ess<T>();
  static_assert(
      std::is_same_v<std::remove_cvref_t<decltype(pm)>,
                     ra::product_manifold<ra::euclidean_space<T>, ra::sphere<T>, ra::sphere<T>>>);
  EXPECT_EQ(pm.ambient_dim(), 12u);
  EXPECT_EQ(pm.offset(0), 0u);
  EXPECT_EQ(pm.offset(1), 4u);
  EXPECT_EQ(pm.offset(2), 7u);
  EXPECT_EQ(pm.component_dim(2), 5u);
  EXPECT_EQ(pm.ambient_dims(), (std::array<std::size_t, 3>{4, 3, 5}));
  EXPECT_EQ(pm.template component<1>().c(), T(1));
  EXPECT_EQ(pm.template component<2>().curvature(), T(10));
  EXPECT_EQ(pm.template component<0>().curvature(), T(0));
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { (void)pm.offset(3); }),
                     "component index 3, expected < 3");
  EXPECT_THROW((void)pm.component_dim(7), ra::invalid_argument);
  // CTAD also works with a braced list of sizes.
  const ra::product_manifold braced({2, 5}, ra::euclidean_space<T>{}, ra::sphere<T>(T(3)));
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(braced)>,
                               ra::product_manifold<ra::euclidean_space<T>, ra::sphere<T>>>);
  EXPECT_EQ(braced.ambient_dim(), 7u);
  EXPECT_THROW(ra::product_manifold(std::array<std::size_t, 2>{ra::max_dimension, 1},
                                    ra::euclidean_space<T>{}, ra::sphere<T>{}),
               ra::input_too_large);
}

TYPED_TEST(ProductTest, DistanceIsRootSumOfSquaredComponentDistances) {
  using T = TypeParam;
  const auto pm = make_ess<T>();
  const auto l = layout<T>();
  std::mt19937_64 rng(31);
  for (int rep = 0; rep < 20; ++rep) {
    const so::vec x = random_product_point<T>(rng), y = random_product_point<T>(rng);
    const double de = so::euclidean_distance(slice(x, 0, 4), slice(y, 0, 4));
    const double d1 = so::distance(slice(x, 4, 3), slice(y, 4, 3), l.r[1]);
    const double d2 = so::distance(slice(x, 7, 5), slice(y, 7, 5), l.r[2]);
    const double ref = std::sqrt(de * de + d1 * d1 + d2 * d2);
    const auto xt = to_t<T>(x), yt = to_t<T>(y);
    EXPECT_NEAR(static_cast<double>(pm.distance(cs(xt), cs(yt))), ref, kTol<T> * ref);
    std::vector<T> parts(3);
    pm.component_distances(cs(xt), cs(yt), parts);
    EXPECT_NEAR(static_cast<double>(parts[0]), de, kTol<T> * de);
    EXPECT_NEAR(static_cast<double>(parts[1]), d1, kTol<T> * l.r[1]);
    EXPECT_NEAR(static_cast<double>(parts[2]), d2, kTol<T> * l.r[2]);
    EXPECT_EQ(pm.distance(cs(xt), cs(xt)), T(0));
  }
}

TYPED_TEST(ProductTest, ComponentwiseMapsAgainstOracle) {
  using T = TypeParam;
  const auto pm = make_ess<T>();
  const auto l = layout<T>();
  std::mt19937_64 rng(32);
  for (int rep = 0; rep < 20; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep=" << rep);
    const so::vec x = random_product_point<T>(rng);
    const so::vec v = random_product_tangent<T>(x, 0.6, rng);
    const so::vec u = random_product_tangent<T>(x, 0.1, rng);
    const auto xt = to_t<T>(x), vt = to_t<T>(v), ut = to_t<T>(u);

    // inner = Σ inner_i (all Euclidean dot products here).
    EXPECT_NEAR(static_cast<double>(pm.inner(cs(xt), cs(ut), cs(vt))), so::dot(u, v),
                4 * kTol<T> * so::norm(u) * so::norm(v));

    // exp componentwise; log ∘ exp = id.
    std::vector<T> y(12), back(12);
    pm.exp(cs(xt), cs(vt), y);
    so::vec ref(12);
    for (std::size_t i = 0; i < 4; ++i) ref[i] = x[i] + v[i];
    put(ref, 4, so::exp(slice(x, 4, 3), slice(v, 4, 3), l.r[1]));
    put(ref, 7, so::exp(slice(x, 7, 5), slice(v, 7, 5), l.r[2]));
    EXPECT_LE(max_abs_diff(wide(y), ref), 4 * kTol<T> * std::max(1.0, so::norm(x)));
    pm.log(cs(xt), cs(y), back);
    EXPECT_LE(max_abs_diff(wide(back), v), 8 * kTol<T> * std::max(1.0, so::norm(v)));
    EXPECT_NEAR(static_cast<double>(pm.distance(cs(xt), cs(y))), so::norm(v),
                8 * kTol<T> * std::max(1.0, so::norm(v)));

    // log componentwise; exp ∘ log = id.
    const so::vec w = random_product_point<T>(rng);
    const auto wt = to_t<T>(w);
    if (so::angle(slice(x, 4, 3), slice(w, 4, 3)) > 0.95 * kPi ||
        so::angle(slice(x, 7, 5), slice(w, 7, 5)) > 0.95 * kPi)
      continue;
    std::vector<T> lw(12), again(12);
    pm.log(cs(xt), cs(wt), lw);
    for (std::size_t i = 0; i < 4; ++i) ref[i] = w[i] - x[i];
    put(ref, 4, so::log(slice(x, 4, 3), slice(w, 4, 3), l.r[1]));
    put(ref, 7, so::log(slice(x, 7, 5), slice(w, 7, 5), l.r[2]));
    EXPECT_LE(max_abs_diff(wide(lw), ref), 8 * kTol<T> * std::max(1.0, so::norm(ref)));
    pm.exp(cs(xt), cs(lw), again);
    EXPECT_LE(max_abs_diff(wide(again), w), 8 * kTol<T> * std::max(1.0, so::norm(w)));

    // transport componentwise: identity on E, rotation on the spheres; an isometry.
    std::vector<T> pu(12), pv(12);
    pm.transport(cs(xt), cs(wt), cs(ut), pu);
    pm.transport(cs(xt), cs(wt), cs(vt), pv);
    for (std::size_t i = 0; i < 4; ++i) ref[i] = u[i];
    put(ref, 4, so::transport(slice(x, 4, 3), slice(w, 4, 3), slice(u, 4, 3)));
    put(ref, 7, so::transport(slice(x, 7, 5), slice(w, 7, 5), slice(u, 7, 5)));
    EXPECT_LE(max_abs_diff(wide(pu), ref), 8 * kTol<T> * std::max(1.0, so::norm(u)));
    EXPECT_NEAR(static_cast<double>(pm.inner(cs(wt), cs(pu), cs(pv))), so::dot(u, v),
                8 * kTol<T> * so::norm(u) * so::norm(v));
  }
}

TYPED_TEST(ProductTest, OriginProjectAndOriginMaps) {
  using T = TypeParam;
  const auto pm = make_ess<T>();
  const auto l = layout<T>();
  std::mt19937_64 rng(33);
  std::vector<T> o(12);
  pm.origin(o);
  so::vec oref(12, 0.0);
  oref[4] = l.r[1];
  oref[7] = l.r[2];
  EXPECT_LE(max_abs_diff(wide(o), oref), kTol<T>);

  const so::vec g = rounded<T>(so::gaussian(12, rng));
  std::vector<T> p(12);
  pm.project(cs(to_t<T>(g)), p);
  so::vec pref = g;
  put(pref, 4, so::to_sphere(slice(g, 4, 3), l.r[1]));
  put(pref, 7, so::to_sphere(slice(g, 7, 5), l.r[2]));
  EXPECT_LE(max_abs_diff(wide(p), pref), 4 * kTol<T> * so::norm(g));

  const so::vec v = random_product_tangent<T>(oref, 0.4, rng);
  std::vector<T> e0(12), e(12), l0(12);
  pm.exp0(cs(to_t<T>(v)), e0);
  pm.exp(cs(o), cs(to_t<T>(v)), e);
  EXPECT_LE(max_abs_diff(wide(e0), wide(e)), 4 * kTol<T> * 4);
  pm.log0(cs(e0), l0);
  EXPECT_LE(max_abs_diff(wide(l0), v), 8 * kTol<T> * std::max(1.0, so::norm(v)));
}

TYPED_TEST(ProductTest, MismatchedSizesThrow) {
  using T = TypeParam;
  const auto pm = make_ess<T>();
  const std::vector<T> a(12, T(1)), b(11, T(1));
  std::vector<T> o12(12), o13(13), o2(2);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)pm.distance(cs(a), cs(b)); }),
      "product_manifold::distance: y.size() is 11, expected 12");
  EXPECT_THROW((void)pm.distance(cs(b), cs(a)), ra::dimension_mismatch);
  EXPECT_THROW((void)pm.inner(cs(a), cs(a), cs(b)), ra::dimension_mismatch);
  EXPECT_THROW(pm.exp(cs(a), cs(b), o12), ra::dimension_mismatch);
  EXPECT_THROW(pm.exp(cs(a), cs(a), o13), ra::dimension_mismatch);
  EXPECT_THROW(pm.log(cs(a), cs(b), o12), ra::dimension_mismatch);
  EXPECT_THROW(pm.exp0(cs(b), o12), ra::dimension_mismatch);
  EXPECT_THROW(pm.log0(cs(a), o13), ra::dimension_mismatch);
  EXPECT_THROW(pm.transport(cs(a), cs(a), cs(b), o12), ra::dimension_mismatch);
  EXPECT_THROW(pm.project(cs(a), o13), ra::dimension_mismatch);
  EXPECT_THROW(pm.origin(o13), ra::dimension_mismatch);
  EXPECT_THROW(pm.component_distances(cs(a), cs(a), o2), ra::dimension_mismatch);
}

// A factor of ambient size 0 is skipped (the sphere would reject an empty span).
TYPED_TEST(ProductTest, EmptyFactorsAreSkipped) {
  using T = TypeParam;
  const ra::product_manifold pm(std::array<std::size_t, 3>{3, 0, 2}, ra::euclidean_space<T>{},
                                ra::sphere<T>(T(1)), ra::sphere<T>(T(1)));
  EXPECT_EQ(pm.ambient_dim(), 5u);
  const std::vector<T> x = {1, 2, 3, 0, 1}, y = {1, 2, 0, 1, 0};
  // sqrt(3² + (π/2)²)
  EXPECT_NEAR(static_cast<double>(pm.distance(cs(x), cs(y))), std::sqrt(9 + kPi * kPi / 4),
              kTol<T> * 4);
  std::vector<T> o(5), l(5), e(5), parts(3);
  pm.origin(o);
  EXPECT_EQ(wide(o), (so::vec{0, 0, 0, 1, 0}));
  pm.log(cs(x), cs(y), l);
  pm.exp(cs(x), cs(l), e);
  EXPECT_LE(max_abs_diff(wide(e), wide(y)), kTol<T> * 4);
  pm.component_distances(cs(x), cs(y), parts);
  EXPECT_EQ(parts[1], T(0));
}

// ================================================================================================
// Mixed-curvature space E^e × H^h × S^s (make_mixed_curvature_space)
// ================================================================================================

template <class T>
class MixedCurvatureTest : public ::testing::Test {};
TYPED_TEST_SUITE(MixedCurvatureTest, Scalars);

static_assert(ra::manifold<ra::mixed_curvature_space<float>>);
static_assert(ra::manifold<ra::mixed_curvature_space<double>>);
static_assert(!ra::constant_curvature_manifold<ra::mixed_curvature_space<double>>);

// [E^3 | H^4 (c_h = 0.5) | S^4 ⊂ R^5 (c_s = 2)], ambient 12.
constexpr ra::component_dims kMixedDims{3, 4, 5};
constexpr double kCh = 0.5;
constexpr double kCs = 2.0;

template <class T>
so::vec random_mixed_point(std::mt19937_64& rng) {
  so::vec x(12);
  put(x, 0, so::gaussian(3, rng));
  put(x, 3, so::random_ball_point(4, kCh, 0.8, rng));
  put(x, 7, so::random_point(5, radius_of<T>(kCs), rng));
  return rounded<T>(x);
}

// Oracle component distances (E, H, S) of two mixed points.
std::array<double, 3> mixed_distances(const so::vec& x, const so::vec& y, double rs) {
  return {so::euclidean_distance(slice(x, 0, 3), slice(y, 0, 3)),
          so::poincare_distance(slice(x, 3, 4), slice(y, 3, 4), kCh),
          so::distance(slice(x, 7, 5), slice(y, 7, 5), rs)};
}

TYPED_TEST(MixedCurvatureTest, LayoutCurvaturesAndOrigin) {
  using T = TypeParam;
  const auto ms = ra::make_mixed_curvature_space<T>(kMixedDims, T(kCh), T(kCs));
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(ms)>, ra::mixed_curvature_space<T>>);
  EXPECT_EQ(ms.ambient_dim(), kMixedDims.total());
  EXPECT_EQ(ms.offset(1), kMixedDims.hyperbolic_offset());
  EXPECT_EQ(ms.offset(2), kMixedDims.spherical_offset());
  EXPECT_EQ(ms.template component<0>().curvature(), T(0));
  EXPECT_EQ(ms.template component<1>().curvature(), -T(kCh));
  EXPECT_EQ(ms.template component<2>().curvature(), T(kCs));
  EXPECT_EQ(ms.template component<1>().eps(), ra::poincare_ball<T>::default_eps);
  std::vector<T> o(12);
  ms.origin(o);
  so::vec oref(12, 0.0);
  oref[7] = radius_of<T>(kCs);
  EXPECT_LE(max_abs_diff(wide(o), oref), kTol<T>);
  EXPECT_THROW((void)ra::make_mixed_curvature_space<T>(kMixedDims, T(0), T(1)),
               ra::invalid_argument);
  EXPECT_THROW((void)ra::make_mixed_curvature_space<T>(kMixedDims, T(1), T(-1)),
               ra::invalid_argument);
  // Missing parts are allowed: E^2 × S^2 ⊂ R^3 with no hyperbolic factor.
  const auto es = ra::make_mixed_curvature_space<T>(ra::component_dims{2, 0, 3}, T(1), T(1));
  const std::vector<T> a = {0, 0, 1, 0, 0}, b = {3, 4, 0, 1, 0};
  EXPECT_NEAR(static_cast<double>(es.distance(cs(a), cs(b))), std::sqrt(25 + kPi * kPi / 4),
              kTol<T> * 6);
}

TYPED_TEST(MixedCurvatureTest, DistanceDecomposesOverFactors) {
  using T = TypeParam;
  const auto ms = ra::make_mixed_curvature_space<T>(kMixedDims, T(kCh), T(kCs));
  const double rs = radius_of<T>(kCs);
  std::mt19937_64 rng(41);
  for (int rep = 0; rep < 20; ++rep) {
    const so::vec x = random_mixed_point<T>(rng), y = random_mixed_point<T>(rng);
    const auto d = mixed_distances(x, y, rs);
    const double ref = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    const auto xt = to_t<T>(x), yt = to_t<T>(y);
    // The ball's distance loses ~λ_x·ε near its boundary (√c‖x‖ ≤ 0.8 here: λ ≤ 5.6).
    EXPECT_NEAR(static_cast<double>(ms.distance(cs(xt), cs(yt))), ref, 4 * kTol<T> * ref);
    std::vector<T> parts(3);
    ms.component_distances(cs(xt), cs(yt), parts);
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_NEAR(static_cast<double>(parts[i]), d[i], 4 * kTol<T> * std::max(1.0, d[i]));
  }
}

TYPED_TEST(MixedCurvatureTest, ExpLogAndTransportAgainstOracle) {
  using T = TypeParam;
  const auto ms = ra::make_mixed_curvature_space<T>(kMixedDims, T(kCh), T(kCs));
  const double rs = radius_of<T>(kCs);
  std::mt19937_64 rng(42);
  for (int rep = 0; rep < 20; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep=" << rep);
    const so::vec x = random_mixed_point<T>(rng), y = random_mixed_point<T>(rng);
    if (so::angle(slice(x, 7, 5), slice(y, 7, 5)) > 0.95 * kPi) continue;
    const auto xt = to_t<T>(x), yt = to_t<T>(y);
    std::vector<T> l(12), back(12);
    ms.log(cs(xt), cs(yt), l);
    so::vec ref(12);
    for (std::size_t i = 0; i < 3; ++i) ref[i] = y[i] - x[i];
    put(ref, 3, so::poincare_log(slice(x, 3, 4), slice(y, 3, 4), kCh));
    put(ref, 7, so::log(slice(x, 7, 5), slice(y, 7, 5), rs));
    const double scale = std::max(1.0, so::norm(ref));
    EXPECT_LE(max_abs_diff(wide(l), ref), 8 * kTol<T> * scale);
    ms.exp(cs(xt), cs(l), back);  // exp ∘ log = id
    EXPECT_LE(max_abs_diff(wide(back), y), 8 * kTol<T> * scale);
    // ‖log_x y‖_x = d(x, y) in the product metric.
    const auto d = mixed_distances(x, y, rs);
    const double dist = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    EXPECT_NEAR(std::sqrt(static_cast<double>(ms.inner(cs(xt), cs(l), cs(l)))), dist,
                8 * kTol<T> * std::max(1.0, dist));

    // Transport is an isometry of the product metric: ⟨Γu, Γv⟩_y = ⟨u, v⟩_x, where
    // ⟨u, v⟩_x = ⟨u_E, v_E⟩ + λ_x²⟨u_H, v_H⟩ + ⟨u_S, v_S⟩ (oracle).
    so::vec u(12), v(12);
    put(u, 0, so::gaussian(3, rng));
    put(u, 3, so::gaussian(4, rng));
    put(u, 7, so::random_tangent(slice(x, 7, 5), 1.0, rng));
    put(v, 0, so::gaussian(3, rng));
    put(v, 3, so::gaussian(4, rng));
    put(v, 7, so::random_tangent(slice(x, 7, 5), 1.0, rng));
    u = rounded<T>(u);
    v = rounded<T>(v);
    const double lam = so::poincare_lambda(slice(x, 3, 4), kCh);
    const double uv = so::dot(slice(u, 0, 3), slice(v, 0, 3)) +
                      lam * lam * so::dot(slice(u, 3, 4), slice(v, 3, 4)) +
                      so::dot(slice(u, 7, 5), slice(v, 7, 5));
    EXPECT_NEAR(static_cast<double>(ms.inner(cs(xt), cs(to_t<T>(u)), cs(to_t<T>(v)))), uv,
                4 * kTol<T> * lam * lam * so::norm(u) * so::norm(v));
    std::vector<T> pu(12), pv(12);
    ms.transport(cs(xt), cs(yt), cs(to_t<T>(u)), pu);
    ms.transport(cs(xt), cs(yt), cs(to_t<T>(v)), pv);
    EXPECT_NEAR(static_cast<double>(ms.inner(cs(yt), cs(pu), cs(pv))), uv,
                8 * kTol<T> * lam * lam * so::norm(u) * so::norm(v));
  }
}

// ================================================================================================
// Fréchet means (geometry/means.hpp) on the sphere and on product spaces
// ================================================================================================

template <class T>
class FrechetTest : public ::testing::Test {};
TYPED_TEST_SUITE(FrechetTest, Scalars);

template <class T>
ra::frechet_options tight_options() {
  ra::frechet_options o;
  o.max_iterations = 500;
  o.tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  return o;
}

// The mean's error is about the gradient tolerance (the objective is strongly convex near it).
template <class T>
constexpr double kMeanTol = std::is_same_v<T, float> ? 2e-4 : 1e-9;

template <class T>
ra::row_matrix<T> rows_of(const std::vector<so::vec>& pts) {
  ra::row_matrix<T> m(static_cast<Eigen::Index>(pts.size()),
                      static_cast<Eigen::Index>(pts[0].size()));
  for (std::size_t i = 0; i < pts.size(); ++i)
    for (std::size_t j = 0; j < pts[i].size(); ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<T>(pts[i][j]);
  return m;
}

// Two points with equal weights → the geodesic midpoint R·(x̂ + ŷ)/‖x̂ + ŷ‖.
TYPED_TEST(FrechetTest, SphereTwoPointsGiveTheGeodesicMidpoint) {
  using T = TypeParam;
  std::mt19937_64 rng(51);
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    for (std::size_t n : {std::size_t{3}, std::size_t{8}}) {
      SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n);
      const so::vec x = rounded<T>(so::random_point(n, R, rng));
      const so::vec y = rounded<T>(so::random_point(n, R, rng));
      if (so::angle(x, y) > 0.8 * kPi) continue;
      const auto xh = so::unit(x), yh = so::unit(y);
      so::vec mid(n);
      for (std::size_t i = 0; i < n; ++i) mid[i] = static_cast<double>(xh[i] + yh[i]);
      mid = so::to_sphere(mid, R);
      const auto P = rows_of<T>({x, y});
      const std::vector<T> w = {T(1), T(1)};
      std::vector<T> out(n);
      const auto r = ra::frechet_mean(s, P, w, out, tight_options<T>());
      EXPECT_TRUE(r.converged) << "gradient norm " << r.gradient_norm;
      EXPECT_LE(max_abs_diff(wide(out), mid), kMeanTol<T> * R);
    }
  }
}

// Weights (w, 1 − w) → the point at fraction 1 − w along the geodesic from x: exp_x((1 − w)·log_x
// y).
TYPED_TEST(FrechetTest, SphereWeightedPairFollowsTheGeodesic) {
  using T = TypeParam;
  std::mt19937_64 rng(52);
  const ra::sphere<T> s(T(1));
  const double R = radius_of<T>(1.0);
  for (double w0 : {0.1, 0.3, 0.75}) {
    const so::vec x = rounded<T>(so::random_point(4, R, rng));
    const so::vec y = rounded<T>(so::random_point(4, R, rng));
    if (so::angle(x, y) > 0.8 * kPi) continue;
    so::vec l = so::log(x, y, R);
    for (auto& a : l) a *= (1 - w0);
    const so::vec ref = so::exp(x, l, R);
    const auto P = rows_of<T>({x, y});
    const std::vector<T> w = {static_cast<T>(w0), static_cast<T>(1 - w0)};
    std::vector<T> out(4);
    const auto r = ra::frechet_mean(s, P, w, out, tight_options<T>());
    EXPECT_TRUE(r.converged);
    EXPECT_LE(max_abs_diff(wide(out), ref), kMeanTol<T> * R) << "w0=" << w0;
  }
}

// Points placed symmetrically about a pole (±a along two tangent axes) → the pole.
TYPED_TEST(FrechetTest, SphereSymmetricPointsAverageToThePole) {
  using T = TypeParam;
  for (double c : kCurvatures) {
    const ra::sphere<T> s(static_cast<T>(c));
    const double R = radius_of<T>(c);
    const double a = 0.6;  // angle from the pole
    // Pole e_2 (not the origin e_0, so the iteration has to move).
    const std::vector<so::vec> pts = {
        {R * std::sin(a), 0, R * std::cos(a)},
        {-R * std::sin(a), 0, R * std::cos(a)},
        {0, R * std::sin(a), R * std::cos(a)},
        {0, -R * std::sin(a), R * std::cos(a)},
    };
    const auto P = rows_of<T>(pts);
    const std::vector<T> w(4, T(0.25));
    std::vector<T> out(3);
    const auto r = ra::frechet_mean(s, P, w, out, tight_options<T>());
    EXPECT_TRUE(r.converged) << "c=" << c;
    EXPECT_LE(max_abs_diff(wide(out), {0, 0, R}), kMeanTol<T> * R) << "c=" << c;
  }
}

// On a product the objective separates, so the mean is componentwise: E → weighted average,
// each sphere → its own weighted geodesic point.
TYPED_TEST(FrechetTest, ProductMeanIsComponentwise) {
  using T = TypeParam;
  const auto pm = make_ess<T>();
  const auto l = layout<T>();
  std::mt19937_64 rng(53);
  for (int rep = 0; rep < 4; ++rep) {
    const so::vec x = random_product_point<T>(rng), y = random_product_point<T>(rng);
    if (so::angle(slice(x, 4, 3), slice(y, 4, 3)) > 0.8 * kPi ||
        so::angle(slice(x, 7, 5), slice(y, 7, 5)) > 0.8 * kPi)
      continue;
    const double w0 = 0.35;
    so::vec ref(12);
    for (std::size_t i = 0; i < 4; ++i) ref[i] = w0 * x[i] + (1 - w0) * y[i];
    for (std::size_t k = 1; k < 3; ++k) {
      so::vec lg = so::log(slice(x, l.off[k], l.dim[k]), slice(y, l.off[k], l.dim[k]), l.r[k]);
      for (auto& a : lg) a *= (1 - w0);
      put(ref, l.off[k], so::exp(slice(x, l.off[k], l.dim[k]), lg, l.r[k]));
    }
    const auto P = rows_of<T>({x, y});
    const std::vector<T> w = {static_cast<T>(w0), static_cast<T>(1 - w0)};
    std::vector<T> out(12);
    const auto r = ra::frechet_mean(pm, P, w, out, tight_options<T>());
    EXPECT_TRUE(r.converged) << "rep=" << rep;
    EXPECT_LE(max_abs_diff(wide(out), ref), kMeanTol<T> * std::max(1.0, so::norm(ref)));
  }
}

// The same on E × H × S: the hyperbolic part is the weighted point on the ball's geodesic.
TYPED_TEST(FrechetTest, MixedCurvatureMeanIsComponentwise) {
  using T = TypeParam;
  const auto ms = ra::make_mixed_curvature_space<T>(kMixedDims, T(kCh), T(kCs));
  const double rs = radius_of<T>(kCs);
  std::mt19937_64 rng(54);
  for (int rep = 0; rep < 4; ++rep) {
    const so::vec x = random_mixed_point<T>(rng), y = random_mixed_point<T>(rng);
    if (so::angle(slice(x, 7, 5), slice(y, 7, 5)) > 0.8 * kPi) continue;
    const double w0 = 0.6;
    so::vec ref(12);
    for (std::size_t i = 0; i < 3; ++i) ref[i] = w0 * x[i] + (1 - w0) * y[i];
    so::vec lh = so::poincare_log(slice(x, 3, 4), slice(y, 3, 4), kCh);
    for (auto& a : lh) a *= (1 - w0);
    put(ref, 3, so::poincare_exp(slice(x, 3, 4), lh, kCh));
    so::vec ls = so::log(slice(x, 7, 5), slice(y, 7, 5), rs);
    for (auto& a : ls) a *= (1 - w0);
    put(ref, 7, so::exp(slice(x, 7, 5), ls, rs));
    const auto P = rows_of<T>({x, y});
    const std::vector<T> w = {static_cast<T>(w0), static_cast<T>(1 - w0)};
    std::vector<T> out(12);
    const auto r = ra::frechet_mean(ms, P, w, out, tight_options<T>());
    EXPECT_TRUE(r.converged) << "rep=" << rep << " gradient norm " << r.gradient_norm;
    EXPECT_LE(max_abs_diff(wide(out), ref), 4 * kMeanTol<T> * std::max(1.0, so::norm(ref)));
  }
}

}  // namespace
