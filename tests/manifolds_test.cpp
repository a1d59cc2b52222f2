// The hyperbolic models (geometry/poincare.hpp, lorentz.hpp, models.hpp), the means
// (geometry/means.hpp) and the tangent-space mapper (curvature/tangent_space.hpp), for float and
// double, against the independent double-precision oracle in support/geometry_oracle.hpp
// (textbook formulas evaluated directly) and closed forms.
//
// Inputs are generated in double, rounded to T, and the oracle sees exactly the rounded values.
// Tolerances are k·ε_T (ε_T = machine epsilon of T: 1.2e-7 float, 2.2e-16 double) times the
// condition of the quantity, with k chosen ~10× above the largest error observed over all seeds:
// - interior points (√c‖x‖ ≤ 0.9, so λ_x ≤ 10.5): a point or tangent vector computed in T carries
//   a relative error of a few ε_T·λ_x (each formula divides by 1 − c‖x‖² once or twice), hence
//   k ≈ 1e3 relative to the vector's scale; the oracle's own error is ~1e-15, far below;
// - points within 1e-3 of the boundary (λ_x up to 2e4): the same errors grow with λ_x (the
//   inputs' own rounding moves distances by λ_x·ulp), and the oracle (double, textbook forms)
//   loses ~λ²·1e-16 there, so tolerances scale with λ (float) or λ² (double) as noted at each;
// - identities composed of several operations (gyro-identities, round trips) add the errors of
//   each step.
// Any real mistake (half conformal factor, wrong sign, wrong gyration) gives errors ≥ 1e-2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/curvature/tangent_space.hpp"
#include "ruvector/attention/geometry/lorentz.hpp"
#include "ruvector/attention/geometry/means.hpp"
#include "ruvector/attention/geometry/models.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "support/geometry_oracle.hpp"
#include "support/helpers.hpp"

namespace ra = ruvector::attention;
namespace geo = ruvector_test::geo;

namespace {

using ruvector_test::thrown_message;

static_assert(ra::manifold<ra::poincare_ball<float>>);
static_assert(ra::manifold<ra::poincare_ball<double>>);
static_assert(ra::constant_curvature_manifold<ra::poincare_ball<float>>);
static_assert(ra::constant_curvature_manifold<ra::poincare_ball<double>>);
static_assert(ra::manifold<ra::lorentz_hyperboloid<float>>);
static_assert(ra::manifold<ra::lorentz_hyperboloid<double>>);
static_assert(ra::constant_curvature_manifold<ra::lorentz_hyperboloid<float>>);
static_assert(ra::constant_curvature_manifold<ra::lorentz_hyperboloid<double>>);

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

constexpr double kCs[] = {0.1, 1.0, 10.0};
constexpr std::size_t kDims[] = {1, 2, 3, 5, 8, 17, 64};

template <class T>
constexpr double kEps = std::numeric_limits<T>::epsilon();

/// k machine epsilons of T.
template <class T>
constexpr double eps_tol(double k) {
  return k * kEps<T>;
}

template <class T>
using V = std::vector<T>;

template <class T>
V<T> tv(const geo::vec& x) {
  V<T> r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) r[i] = static_cast<T>(x[i]);
  return r;
}
template <class T>
geo::vec dv(const V<T>& x) {
  return geo::vec(x.begin(), x.end());
}
/// x rounded to T and back.
template <class T>
geo::vec rnd(const geo::vec& x) {
  return dv(tv<T>(x));
}
/// Calls f(out) with an n-vector of T and returns it as doubles.
template <class T, class F>
geo::vec out_of(std::size_t n, F&& f) {
  V<T> out(n, T(0));
  f(std::span<T>(out));
  return dv(out);
}
/// ‖got − ref‖ / max(‖ref‖, floor).
inline double verr(const geo::vec& got, const geo::vec& ref, double floor) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::infinity();
  const double e = geo::dist2(got, ref);
  return std::isnan(e) ? std::numeric_limits<double>::infinity()
                       : e / std::max(geo::norm(ref), floor);
}
/// |got − ref| / max(|ref|, floor).
inline double serr(double got, double ref, double floor) {
  const double e = std::abs(got - ref);
  return std::isnan(e) ? std::numeric_limits<double>::infinity()
                       : e / std::max(std::abs(ref), floor);
}

/// Rows of doubles as a row-major matrix of T.
template <class T>
ra::row_matrix<T> mat(const std::vector<geo::vec>& rows) {
  ra::row_matrix<T> m(static_cast<Eigen::Index>(rows.size()),
                      static_cast<Eigen::Index>(rows.empty() ? 0 : rows[0].size()));
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows[i].size(); ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<T>(rows[i][j]);
  return m;
}
template <class T>
geo::vec row_d(const ra::row_matrix<T>& m, std::size_t i) {
  geo::vec r(static_cast<std::size_t>(m.cols()));
  for (std::size_t j = 0; j < r.size(); ++j)
    r[j] = static_cast<double>(m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)));
  return r;
}

/// A random ball point (√c‖x‖ uniform in [lo, hi]) rounded to T.
template <class T>
geo::vec point(std::size_t n, double c, double lo, double hi, std::mt19937_64& gen) {
  return rnd<T>(geo::ball_point(n, c, lo, hi, gen));
}
/// A tangent vector at x whose Riemannian length λ_x‖v‖ is t/√c, t uniform in [0, t_max],
/// rounded to T.
template <class T>
geo::vec tangent(const geo::vec& x, double c, double t_max, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(0.0, t_max);
  const geo::vec dir = geo::gaussian(x.size(), 1.0, gen);
  const double len = u(gen) / (std::sqrt(c) * geo::lambda(x, c));
  return rnd<T>(geo::scale(len / std::max(geo::norm(dir), 1e-300), dir));
}

template <class T>
class PoincareTest : public ::testing::Test {};
template <class T>
class LorentzTest : public ::testing::Test {};
template <class T>
class ModelsTest : public ::testing::Test {};
template <class T>
class MeansTest : public ::testing::Test {};
template <class T>
class TangentSpaceTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(PoincareTest, Scalars);
TYPED_TEST_SUITE(LorentzTest, Scalars);
TYPED_TEST_SUITE(ModelsTest, Scalars);
TYPED_TEST_SUITE(MeansTest, Scalars);
TYPED_TEST_SUITE(TangentSpaceTest, Scalars);

// ================================================================================================
// Poincaré ball
// ================================================================================================

TYPED_TEST(PoincareTest, ConstructionAndAccessors) {
  using T = TypeParam;
  const ra::poincare_ball<T> unit;
  EXPECT_EQ(unit.c(), T(1));
  EXPECT_EQ(unit.curvature(), T(-1));
  EXPECT_EQ(unit.eps(), ra::poincare_ball<T>::default_eps);
  EXPECT_EQ(unit.max_norm(), T(1) - unit.eps());
  const ra::poincare_ball<T> b4(T(4), T(0.01));
  EXPECT_EQ(b4.curvature(), T(-4));
  EXPECT_NEAR(static_cast<double>(b4.max_norm()), 0.99 / 2.0, eps_tol<T>(4));
  EXPECT_EQ(ra::poincare_ball<float>::default_eps, 1e-5f);
  EXPECT_EQ(ra::poincare_ball<double>::default_eps, 1e-10);

  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  for (T c : {T(0), T(-1), nan, inf}) {
    const auto msg = thrown_message<ra::invalid_argument>([&] { (void)ra::poincare_ball<T>(c); });
    EXPECT_MESSAGE_HAS(msg, "c must be finite and > 0");
  }
  for (T e : {T(0), T(-0.1), T(0.5), T(1), nan, ra::poincare_ball<T>::min_eps / T(2)}) {
    const auto msg =
        thrown_message<ra::invalid_argument>([&] { (void)ra::poincare_ball<T>(T(1), e); });
    EXPECT_MESSAGE_HAS(msg, "eps must lie in");
  }
  EXPECT_NO_THROW((void)ra::poincare_ball<T>(T(1), ra::poincare_ball<T>::min_eps));
}

// d(0, x) = (2/√c) artanh(√c‖x‖), through three entry points.
TYPED_TEST(PoincareTest, DistanceFromOriginClosedForm) {
  using T = TypeParam;
  std::mt19937_64 gen(11);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    for (std::size_t n : kDims) {
      for (double r : {0.0, 1e-6, 0.1, 0.5, 0.9, 0.99, 0.999}) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " r=" << r);
        const geo::vec x = rnd<T>(geo::ball_point(n, c, r, gen));
        const double ref = 2.0 / std::sqrt(c) * std::atanh(std::sqrt(c) * geo::norm(x));
        const V<T> xt = tv<T>(x);
        const V<T> zero(n, T(0));
        // The closed form is well conditioned relative to itself: d/dr artanh = 1/(1 − r²).
        const double tol = eps_tol<T>(10) * geo::lambda(x, c);
        EXPECT_LE(serr(ball.distance_from_origin(xt), ref, 1e-300), tol);
        EXPECT_LE(serr(ball.distance(zero, xt), ref, 1e-300), tol);
        EXPECT_LE(serr(ball.distance(xt, zero), ref, 1e-300), tol);
        // ‖log_0 x‖_0 = d(0, x).
        const V<T> l = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.log0(xt, o); }));
        EXPECT_LE(serr(ball.norm(zero, l), ref, 1e-300), tol);
        if (r == 0.0) {
          EXPECT_EQ(ball.distance_from_origin(xt), T(0));
        }
      }
    }
  }
}

// Möbius addition, scalar multiplication, gyration, conformal factor and metric vs the oracle.
TYPED_TEST(PoincareTest, GyrovectorOperationsMatchOracle) {
  using T = TypeParam;
  std::mt19937_64 gen(12);
  const double tol = eps_tol<T>(16);  // relative to the ball radius 1/√c; see the file comment
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec y = point<T>(n, c, 0.0, 0.9, gen);
        // gyr[x, y] is linear; w is taken inside the ball because the oracle's definition
        // adds it in Möbius fashion (a vector far outside the ball makes its denominators tiny).
        const geo::vec w = point<T>(n, c, 0.0, 0.9, gen);
        const V<T> xt = tv<T>(x), yt = tv<T>(y), wt = tv<T>(w);
        // The oracle's nested textbook Möbius additions lose ~1e-16·λ⁴ (measured against a long
        // double evaluation: ≤ 3e-12 at λ = 10.5, where the library stays within ~10 ε).
        const double l4 = std::pow(std::max(geo::lambda(x, c), geo::lambda(y, c)), 4);
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(xt, yt, o); }),
                       geo::mobius_add(x, y, c), R),
                  tol);
        for (double r : {-2.5, -1.0, 0.0, 0.3, 1.0, 3.0}) {
          EXPECT_LE(verr(out_of<T>(n,
                                   [&](std::span<T> o) {
                                     ball.mobius_scalar_mul(static_cast<T>(r), xt, o);
                                   }),
                         geo::mobius_scalar(r, x, c), R),
                    tol)
              << "r=" << r;
        }
        // gyr[x, y]w by the closed form vs by its definition −(x⊕y) ⊕ (x ⊕ (y ⊕ w)).
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.gyration(xt, yt, wt, o); }),
                       geo::gyr(x, y, w, c), R),
                  tol + 1e-15 * l4);
        EXPECT_LE(serr(ball.conformal_factor(xt), geo::lambda(x, c), 1.0), eps_tol<T>(32));
        EXPECT_LE(serr(ball.inner(xt, yt, wt), geo::poincare_inner(x, y, w, c),
                       geo::lambda(x, c) * geo::lambda(x, c) * geo::norm(y) * geo::norm(w)),
                  eps_tol<T>(32));
        EXPECT_LE(serr(ball.norm(xt, wt), geo::lambda(x, c) * geo::norm(w), 1e-300),
                  eps_tol<T>(48));
        EXPECT_TRUE(ball.contains(xt));
      }
    }
  }
}

// exp_x, log_x (at arbitrary base points), exp_0 and log_0 vs the oracle.
TYPED_TEST(PoincareTest, ExpLogMatchOracle) {
  using T = TypeParam;
  std::mt19937_64 gen(13);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec y = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec v = tangent<T>(x, c, 3.0, gen);
        const V<T> xt = tv<T>(x), yt = tv<T>(y), vt = tv<T>(v);
        const double lx = geo::lambda(x, c);
        // exp: a point (scale R). log: a tangent vector whose Euclidean size is ~ d/λ_x.
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, vt, o); }),
                       geo::poincare_exp(x, v, c), R),
                  eps_tol<T>(48));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, yt, o); }),
                       geo::poincare_log(x, y, c), R / lx),
                  eps_tol<T>(160));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.exp0(vt, o); }),
                       geo::poincare_exp0(v, c), R),
                  eps_tol<T>(12));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.log0(yt, o); }),
                       geo::poincare_log0(y, c), R),
                  eps_tol<T>(32));
      }
    }
  }
}

// exp_x ∘ log_x = id and log_x ∘ exp_x = id at arbitrary base points.
TYPED_TEST(PoincareTest, ExpLogRoundTripsAtArbitraryBasePoints) {
  using T = TypeParam;
  std::mt19937_64 gen(14);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec y = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec v = tangent<T>(x, c, 3.0, gen);
        const V<T> xt = tv<T>(x), yt = tv<T>(y), vt = tv<T>(v);
        const V<T> l = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, yt, o); }));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, l, o); }), y, R),
                  eps_tol<T>(96));
        const V<T> e = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, vt, o); }));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, e, o); }), v,
                       R / geo::lambda(x, c)),
                  eps_tol<T>(192));
        const V<T> l0 = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.log0(yt, o); }));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.exp0(l0, o); }), y, R),
                  eps_tol<T>(12));
        // exp_x(0) = x and log_x(x) = 0 exactly.
        const V<T> zero(n, T(0));
        EXPECT_EQ(out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, zero, o); }), x);
        EXPECT_EQ(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, xt, o); }), geo::vec(n, 0.0));
      }
    }
  }
}

// Symmetry, d(x, x) = 0, positivity and the triangle inequality.
TYPED_TEST(PoincareTest, MetricAxioms) {
  using T = TypeParam;
  std::mt19937_64 gen(15);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 10; ++rep) {
        const V<T> x = tv<T>(point<T>(n, c, 0.0, 0.99, gen));
        const V<T> y = tv<T>(point<T>(n, c, 0.0, 0.99, gen));
        const V<T> z = tv<T>(point<T>(n, c, 0.0, 0.99, gen));
        const T dxy = ball.distance(x, y), dyz = ball.distance(y, z), dxz = ball.distance(x, z);
        EXPECT_EQ(dxy, ball.distance(y, x));  // the evaluated form is exactly symmetric
        EXPECT_EQ(ball.distance(x, x), T(0));
        if (x != y) {
          EXPECT_GT(dxy, T(0));
        }
        EXPECT_LE(static_cast<double>(dxz),
                  static_cast<double>(dxy) + static_cast<double>(dyz) +
                      eps_tol<T>(400) * (static_cast<double>(dxy + dyz) + 1.0 / std::sqrt(c)))
            << "c=" << c << " n=" << n;
      }
    }
  }
}

// Gyrogroup identities: left cancellation, gyrocommutativity, scalar associativity and
// distributivity; the gyration is a Euclidean isometry.
TYPED_TEST(PoincareTest, GyroIdentities) {
  using T = TypeParam;
  std::mt19937_64 gen(16);
  const double tol = eps_tol<T>(48);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 5; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = point<T>(n, c, 0.0, 0.8, gen);
        const geo::vec y = point<T>(n, c, 0.0, 0.8, gen);
        const V<T> xt = tv<T>(x), yt = tv<T>(y), mx = tv<T>(geo::neg(x));
        const auto op = [&](auto&& f) { return tv<T>(out_of<T>(n, f)); };
        // (−x) ⊕ (x ⊕ y) = y
        const V<T> xy = op([&](std::span<T> o) { ball.mobius_add(xt, yt, o); });
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(mx, xy, o); }), y, R),
                  tol);
        // x ⊕ y = gyr[x, y](y ⊕ x)
        const V<T> yx = op([&](std::span<T> o) { ball.mobius_add(yt, xt, o); });
        EXPECT_LE(
            verr(out_of<T>(n, [&](std::span<T> o) { ball.gyration(xt, yt, yx, o); }), dv(xy), R),
            tol);
        // ‖gyr[x, y]w‖ = ‖w‖
        const V<T> w = tv<T>(geo::gaussian(n, R, gen));
        const geo::vec gw = out_of<T>(n, [&](std::span<T> o) { ball.gyration(xt, yt, w, o); });
        EXPECT_LE(serr(geo::norm(gw), geo::norm(dv(w)), R), tol);
        for (auto [r1, r2] : {std::pair{0.5, 2.0}, std::pair{-1.5, 0.7}, std::pair{3.0, -0.2}}) {
          SCOPED_TRACE(::testing::Message() << "r1=" << r1 << " r2=" << r2);
          const T t1 = static_cast<T>(r1), t2 = static_cast<T>(r2);
          // r1 ⊗ (r2 ⊗ x) = (r1 r2) ⊗ x
          const V<T> r2x = op([&](std::span<T> o) { ball.mobius_scalar_mul(t2, xt, o); });
          EXPECT_LE(
              verr(out_of<T>(n, [&](std::span<T> o) { ball.mobius_scalar_mul(t1, r2x, o); }),
                   out_of<T>(n, [&](std::span<T> o) { ball.mobius_scalar_mul(t1 * t2, xt, o); }),
                   R),
              tol);
          // (r1 + r2) ⊗ x = r1 ⊗ x ⊕ r2 ⊗ x
          const V<T> r1x = op([&](std::span<T> o) { ball.mobius_scalar_mul(t1, xt, o); });
          EXPECT_LE(
              verr(out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(r1x, r2x, o); }),
                   out_of<T>(n, [&](std::span<T> o) { ball.mobius_scalar_mul(t1 + t2, xt, o); }),
                   R),
              tol);
        }
      }
    }
  }
}

// Left Möbius translation is an isometry: d(a ⊕ x, a ⊕ y) = d(x, y).
TYPED_TEST(PoincareTest, DistanceInvariantUnderMobiusTranslation) {
  using T = TypeParam;
  std::mt19937_64 gen(17);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        const V<T> a = tv<T>(point<T>(n, c, 0.0, 0.6, gen));
        const V<T> x = tv<T>(point<T>(n, c, 0.0, 0.6, gen));
        const V<T> y = tv<T>(point<T>(n, c, 0.0, 0.6, gen));
        const V<T> ax = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(a, x, o); }));
        const V<T> ay = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(a, y, o); }));
        const double d = ball.distance(x, y);
        // a ⊕ x reaches √c‖·‖ ≈ 0.94, λ ≈ 9: the rounding of the translated points moves the
        // distance by ~λ·ε.
        EXPECT_LE(serr(ball.distance(ax, ay), d, 1.0 / std::sqrt(c)), eps_tol<T>(32))
            << "c=" << c << " n=" << n;
      }
    }
  }
}

// Parallel transport: the oracle's (λ_x/λ_y) gyr[y, −x]v by definition; the Riemannian inner
// product is preserved; the geodesic's velocity log_x y is carried to −log_y x; P_{x→x} = id and
// P_{y→x} ∘ P_{x→y} = id.
TYPED_TEST(PoincareTest, ParallelTransport) {
  using T = TypeParam;
  std::mt19937_64 gen(18);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec y = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec u = tangent<T>(x, c, 2.0, gen);
        const geo::vec v = tangent<T>(x, c, 2.0, gen);
        const V<T> xt = tv<T>(x), yt = tv<T>(y), ut = tv<T>(u), vt = tv<T>(v);
        const double scale_y = R / geo::lambda(y, c);  // tangent vectors at y of length ~1/√c
        const geo::vec pu = out_of<T>(n, [&](std::span<T> o) { ball.transport(xt, yt, ut, o); });
        const geo::vec pv = out_of<T>(n, [&](std::span<T> o) { ball.transport(xt, yt, vt, o); });
        // See GyrovectorOperationsMatchOracle for the oracle's own error (~1e-15·λ⁴; measured
        // here against the smaller scale R/λ_y, hence the larger coefficient).
        const double l4 = std::pow(std::max(geo::lambda(x, c), geo::lambda(y, c)), 4);
        EXPECT_LE(verr(pu, geo::poincare_transport(x, y, u, c), scale_y),
                  eps_tol<T>(64) + 4e-15 * l4);
        const double in_x = geo::poincare_inner(x, u, v, c);
        const double in_y = geo::poincare_inner(y, pu, pv, c);
        EXPECT_LE(std::abs(in_y - in_x), eps_tol<T>(24) * 4.0 * R * R);
        // P(log_x y) = −log_y x
        const V<T> lxy = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, yt, o); }));
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.transport(xt, yt, lxy, o); }),
                       geo::neg(geo::poincare_log(y, x, c)), scale_y),
                  eps_tol<T>(64));
        EXPECT_LE(
            verr(out_of<T>(n, [&](std::span<T> o) { ball.transport(xt, xt, ut, o); }), u, 1e-300),
            eps_tol<T>(8));
        const V<T> put = tv<T>(pu);
        EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.transport(yt, xt, put, o); }), u,
                       R / geo::lambda(x, c)),
                  eps_tol<T>(24));
      }
    }
  }
}

// Points within 1e-3 of the boundary (√c‖x‖ ∈ [1 − 1e-3, 1 − 1e-4], λ up to 2e4).
TYPED_TEST(PoincareTest, PointsNearTheBoundary) {
  using T = TypeParam;
  std::mt19937_64 gen(19);
  const bool is_float = std::is_same_v<T, float>;
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : {std::size_t{2}, std::size_t{7}, std::size_t{32}}) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = point<T>(n, c, 1.0 - 1e-3, 1.0 - 1e-4, gen);
        const geo::vec y = point<T>(n, c, 1.0 - 1e-3, 1.0 - 1e-4, gen);
        const V<T> xt = tv<T>(x), yt = tv<T>(y);
        ASSERT_TRUE(ball.contains(xt));
        const double lx = geo::lambda(x, c), ly = geo::lambda(y, c);
        // Distances (~10/√c) against the closed forms. float: the library's relative error in
        // 1 − c‖x‖² is ~ε·λ, moving d by ~ε·λ/√c. double: the oracle's artanh of a value
        // within ~1e-8 of 1 is good to ~1e-16·λ², which dominates.
        const double dref = geo::poincare_dist(x, y, c);
        const double dtol = is_float ? eps_tol<T>(1) * std::max(lx, ly) : 1e-15 * lx * ly;
        EXPECT_LE(serr(ball.distance(xt, yt), dref, R), dtol);
        EXPECT_LE(serr(ball.distance_from_origin(xt), geo::poincare_dist0(x, c), R),
                  eps_tol<T>(2) * lx);
        // log/exp round trip (relative to the ball radius: the recovered point sits within
        // λ·ε of the boundary, where one ulp of a coordinate is ε·R).
        const V<T> l = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, yt, o); }));
        const geo::vec back = out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, l, o); });
        EXPECT_LE(verr(back, y, R), eps_tol<T>(24) * std::max(lx, ly));
        EXPECT_TRUE(ball.contains(tv<T>(back)));
        // ... and in hyperbolic terms: a relative error ε in the tangent vector moves the end of
        // a geodesic of length d by ~ε·sinh(√c·d)/√c (Jacobi fields grow like sinh), which for
        // these far-apart boundary points (√c·d up to ~17) is the whole error budget in float.
        EXPECT_LE(geo::poincare_dist_arcosh(back, y, c),
                  (eps_tol<T>(16) * std::sinh(std::sqrt(c) * dref) + 1e-15 * lx * ly) * R);
        // Transport keeps the Riemannian inner product (both sides are O(1/c)).
        const V<T> u = tv<T>(tangent<T>(x, c, 2.0, gen)), v = tv<T>(tangent<T>(x, c, 2.0, gen));
        const geo::vec pu = out_of<T>(n, [&](std::span<T> o) { ball.transport(xt, yt, u, o); });
        const geo::vec pv = out_of<T>(n, [&](std::span<T> o) { ball.transport(xt, yt, v, o); });
        EXPECT_LE(
            std::abs(geo::poincare_inner(y, pu, pv, c) - geo::poincare_inner(x, dv(u), dv(v), c)),
            eps_tol<T>(8) * std::max(lx, ly) * 4.0 * R * R);
        // Möbius sums stay strictly inside.
        const V<T> s = tv<T>(out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(xt, yt, o); }));
        EXPECT_TRUE(ball.contains(s));
        EXPECT_LE(geo::norm(dv(s)), static_cast<double>(ball.max_norm()) * (1 + eps_tol<T>(4)));
      }
    }
  }
}

// Close points keep their digits (no arcosh of 1 + tiny, no ‖x‖² + ‖y‖² − 2⟨x, y⟩), and outputs
// are projected to max_norm.
TYPED_TEST(PoincareTest, ClosePointsAndProjection) {
  using T = TypeParam;
  std::mt19937_64 gen(20);
  const double h = std::is_same_v<T, float> ? 1e-4 : 1e-9;
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      const geo::vec x = point<T>(n, c, 0.2, 0.9, gen);
      const geo::vec y = rnd<T>(geo::add(x, geo::scale(h * R, geo::gaussian(n, 1.0, gen))));
      const V<T> xt = tv<T>(x), yt = tv<T>(y);
      // d(x, y) = λ_x‖y − x‖ (1 + O(λ‖y − x‖)), and y − x is exact in T here.
      const double dxy = geo::dist2(x, y);
      const double lx = geo::lambda(x, c);
      const double tol = 8.0 * lx * dxy / R + eps_tol<T>(64) * lx;
      EXPECT_LE(serr(ball.distance(xt, yt), lx * dxy, 1e-300), tol) << "c=" << c << " n=" << n;
      EXPECT_LE(
          verr(out_of<T>(n, [&](std::span<T> o) { ball.log(xt, yt, o); }), geo::sub(y, x), 1e-300),
          tol);
    }
    // Huge tangent vectors, far points, large scalars: outputs stay within max_norm.
    for (std::size_t n : kDims) {
      const geo::vec x = point<T>(n, c, 0.5, 0.99, gen);
      const V<T> xt = tv<T>(x);
      const V<T> big = tv<T>(geo::scale(1e6 * R, geo::gaussian(n, 1.0, gen)));
      const double mn = static_cast<double>(ball.max_norm());
      for (const geo::vec& out :
           {out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, big, o); }),
            out_of<T>(n, [&](std::span<T> o) { ball.exp0(big, o); }),
            out_of<T>(n, [&](std::span<T> o) { ball.mobius_scalar_mul(T(1e4), xt, o); }),
            out_of<T>(n, [&](std::span<T> o) { ball.mobius_add(xt, xt, o); }),
            out_of<T>(n, [&](std::span<T> o) { ball.project(big, o); })}) {
        EXPECT_LE(geo::norm(out), mn * (1 + eps_tol<T>(4))) << "c=" << c << " n=" << n;
        EXPECT_TRUE(ball.contains(tv<T>(out)));
      }
      // project: max_norm·x/‖x‖ outside, identity inside.
      const geo::vec pb = out_of<T>(n, [&](std::span<T> o) { ball.project(big, o); });
      EXPECT_NEAR(geo::norm(pb), mn, eps_tol<T>(8) * mn);
      EXPECT_LE(verr(pb, geo::scale(mn / geo::norm(dv(big)), dv(big)), 1e-300), eps_tol<T>(8));
      EXPECT_EQ(out_of<T>(n, [&](std::span<T> o) { ball.project(xt, o); }), x);
      EXPECT_EQ(out_of<T>(n, [&](std::span<T> o) { ball.origin(o); }), geo::vec(n, 0.0));
      // Finite tangent vectors whose squared norm overflows T still map onto the max_norm sphere.
      const V<T> huge(n, std::numeric_limits<T>::max() / T(4));
      const geo::vec dir = geo::scale(mn / std::sqrt(double(n)), geo::vec(n, 1.0));
      EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.exp0(huge, o); }), dir, 1e-300),
                eps_tol<T>(64));
      EXPECT_LE(verr(out_of<T>(n, [&](std::span<T> o) { ball.project(huge, o); }), dir, 1e-300),
                eps_tol<T>(64));
      const geo::vec eh = out_of<T>(n, [&](std::span<T> o) { ball.exp(xt, huge, o); });
      EXPECT_LE(geo::norm(eh), mn * (1 + eps_tol<T>(4)));
      EXPECT_TRUE(ball.contains(tv<T>(eh)));
    }
  }
}

TYPED_TEST(PoincareTest, ErrorsAndEdgeCases) {
  using T = TypeParam;
  const ra::poincare_ball<T> ball;
  const V<T> x{T(0.1), T(0.2), T(0.3)}, y{T(-0.2), T(0.1), T(0)};
  const V<T> two(2, T(0.1));
  V<T> out(3), out2(2);
  using DM = ra::dimension_mismatch;
  EXPECT_MESSAGE_HAS(thrown_message<DM>([&] { (void)ball.distance(x, two); }),
                     "poincare_ball::distance: y.size() is 2, expected 3");
  EXPECT_MESSAGE_HAS(thrown_message<DM>([&] { ball.mobius_add(x, y, out2); }), "out.size()");
  thrown_message<DM>([&] { ball.mobius_add(x, two, out); });
  thrown_message<DM>([&] { ball.mobius_scalar_mul(T(1), x, out2); });
  thrown_message<DM>([&] { ball.gyration(x, y, two, out); });
  thrown_message<DM>([&] { ball.exp(x, two, out); });
  thrown_message<DM>([&] { ball.log(x, y, out2); });
  thrown_message<DM>([&] { ball.exp0(x, out2); });
  thrown_message<DM>([&] { ball.log0(x, out2); });
  thrown_message<DM>([&] { ball.transport(x, y, two, out); });
  thrown_message<DM>([&] { ball.project(x, out2); });
  thrown_message<DM>([&] { (void)ball.inner(x, two, y); });
  thrown_message<DM>([&] { (void)ball.norm(x, two); });

  // Outside the ball (and on the boundary): invalid_argument naming the argument.
  const V<T> outside{T(0.8), T(0.8), T(0)};
  const V<T> boundary{T(1), T(0), T(0)};
  using IA = ra::invalid_argument;
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { (void)ball.distance(x, outside); }),
                     "poincare_ball::distance: y is not inside the Poincaré ball");
  thrown_message<IA>([&] { (void)ball.distance(boundary, x); });
  thrown_message<IA>([&] { ball.log(outside, x, out); });
  thrown_message<IA>([&] { ball.log0(boundary, out); });
  thrown_message<IA>([&] { ball.exp(outside, x, out); });
  thrown_message<IA>([&] { ball.transport(x, outside, y, out); });
  thrown_message<IA>([&] { (void)ball.conformal_factor(outside); });
  EXPECT_FALSE(ball.contains(outside));
  EXPECT_FALSE(ball.contains(boundary));

  // NaN/Inf: non_finite_input naming the coordinate.
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  const V<T> xnan{T(0.1), nan, T(0)};
  const V<T> vinf{T(0), T(0), inf};
  using NF = ra::non_finite_input;
  EXPECT_MESSAGE_HAS(thrown_message<NF>([&] { (void)ball.distance(x, xnan); }),
                     "poincare_ball::distance: y[1]");
  thrown_message<NF>([&] { ball.mobius_add(xnan, x, out); });
  EXPECT_MESSAGE_HAS(thrown_message<NF>([&] { ball.exp(x, vinf, out); }), "v[2]");
  thrown_message<NF>([&] { ball.exp0(vinf, out); });
  thrown_message<NF>([&] { ball.transport(x, y, vinf, out); });
  thrown_message<NF>([&] { ball.gyration(x, y, xnan, out); });
  thrown_message<NF>([&] { ball.project(xnan, out); });
  thrown_message<NF>([&] { ball.mobius_scalar_mul(nan, x, out); });
  thrown_message<NF>([&] { (void)ball.inner(x, vinf, y); });
  EXPECT_FALSE(ball.contains(xnan));

  // n = 1 and the size-0 ball.
  const V<T> a{T(0.5)}, b{T(-0.25)};
  V<T> o1(1);
  EXPECT_NEAR(static_cast<double>(ball.distance(a, b)),
              2.0 * std::atanh(std::abs(geo::mobius_add({-0.5}, {-0.25}, 1.0)[0])), eps_tol<T>(32));
  const V<T> empty;
  V<T> empty_out;
  EXPECT_EQ(ball.distance(empty, empty), T(0));
  EXPECT_NO_THROW(ball.exp(empty, empty, empty_out));
  ball.mobius_add(a, b, o1);
  EXPECT_TRUE(ball.contains(o1));

  // Batched distances match single calls; a bad row is named.
  std::mt19937_64 gen(21);
  std::vector<geo::vec> rows;
  for (int i = 0; i < 9; ++i) rows.push_back(point<T>(3, 1.0, 0.0, 0.95, gen));
  auto m = mat<T>(rows);
  V<T> ds(9);
  ball.distances(x, m, ds);
  for (std::size_t i = 0; i < 9; ++i) EXPECT_EQ(ds[i], ball.distance(x, tv<T>(rows[i])));
  thrown_message<DM>([&] { ball.distances(x, m, out); });
  m(4, 0) = T(2);
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ball.distances(x, m, ds); }), "ys row 4");
}

// ================================================================================================
// Lorentz hyperboloid
// ================================================================================================

TYPED_TEST(LorentzTest, ConstructionAndAccessors) {
  using T = TypeParam;
  const ra::lorentz_hyperboloid<T> h(T(4));
  EXPECT_EQ(h.c(), T(4));
  EXPECT_EQ(h.curvature(), T(-4));
  EXPECT_EQ(h.eps(), ra::poincare_ball<T>::default_eps);
  const double e = static_cast<double>(h.eps());
  EXPECT_NEAR(static_cast<double>(h.max_radius()), std::log((2 - e) / e) / 2.0, 1e-5);
  const V<T> o = tv<T>(out_of<T>(4, [&](std::span<T> out) { h.origin(out); }));
  EXPECT_EQ(dv(o), (geo::vec{0.5, 0, 0, 0}));
  EXPECT_TRUE(h.contains(o));
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (T c : {T(0), T(-2), nan})
    thrown_message<ra::invalid_argument>([&] { (void)ra::lorentz_hyperboloid<T>(c); });
  for (T eps : {T(0), T(0.5), nan})
    thrown_message<ra::invalid_argument>([&] { (void)ra::lorentz_hyperboloid<T>(T(1), eps); });
}

// The Poincaré ↔ Lorentz isometry: the same distance in both models, for the library's own
// conversion and for the oracle's; squared Lorentzian distance = −2/c − 2⟨x, y⟩_L.
TYPED_TEST(LorentzTest, IsometryWithPoincare) {
  using T = TypeParam;
  std::mt19937_64 gen(31);
  for (double c : kCs) {
    const ra::lorentz_hyperboloid<T> hyp(static_cast<T>(c));
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec p = point<T>(n, c, 0.0, 0.95, gen);
        const geo::vec q = point<T>(n, c, 0.0, 0.95, gen);
        const double dref = geo::poincare_dist(p, q, c);
        // Lorentz points from the oracle, rounded to T: rounding x (of size ~λ/√c) moves the
        // distance by ~ε·λ relative.
        const V<T> xl = tv<T>(geo::poincare_to_lorentz(p, c));
        const V<T> yl = tv<T>(geo::poincare_to_lorentz(q, c));
        const double cond = std::max(geo::lambda(p, c), geo::lambda(q, c));
        EXPECT_LE(serr(hyp.distance(xl, yl), dref, R), eps_tol<T>(24) * cond);
        // Library conversion, then distances in both models agree.
        const V<T> xl2 = tv<T>(out_of<T>(n + 1, [&](std::span<T> o) {
          ra::poincare_to_lorentz(static_cast<T>(c), tv<T>(p), o);
        }));
        const V<T> yl2 = tv<T>(out_of<T>(n + 1, [&](std::span<T> o) {
          ra::poincare_to_lorentz(static_cast<T>(c), tv<T>(q), o);
        }));
        EXPECT_LE(serr(hyp.distance(xl2, yl2), ball.distance(tv<T>(p), tv<T>(q)), R),
                  eps_tol<T>(16) * cond);
        // Law et al. 2019: d_L² = −2/c − 2⟨x, y⟩_L = (2/c)(cosh(√c d) − 1).
        const double dl2 = 2.0 / c * (std::cosh(std::sqrt(c) * dref) - 1.0);
        EXPECT_LE(serr(hyp.squared_lorentzian_distance(xl, yl), dl2, R * R),
                  eps_tol<T>(16) * cond * cond);
        EXPECT_LE(
            serr(hyp.lorentz_inner(xl, yl),
                 geo::minkowski(geo::poincare_to_lorentz(p, c), geo::poincare_to_lorentz(q, c)),
                 R * R),
            eps_tol<T>(8) * cond * cond);
        EXPECT_LE(serr(hyp.distance_from_origin(xl), geo::poincare_dist0(p, c), R), eps_tol<T>(24));
        EXPECT_TRUE(hyp.contains(xl2));
        EXPECT_EQ(hyp.distance(xl, xl), T(0));
      }
    }
  }
}

// exp/log vs the oracle at arbitrary base points, round trips, tangency; exp0/log0 match the
// Poincaré maps through the isometry (the differential at the origin maps v to (0, 2v)).
TYPED_TEST(LorentzTest, ExpLogAndOrigin) {
  using T = TypeParam;
  std::mt19937_64 gen(32);
  for (double c : kCs) {
    const ra::lorentz_hyperboloid<T> hyp(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec p = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec q = point<T>(n, c, 0.0, 0.9, gen);
        // Base and target on the hyperboloid (lifted in double from the rounded spatial part,
        // then rounded: a lifted float point violates the constraint by ~ε relative).
        const geo::vec x = rnd<T>(geo::poincare_to_lorentz(p, c));
        const geo::vec y = rnd<T>(geo::poincare_to_lorentz(q, c));
        const V<T> xt = tv<T>(x), yt = tv<T>(y);
        const std::size_t N = n + 1;
        const double scale = std::max(geo::norm(x), geo::norm(y));  // ~λ/√c
        const double cond = scale / R;
        const geo::vec l = out_of<T>(N, [&](std::span<T> o) { hyp.log(xt, yt, o); });
        EXPECT_LE(verr(l, geo::lorentz_log(x, y, c), R), eps_tol<T>(256) * cond * cond);
        EXPECT_LE(std::abs(geo::minkowski(x, l)), eps_tol<T>(32) * cond * scale * R);
        // exp ∘ log
        const geo::vec back = out_of<T>(N, [&](std::span<T> o) { hyp.exp(xt, tv<T>(l), o); });
        EXPECT_LE(verr(back, y, R), eps_tol<T>(256) * cond * cond);
        EXPECT_TRUE(hyp.contains(tv<T>(back)));
        // exp vs the oracle, and log ∘ exp, for a tangent vector made tangent in double.
        geo::vec v = geo::gaussian(N, R / std::sqrt(double(N)), gen);
        v = geo::add(v, geo::scale(c * geo::minkowski(x, v), x));
        v = rnd<T>(v);
        const geo::vec e = out_of<T>(N, [&](std::span<T> o) { hyp.exp(xt, tv<T>(v), o); });
        const geo::vec eref = geo::lorentz_exp(x, v, c);
        EXPECT_LE(verr(e, eref, R), eps_tol<T>(96) * cond * cond);
        const geo::vec le = out_of<T>(N, [&](std::span<T> o) { hyp.log(xt, tv<T>(e), o); });
        EXPECT_LE(verr(le, v, R), eps_tol<T>(16) * cond * cond * geo::norm(eref) / R);
        // exp0/log0 ↔ Poincaré exp0/log0.
        const geo::vec w = rnd<T>(geo::gaussian(n, R / std::sqrt(double(n)), gen));
        geo::vec w2(N, 0.0);
        for (std::size_t i = 0; i < n; ++i) w2[i + 1] = 2.0 * w[i];
        const geo::vec e0 = out_of<T>(N, [&](std::span<T> o) { hyp.exp0(tv<T>(w2), o); });
        EXPECT_LE(verr(geo::lorentz_to_poincare(e0, c), geo::poincare_exp0(w, c), R),
                  eps_tol<T>(16));
        const geo::vec l0 = out_of<T>(N, [&](std::span<T> o) { hyp.log0(yt, o); });
        const geo::vec pl0 = geo::poincare_log0(geo::lorentz_to_poincare(y, c), c);
        EXPECT_EQ(l0[0], 0.0);
        for (std::size_t i = 0; i < n; ++i)
          EXPECT_NEAR(l0[i + 1], 2.0 * pl0[i], eps_tol<T>(256) * cond * R) << i;
        // log(x, x) = 0, exp(x, 0) = x.
        EXPECT_LE(geo::norm(out_of<T>(N, [&](std::span<T> o) { hyp.log(xt, xt, o); })), 0.0);
        EXPECT_LE(verr(out_of<T>(N, [&](std::span<T> o) { hyp.exp(xt, V<T>(N, T(0)), o); }), x, R),
                  eps_tol<T>(4) * cond);
      }
    }
  }
}

// Parallel transport: the library's closed form vs the oracle's general form
// v − (⟨log_x y, v⟩_L/d²)(log_x y + log_y x); preserves ⟨·,·⟩_L; lands in T_y.
TYPED_TEST(LorentzTest, ParallelTransport) {
  using T = TypeParam;
  std::mt19937_64 gen(33);
  for (double c : kCs) {
    const ra::lorentz_hyperboloid<T> hyp(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 5; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec x = rnd<T>(geo::poincare_to_lorentz(point<T>(n, c, 0.0, 0.8, gen), c));
        const geo::vec y = rnd<T>(geo::poincare_to_lorentz(point<T>(n, c, 0.0, 0.8, gen), c));
        const std::size_t N = n + 1;
        const auto tangent_at = [&](const geo::vec& b) {
          geo::vec v = geo::gaussian(N, R / std::sqrt(double(N)), gen);
          return rnd<T>(geo::add(v, geo::scale(c * geo::minkowski(b, v), b)));
        };
        const geo::vec u = tangent_at(x), v = tangent_at(x);
        const V<T> xt = tv<T>(x), yt = tv<T>(y);
        const geo::vec pu =
            out_of<T>(N, [&](std::span<T> o) { hyp.transport(xt, yt, tv<T>(u), o); });
        const geo::vec pv =
            out_of<T>(N, [&](std::span<T> o) { hyp.transport(xt, yt, tv<T>(v), o); });
        const double cond = std::max(geo::norm(x), geo::norm(y)) / R;
        const double vs = std::max(geo::norm(u), R);
        EXPECT_LE(verr(pu, geo::lorentz_transport(x, y, u, c), vs), eps_tol<T>(256) * cond * cond);
        EXPECT_LE(std::abs(geo::minkowski(pu, pv) - geo::minkowski(u, v)),
                  eps_tol<T>(24) * cond * cond * geo::norm(u) * geo::norm(v));
        EXPECT_LE(std::abs(geo::minkowski(y, pu)), eps_tol<T>(8) * cond * cond * vs * R);
        // project_tangent
        const geo::vec a = rnd<T>(geo::gaussian(N, R, gen));
        const geo::vec pa =
            out_of<T>(N, [&](std::span<T> o) { hyp.project_tangent(xt, tv<T>(a), o); });
        EXPECT_LE(std::abs(geo::minkowski(x, pa)),
                  eps_tol<T>(32) * cond * cond * std::max(geo::norm(a), R) * R);
      }
    }
  }
}

TYPED_TEST(LorentzTest, ProjectionCapsAndErrors) {
  using T = TypeParam;
  const ra::lorentz_hyperboloid<T> hyp;
  // project lifts x0 (ignoring it) and caps the spatial part.
  const V<T> raw{T(-3), T(0.3), T(-0.4)};
  const geo::vec p = out_of<T>(3, [&](std::span<T> o) { hyp.project(raw, o); });
  EXPECT_NEAR(p[0], std::sqrt(1.0 + 0.25), eps_tol<T>(4));
  EXPECT_EQ(p[1], static_cast<double>(T(0.3)));
  EXPECT_TRUE(hyp.contains(tv<T>(p)));
  const V<T> huge{T(1), T(1e30), T(0)};
  const geo::vec ph = out_of<T>(3, [&](std::span<T> o) { hyp.project(huge, o); });
  EXPECT_NEAR(geo::norm({ph[1], ph[2]}), static_cast<double>(hyp.max_spatial_norm()),
              eps_tol<T>(8) * static_cast<double>(hyp.max_spatial_norm()));
  // Huge steps stay finite and on the hyperboloid; exp0 reaches at most max_radius.
  const V<T> o = tv<T>(out_of<T>(3, [&](std::span<T> s) { hyp.origin(s); }));
  const V<T> big{T(0), T(1e6), T(-2e6)};
  const geo::vec e = out_of<T>(3, [&](std::span<T> s) { hyp.exp(o, big, s); });
  const geo::vec e0 = out_of<T>(3, [&](std::span<T> s) { hyp.exp0(big, s); });
  EXPECT_TRUE(hyp.contains(tv<T>(e)));
  EXPECT_TRUE(hyp.contains(tv<T>(e0)));
  EXPECT_LE(static_cast<double>(hyp.distance_from_origin(tv<T>(e0))),
            static_cast<double>(hyp.max_radius()) * (1 + eps_tol<T>(16)));
  // Finite coordinates whose squares overflow T.
  const T hv = std::numeric_limits<T>::max() / T(2);
  const geo::vec eh = out_of<T>(3, [&](std::span<T> s) { hyp.exp0(V<T>{T(0), hv, hv}, s); });
  EXPECT_TRUE(hyp.contains(tv<T>(eh)));
  EXPECT_NEAR(eh[1], eh[2], eps_tol<T>(4) * eh[1]);
  const geo::vec phv = out_of<T>(3, [&](std::span<T> s) { hyp.project(V<T>{T(1), hv, -hv}, s); });
  EXPECT_TRUE(hyp.contains(tv<T>(phv)));
  EXPECT_NEAR(phv[1], -phv[2], eps_tol<T>(4) * phv[1]);
  // The cap is the Poincaré ball's max_norm region.
  const geo::vec pe = geo::lorentz_to_poincare(e0, 1.0);
  EXPECT_NEAR(geo::norm(pe), static_cast<double>(ra::poincare_ball<T>().max_norm()),
              eps_tol<T>(16));

  V<T> out(3), out2(2);
  const V<T> x{T(1), T(0), T(0)}, two{T(1), T(0)}, empty;
  using DM = ra::dimension_mismatch;
  using IA = ra::invalid_argument;
  EXPECT_MESSAGE_HAS(thrown_message<DM>([&] { (void)hyp.distance(x, two); }),
                     "lorentz_hyperboloid::distance: y.size() is 2, expected 3");
  thrown_message<DM>([&] { hyp.exp(x, two, out); });
  thrown_message<DM>([&] { hyp.log(x, x, out2); });
  thrown_message<DM>([&] { hyp.transport(x, x, two, out); });
  thrown_message<DM>([&] { (void)hyp.lorentz_inner(x, two); });
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { (void)hyp.distance(empty, empty); }), "is empty");
  thrown_message<IA>([&] { hyp.origin(std::span<T>()); });
  const V<T> lower{T(-1), T(0), T(0)};
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { (void)hyp.distance(x, lower); }),
                     "not on the upper sheet");
  thrown_message<IA>([&] { hyp.log(lower, x, out); });
  EXPECT_FALSE(hyp.contains(lower));
  EXPECT_FALSE(hyp.contains(V<T>{T(2), T(0), T(0)}));
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const V<T> xnan{T(1), nan, T(0)};
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)hyp.distance(x, xnan); }),
                     "y[1]");
  thrown_message<ra::non_finite_input>([&] { hyp.exp(x, xnan, out); });
  thrown_message<ra::non_finite_input>([&] { hyp.project(xnan, out); });
  EXPECT_FALSE(hyp.contains(xnan));
  // n = 0: the hyperboloid of R¹ is the single point (1/√c).
  const V<T> one{T(1)};
  V<T> o1(1);
  EXPECT_EQ(hyp.distance(one, one), T(0));
  hyp.log(one, one, o1);
  EXPECT_EQ(o1[0], T(0));
}

// ================================================================================================
// Model conversions
// ================================================================================================

TYPED_TEST(ModelsTest, ConversionsMatchOracleAndRoundTrip) {
  using T = TypeParam;
  std::mt19937_64 gen(41);
  for (double c : kCs) {
    const T ct = static_cast<T>(c);
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (int rep = 0; rep < 6; ++rep) {
        SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n << " rep=" << rep);
        const geo::vec p = point<T>(n, c, 0.0, 0.95, gen);
        const V<T> pt = tv<T>(p);
        const double lp = geo::lambda(p, c);
        // Poincaré → Lorentz (size ~λ/√c, relative error ~ε·λ from 1 − c‖p‖²).
        const geo::vec l =
            out_of<T>(n + 1, [&](std::span<T> o) { ra::poincare_to_lorentz(ct, pt, o); });
        EXPECT_LE(verr(l, geo::poincare_to_lorentz(p, c), R), eps_tol<T>(16) * lp);
        const V<T> lt = tv<T>(l);
        const geo::vec back =
            out_of<T>(n, [&](std::span<T> o) { ra::lorentz_to_poincare(ct, lt, o); });
        EXPECT_LE(verr(back, p, R), eps_tol<T>(16));
        // Poincaré → Klein → Poincaré.
        const geo::vec k = out_of<T>(n, [&](std::span<T> o) { ra::poincare_to_klein(ct, pt, o); });
        EXPECT_LE(verr(k, geo::poincare_to_klein(p, c), R), eps_tol<T>(8));
        const V<T> kt = tv<T>(k);
        // Klein loses precision near the boundary: 1 − c‖k‖² ≈ (1 − c‖p‖²)²/4.
        const geo::vec kp = out_of<T>(n, [&](std::span<T> o) { ra::klein_to_poincare(ct, kt, o); });
        EXPECT_LE(verr(kp, geo::klein_to_poincare(dv(kt), c), R), eps_tol<T>(16) * lp);
        EXPECT_LE(verr(kp, p, R), eps_tol<T>(16) * lp);
        // Lorentz → Klein equals Poincaré → Klein; Klein → Lorentz → Klein round trip.
        const geo::vec lk = out_of<T>(n, [&](std::span<T> o) { ra::lorentz_to_klein(ct, lt, o); });
        EXPECT_LE(verr(lk, geo::poincare_to_klein(p, c), R), eps_tol<T>(16));
        const geo::vec kl =
            out_of<T>(n + 1, [&](std::span<T> o) { ra::klein_to_lorentz(ct, kt, o); });
        EXPECT_LE(verr(kl, geo::poincare_to_lorentz(geo::klein_to_poincare(dv(kt), c), c), R),
                  eps_tol<T>(4) * lp * lp);
        const geo::vec klk =
            out_of<T>(n, [&](std::span<T> o) { ra::lorentz_to_klein(ct, tv<T>(kl), o); });
        EXPECT_LE(verr(klk, dv(kt), R), eps_tol<T>(16));
        // Klein geodesics are chords: the Klein image of the Poincaré geodesic midpoint lies on
        // the segment between the Klein images of the endpoints.
        const geo::vec q = point<T>(n, c, 0.0, 0.9, gen);
        const geo::vec mid = geo::poincare_exp(p, geo::scale(0.5, geo::poincare_log(p, q, c)), c);
        const geo::vec km = geo::poincare_to_klein(mid, c);
        const geo::vec kq = geo::poincare_to_klein(q, c);
        const geo::vec kpp = geo::poincare_to_klein(p, c);
        const geo::vec seg = geo::sub(kq, kpp);
        const double t = geo::dot(geo::sub(km, kpp), seg) / std::max(geo::dot(seg, seg), 1e-300);
        EXPECT_LE(geo::dist2(km, geo::add(kpp, geo::scale(t, seg))), 1e-13 * R);
      }
    }
  }
}

TYPED_TEST(ModelsTest, Errors) {
  using T = TypeParam;
  const V<T> p{T(0.1), T(0.2)}, l{T(1.2), T(0.1), T(0.2)};
  V<T> o2(2), o3(3);
  using IA = ra::invalid_argument;
  using DM = ra::dimension_mismatch;
  for (T c : {T(0), T(-1), std::numeric_limits<T>::quiet_NaN()}) {
    EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ra::poincare_to_lorentz(c, p, o3); }),
                       "poincare_to_lorentz: c must be finite and > 0");
    thrown_message<IA>([&] { ra::lorentz_to_poincare(c, l, o2); });
    thrown_message<IA>([&] { ra::poincare_to_klein(c, p, o2); });
    thrown_message<IA>([&] { ra::klein_to_poincare(c, p, o2); });
    thrown_message<IA>([&] { ra::lorentz_to_klein(c, l, o2); });
    thrown_message<IA>([&] { ra::klein_to_lorentz(c, p, o3); });
  }
  EXPECT_MESSAGE_HAS(thrown_message<DM>([&] { ra::poincare_to_lorentz(T(1), p, o2); }),
                     "out.size() is 2, expected 3");
  thrown_message<DM>([&] { ra::lorentz_to_poincare(T(1), l, o3); });
  thrown_message<DM>([&] { ra::poincare_to_klein(T(1), p, o3); });
  thrown_message<DM>([&] { ra::klein_to_poincare(T(1), p, o3); });
  thrown_message<DM>([&] { ra::lorentz_to_klein(T(1), l, o3); });
  thrown_message<DM>([&] { ra::klein_to_lorentz(T(1), p, o2); });
  const V<T> outside{T(0.8), T(0.7)};
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ra::poincare_to_lorentz(T(1), outside, o3); }),
                     "not inside the Poincaré ball");
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ra::klein_to_lorentz(T(1), outside, o3); }),
                     "not inside the Klein ball");
  thrown_message<IA>([&] { ra::klein_to_poincare(T(1), outside, o2); });
  const V<T> lower{T(-1.2), T(0.1), T(0.2)};
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ra::lorentz_to_poincare(T(1), lower, o2); }),
                     "upper sheet");
  thrown_message<IA>([&] { ra::lorentz_to_klein(T(1), V<T>{}, std::span<T>()); });
  const V<T> pnan{T(0.1), std::numeric_limits<T>::quiet_NaN()};
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { ra::poincare_to_klein(T(1), pnan, o2); }), "x[1]");
  // n = 0: a lone point.
  V<T> o1(1);
  ra::poincare_to_lorentz(T(4), std::span<const T>(), o1);
  EXPECT_EQ(o1[0], T(0.5));
}

// ================================================================================================
// Einstein midpoint and Fréchet mean
// ================================================================================================

/// Random weights in [0, 1) with a few exact zeros.
inline geo::vec random_weights(std::size_t n, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  geo::vec w(n);
  for (auto& x : w) x = u(gen) < 0.15 ? 0.0 : u(gen);
  if (std::all_of(w.begin(), w.end(), [](double x) { return x == 0.0; })) w[0] = 1.0;
  return w;
}

// Einstein midpoint vs the oracle computed in the Klein model (klein(x), γ, weighted average,
// back to Poincaré), measured as the hyperbolic distance between the results.
TYPED_TEST(MeansTest, EinsteinMidpointMatchesKleinOracle) {
  using T = TypeParam;
  std::mt19937_64 gen(51);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      for (std::size_t m : {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{40}}) {
        for (double r_hi : {0.5, 0.95, 0.999}) {
          SCOPED_TRACE(::testing::Message()
                       << "c=" << c << " n=" << n << " m=" << m << " r_hi=" << r_hi);
          std::vector<geo::vec> pts, ks;
          for (std::size_t i = 0; i < m; ++i) pts.push_back(point<T>(n, c, 0.0, r_hi, gen));
          for (const auto& p : pts) ks.push_back(geo::poincare_to_klein(p, c));
          const geo::vec w = rnd<T>(random_weights(m, gen));
          const geo::vec ref = geo::klein_to_poincare(geo::einstein_klein(ks, w, c), c);
          const auto P = mat<T>(pts);
          const V<T> wt = tv<T>(w);
          const geo::vec got =
              out_of<T>(n, [&](std::span<T> o) { ra::einstein_midpoint(ball, P, wt, o); });
          // Error in hyperbolic distance: ε·λ_max for the rounding of the inputs' λ, γ.
          double lmax = 1.0;
          for (const auto& p : pts) lmax = std::max(lmax, geo::lambda(p, c));
          // (double: the oracle's own Klein arithmetic loses ~1e-16·λ² near the boundary.)
          EXPECT_LE(geo::poincare_dist_arcosh(got, ref, c),
                    (eps_tol<T>(24) * lmax + 1e-14 * lmax * lmax) * R)
              << "d=" << geo::poincare_dist(got, ref, c);
          // The Klein variant, Klein in and out.
          const auto K = mat<T>(ks);
          const geo::vec gk = out_of<T>(
              n, [&](std::span<T> o) { ra::einstein_midpoint_klein(static_cast<T>(c), K, wt, o); });
          std::vector<geo::vec> krnd;
          for (const auto& k : ks) krnd.push_back(rnd<T>(k));
          EXPECT_LE(verr(gk, geo::einstein_klein(krnd, w, c), R), eps_tol<T>(2) * lmax * lmax);
        }
      }
    }
  }
}

// Structural cases: one point, equal points, a symmetric pair (→ the origin), two points with
// equal weights (→ the geodesic midpoint exp_x(½ log_x y), Ungar's gyromidpoint), and a cluster
// near the boundary where 1 − c‖m_K‖² cancels.
TYPED_TEST(MeansTest, EinsteinMidpointStructure) {
  using T = TypeParam;
  std::mt19937_64 gen(52);
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n);
      const geo::vec x = point<T>(n, c, 0.1, 0.95, gen);
      const geo::vec y = point<T>(n, c, 0.1, 0.95, gen);
      const double lx = geo::lambda(x, c), ly = geo::lambda(y, c);
      const auto mid = [&](const std::vector<geo::vec>& pts, const geo::vec& w) {
        const auto P = mat<T>(pts);
        return out_of<T>(n, [&](std::span<T> o) { ra::einstein_midpoint(ball, P, tv<T>(w), o); });
      };
      EXPECT_LE(geo::poincare_dist(mid({x}, {2.0}), x, c), eps_tol<T>(64) * lx * R);
      EXPECT_LE(geo::poincare_dist(mid({x, x, x}, {0.2, 0.3, 0.5}), x, c), eps_tol<T>(24) * lx * R);
      EXPECT_LE(geo::norm(mid({x, geo::neg(x)}, {1.0, 1.0})), eps_tol<T>(1) * R);
      const geo::vec gm = geo::poincare_exp(x, geo::scale(0.5, geo::poincare_log(x, y, c)), c);
      EXPECT_LE(geo::poincare_dist(mid({x, y}, {1.0, 1.0}), gm, c),
                eps_tol<T>(64) * std::max(lx, ly) * R);
      // Zero-weight points do not count.
      EXPECT_LE(geo::poincare_dist(mid({x, y, geo::neg(y)}, {1.0, 1.0, 0.0}), gm, c),
                eps_tol<T>(64) * std::max(lx, ly) * R);
      // A tight cluster near the boundary: the midpoint must sit as deep as its points.
      std::vector<geo::vec> cluster;
      const geo::vec base = geo::ball_point(n, c, 1.0 - 1e-3, gen);
      for (int i = 0; i < 4; ++i) {
        cluster.push_back(rnd<T>(geo::mobius_add(base, geo::ball_point(n, c, 1e-4, gen), c)));
      }
      std::vector<geo::vec> ks;
      for (const auto& p : cluster) ks.push_back(geo::poincare_to_klein(p, c));
      const geo::vec w{0.1, 0.2, 0.3, 0.4};
      const geo::vec ref = geo::klein_to_poincare(geo::einstein_klein(ks, w, c), c);
      // float: the points themselves are only resolved to ~λ·ε in distance (the library
      // reaches ~1.4 λε; evaluating 1 − c‖m_K‖² directly would give errors of ~R). double: the
      // oracle's Klein arithmetic loses ~1e-16·λ² there.
      const double lc = geo::lambda(cluster[0], c);
      EXPECT_LE(geo::poincare_dist_arcosh(mid(cluster, w), ref, c),
                (eps_tol<T>(16) * lc + 1e-14 * lc * lc) * R);
    }
  }
}

TYPED_TEST(MeansTest, EinsteinMidpointErrors) {
  using T = TypeParam;
  const ra::poincare_ball<T> ball;
  const auto P = mat<T>({{0.1, 0.2}, {-0.3, 0.1}, {0.0, 0.5}});
  V<T> out(2), out3(3);
  const V<T> w{T(1), T(2), T(3)};
  using IA = ra::invalid_argument;
  using DM = ra::dimension_mismatch;
  thrown_message<DM>([&] { ra::einstein_midpoint(ball, P, V<T>{T(1), T(2)}, out); });
  thrown_message<DM>([&] { ra::einstein_midpoint(ball, P, w, out3); });
  EXPECT_MESSAGE_HAS(
      thrown_message<IA>([&] { ra::einstein_midpoint(ball, P, V<T>(3, T(0)), out); }),
      "weights sum to 0");
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] {
                       ra::einstein_midpoint(ball, P, V<T>{T(1), T(-1), T(1)}, out);
                     }),
                     "weights[1]");
  thrown_message<ra::non_finite_input>([&] {
    ra::einstein_midpoint(ball, P, V<T>{T(1), std::numeric_limits<T>::quiet_NaN(), T(1)}, out);
  });
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] {
                       ra::einstein_midpoint(ball, ra::row_matrix<T>(0, 2), V<T>{}, out);
                     }),
                     "points is empty");
  auto bad = P;
  bad(2, 1) = T(1.5);
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ra::einstein_midpoint(ball, bad, w, out); }),
                     "points row 2");
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { ra::einstein_midpoint_klein(T(1), bad, w, out); }),
                     "not inside the Klein ball");
  thrown_message<IA>([&] { ra::einstein_midpoint_klein(T(0), P, w, out); });
}

// Fréchet mean: one point; two points at any weights (the point at fraction w_y/(w_x + w_y) of
// the geodesic, exp_x(t log_x y)); random sets satisfy Σ w log_m x = 0 (checked by the oracle);
// the same mean in both models; convergence is reported.
TYPED_TEST(MeansTest, FrechetMeanPoincareAndLorentz) {
  using T = TypeParam;
  std::mt19937_64 gen(53);
  // The tolerance on the gradient is reachable in T: ~ε_T·(spread) with spread ~ 1/√c.
  const double tol_grad = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (double c : kCs) {
    const ra::poincare_ball<T> ball(static_cast<T>(c));
    const ra::lorentz_hyperboloid<T> hyp(static_cast<T>(c));
    const double R = 1.0 / std::sqrt(c);
    ra::frechet_options opt;
    opt.tolerance = tol_grad * R;
    for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{16}}) {
      SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n);
      const geo::vec x = point<T>(n, c, 0.0, 0.9, gen);
      const geo::vec y = point<T>(n, c, 0.0, 0.9, gen);
      const double lx = geo::lambda(x, c), ly = geo::lambda(y, c);
      V<T> m(n);
      // One point.
      auto r = ra::frechet_mean(ball, mat<T>({x}), V<T>{T(3)}, m, opt);
      EXPECT_TRUE(r.converged);
      EXPECT_LE(geo::poincare_dist(dv(m), x, c), eps_tol<T>(8) * lx * R);
      // Two points at several weights.
      for (double wy : {0.5, 0.25, 0.9}) {
        r = ra::frechet_mean(ball, mat<T>({x, y}), tv<T>({1.0 - wy, wy}), m, opt);
        EXPECT_TRUE(r.converged) << "wy=" << wy << " grad=" << r.gradient_norm;
        EXPECT_LE(r.gradient_norm, opt.tolerance);
        const geo::vec ref = geo::poincare_exp(x, geo::scale(wy, geo::poincare_log(x, y, c)), c);
        // f = ½Σw d² is 1-strongly geodesically convex here, so d(m, m*) ≤ ‖grad f(m)‖.
        EXPECT_LE(geo::poincare_dist(dv(m), ref, c),
                  2.0 * opt.tolerance + eps_tol<T>(64) * std::max(lx, ly) * R)
            << "wy=" << wy;
      }
      // Random sets: the first-order condition, evaluated by the oracle at the returned point.
      for (std::size_t k : {std::size_t{3}, std::size_t{12}}) {
        std::vector<geo::vec> pts;
        for (std::size_t i = 0; i < k; ++i) pts.push_back(point<T>(n, c, 0.0, 0.9, gen));
        const geo::vec w = rnd<T>(random_weights(k, gen));
        const auto P = mat<T>(pts);
        r = ra::frechet_mean(ball, P, tv<T>(w), m, opt);
        EXPECT_TRUE(r.converged) << "k=" << k << " grad=" << r.gradient_norm;
        EXPECT_LE(r.iterations, opt.max_iterations);
        const geo::vec md = dv(m);
        double wsum = 0.0;
        for (double a : w) wsum += a;
        geo::vec g(n, 0.0);
        for (std::size_t i = 0; i < k; ++i)
          g = geo::add(g, geo::scale(w[i] / wsum, geo::poincare_log(md, pts[i], c)));
        // ‖g‖_m ≤ tolerance up to the rounding of m (its λ-scaled ulp).
        EXPECT_LE(geo::lambda(md, c) * geo::norm(g),
                  2.0 * opt.tolerance + eps_tol<T>(256) * geo::lambda(md, c) * R)
            << "k=" << k;
        // The Lorentz mean of the lifted points is the lift of the Poincaré mean.
        std::vector<geo::vec> lpts;
        for (const auto& p : pts) lpts.push_back(rnd<T>(geo::poincare_to_lorentz(p, c)));
        V<T> ml(n + 1);
        const auto rl = ra::frechet_mean(hyp, mat<T>(lpts), tv<T>(w), ml, opt);
        EXPECT_TRUE(rl.converged) << "k=" << k << " grad=" << rl.gradient_norm;
        double lmax = 1.0;
        for (const auto& p : pts) lmax = std::max(lmax, geo::lambda(p, c));
        EXPECT_LE(geo::poincare_dist(geo::lorentz_to_poincare(dv(ml), c), md, c),
                  4.0 * opt.tolerance + eps_tol<T>(256) * lmax * R);
      }
      // Convergence is reported, not thrown: a zero iteration cap returns the start point. (In
      // one dimension log₀ is an isometry onto the line, so the start point is already the
      // mean; skip n = 1.)
      if (n == 1) continue;
      ra::frechet_options capped = opt;
      capped.max_iterations = 0;
      capped.tolerance = 0.0;
      r = ra::frechet_mean(ball, mat<T>({x, y}), tv<T>({1.0, 1.0}), m, capped);
      EXPECT_FALSE(r.converged);
      EXPECT_EQ(r.iterations, 0u);
      EXPECT_GT(r.gradient_norm, 0.0);
      capped.max_iterations = 2;
      r = ra::frechet_mean(ball, mat<T>({x, y}), tv<T>({1.0, 1.0}), m, capped);
      EXPECT_FALSE(r.converged);
      EXPECT_EQ(r.iterations, 2u);
    }
  }
}

TYPED_TEST(MeansTest, FrechetMeanErrors) {
  using T = TypeParam;
  const ra::poincare_ball<T> ball;
  const auto P = mat<T>({{0.1, 0.2}, {-0.3, 0.1}, {0.0, 0.5}});
  V<T> out(2), out3(3);
  const V<T> w{T(1), T(2), T(3)};
  using IA = ra::invalid_argument;
  using DM = ra::dimension_mismatch;
  EXPECT_MESSAGE_HAS(thrown_message<DM>([&] { (void)ra::frechet_mean(ball, P, V<T>{T(1)}, out); }),
                     "frechet_mean: weights.size() is 1, expected 3");
  thrown_message<DM>([&] { (void)ra::frechet_mean(ball, P, w, out3); });
  EXPECT_MESSAGE_HAS(
      thrown_message<IA>([&] { (void)ra::frechet_mean(ball, P, V<T>(3, T(0)), out); }),
      "weights sum to 0");
  thrown_message<IA>([&] { (void)ra::frechet_mean(ball, P, V<T>{T(1), T(-2), T(3)}, out); });
  thrown_message<ra::non_finite_input>([&] {
    (void)ra::frechet_mean(ball, P, V<T>{T(1), std::numeric_limits<T>::infinity(), T(3)}, out);
  });
  thrown_message<IA>([&] { (void)ra::frechet_mean(ball, ra::row_matrix<T>(0, 2), V<T>{}, out); });
  ra::frechet_options bad;
  bad.step = 0.0;
  thrown_message<IA>([&] { (void)ra::frechet_mean(ball, P, w, out, bad); });
  bad.step = 1.0;
  bad.tolerance = -1.0;
  thrown_message<IA>([&] { (void)ra::frechet_mean(ball, P, w, out, bad); });
  auto outside = P;
  outside(1, 0) = T(2);
  EXPECT_MESSAGE_HAS(thrown_message<IA>([&] { (void)ra::frechet_mean(ball, outside, w, out); }),
                     "frechet_mean: points row 1: invalid argument: poincare_ball::log0");
  auto nan_pts = P;
  nan_pts(2, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)ra::frechet_mean(ball, nan_pts, w, out); }),
      "points row 2");
}

// ================================================================================================
// Tangent-space mapper
// ================================================================================================

TYPED_TEST(TangentSpaceTest, OriginFastPathAgreesWithGeneralPath) {
  using T = TypeParam;
  std::mt19937_64 gen(61);
  for (double c : kCs) {
    ra::tangent_space_config cfg;
    cfg.curvature = -c;
    const ra::tangent_space_mapper<T> mapper(cfg);
    EXPECT_TRUE(mapper.at_origin());
    EXPECT_EQ(mapper.dim(), 0u);
    EXPECT_EQ(mapper.ball().c(), static_cast<T>(c));
    const ra::poincare_ball<T>& ball = mapper.ball();
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : kDims) {
      SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n);
      // An explicit all-zero base point also takes the fast path and fixes the dimension.
      ra::tangent_space_config zero_cfg = cfg;
      zero_cfg.base_point.assign(n, 0.0);
      const ra::tangent_space_mapper<T> zero_mapper(zero_cfg);
      EXPECT_TRUE(zero_mapper.at_origin());
      EXPECT_EQ(zero_mapper.dim(), n);
      const V<T> o(n, T(0));
      std::vector<geo::vec> pts, tans;
      for (int i = 0; i < 7; ++i) {
        const geo::vec x = point<T>(n, c, 0.0, 0.99, gen);
        const geo::vec v = rnd<T>(geo::gaussian(n, R / std::sqrt(double(n)), gen));
        pts.push_back(x);
        tans.push_back(v);
        const V<T> xt = tv<T>(x), vt = tv<T>(v);
        const geo::vec fast = out_of<T>(n, [&](std::span<T> s) { mapper.to_tangent(xt, s); });
        const geo::vec general = out_of<T>(n, [&](std::span<T> s) { ball.log(o, xt, s); });
        EXPECT_LE(verr(fast, general, R), eps_tol<T>(8) * geo::lambda(x, c));
        EXPECT_LE(verr(fast, geo::poincare_log0(x, c), R), eps_tol<T>(8) * geo::lambda(x, c));
        EXPECT_EQ(out_of<T>(n, [&](std::span<T> s) { zero_mapper.to_tangent(xt, s); }), fast);
        const geo::vec fe = out_of<T>(n, [&](std::span<T> s) { mapper.from_tangent(vt, s); });
        const geo::vec ge = out_of<T>(n, [&](std::span<T> s) { ball.exp(o, vt, s); });
        EXPECT_LE(verr(fe, ge, R), eps_tol<T>(24));
        EXPECT_LE(verr(fe, geo::poincare_exp0(v, c), R), eps_tol<T>(24));
      }
      // Matrix maps: rows equal the single calls; from(to(P)) = P.
      const auto P = mat<T>(pts);
      const ra::row_matrix<T> tp = mapper.map_to_tangent(P);
      for (std::size_t i = 0; i < pts.size(); ++i) {
        EXPECT_EQ(row_d(tp, i),
                  out_of<T>(n, [&](std::span<T> s) { mapper.to_tangent(tv<T>(pts[i]), s); }));
      }
      const ra::row_matrix<T> back = mapper.map_from_tangent(tp);
      for (std::size_t i = 0; i < pts.size(); ++i)
        EXPECT_LE(verr(row_d(back, i), pts[i], R), eps_tol<T>(4) * geo::lambda(pts[i], c));
      const ra::row_matrix<T> tv2 = mapper.map_to_tangent(mapper.map_from_tangent(mat<T>(tans)));
      for (std::size_t i = 0; i < tans.size(); ++i)
        EXPECT_LE(verr(row_d(tv2, i), tans[i], R), eps_tol<T>(48));
    }
  }
}

TYPED_TEST(TangentSpaceTest, NonOriginBasePoint) {
  using T = TypeParam;
  std::mt19937_64 gen(62);
  for (double c : kCs) {
    const double R = 1.0 / std::sqrt(c);
    for (std::size_t n : {std::size_t{3}, std::size_t{16}, std::size_t{64}}) {
      SCOPED_TRACE(::testing::Message() << "c=" << c << " n=" << n);
      const geo::vec b = point<T>(n, c, 0.2, 0.8, gen);
      ra::tangent_space_config cfg;
      cfg.curvature = -c;
      cfg.base_point = b;
      const ra::tangent_space_mapper<T> mapper(cfg);
      EXPECT_FALSE(mapper.at_origin());
      EXPECT_EQ(mapper.dim(), n);
      EXPECT_EQ(dv(V<T>(mapper.base_point().begin(), mapper.base_point().end())), b);
      const double lb = geo::lambda(b, c);
      // Enough rows to take the threaded path (rows·cols ≥ 2^14).
      const std::size_t rows = (std::size_t{1} << 14) / n + 3;
      std::vector<geo::vec> pts;
      for (std::size_t i = 0; i < rows; ++i) pts.push_back(point<T>(n, c, 0.0, 0.9, gen));
      const auto P = mat<T>(pts);
      const ra::row_matrix<T> tp = mapper.map_to_tangent(P);
      const ra::row_matrix<T> back = mapper.map_from_tangent(tp);
      for (std::size_t i = 0; i < rows; i += 97) {
        EXPECT_LE(verr(row_d(tp, i), geo::poincare_log(b, pts[i], c), R / lb), eps_tol<T>(48));
        EXPECT_EQ(row_d(tp, i),
                  out_of<T>(n, [&](std::span<T> s) { mapper.to_tangent(tv<T>(pts[i]), s); }));
        EXPECT_LE(verr(row_d(back, i), pts[i], R), eps_tol<T>(24));
      }
    }
  }
}

TYPED_TEST(TangentSpaceTest, Errors) {
  using T = TypeParam;
  using IC = ra::invalid_config;
  for (double k : {0.0, 1.0, std::numeric_limits<double>::quiet_NaN(), -1e300}) {
    ra::tangent_space_config cfg;
    cfg.curvature = k;
    if (std::is_same_v<T, double> && k == -1e300) continue;  // representable in double
    EXPECT_MESSAGE_HAS(thrown_message<IC>([&] { (void)ra::tangent_space_mapper<T>(cfg); }),
                       "curvature");
  }
  ra::tangent_space_config cfg;
  cfg.base_point = {0.5, 0.9};
  EXPECT_MESSAGE_HAS(thrown_message<IC>([&] { (void)ra::tangent_space_mapper<T>(cfg); }),
                     "strictly inside the ball");
  cfg.base_point = {0.5, std::numeric_limits<double>::infinity()};
  EXPECT_MESSAGE_HAS(thrown_message<IC>([&] { (void)ra::tangent_space_mapper<T>(cfg); }),
                     "base_point[1]");
  cfg.base_point = {0.1, 0.2};
  const ra::tangent_space_mapper<T> mapper(cfg);
  V<T> out(2);
  const V<T> three(3, T(0.1));
  thrown_message<ra::dimension_mismatch>([&] { mapper.to_tangent(three, out); });
  thrown_message<ra::dimension_mismatch>([&] {
    (void)mapper.map_to_tangent(mat<T>({{0.1, 0.1, 0.1}}));
  });
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)mapper.map_to_tangent(mat<T>({{0.1, 0.1}, {0.1, 0.2}, {1.0, 1.0}}));
                     }),
                     "points row 2");
  const ra::tangent_space_mapper<T> origin_mapper;
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       (void)origin_mapper.map_from_tangent(
                           mat<T>({{0.1, std::numeric_limits<double>::quiet_NaN()}}));
                     }),
                     "tangents row 0");
  // Empty matrices map to empty matrices.
  EXPECT_EQ(origin_mapper.map_to_tangent(ra::row_matrix<T>(0, 4)).rows(), 0);
}

}  // namespace
