// Mixed-curvature attention with the fused E+H+S kernel (curvature/fused_attention.hpp), for
// float and double, against the independent double-precision brute force in
// support/curvature_oracle.hpp (its own Poincaré distance with a direct ‖x − y‖², explicit log₀
// map, atan2 sphere angle, softmax and weighted sums) and, for the pure-Euclidean sanity check,
// the scaled dot-product oracle in support/oracle.hpp.
//
// Tolerances (checked as max |got − ref| / max(|ref|, 1)):
// - float: 1e-4. The fused kernel evaluates ‖x − y‖² as ‖x‖² + ‖y‖² − 2⟨x, y⟩ and the sphere
//   angle as arccos⟨x̂, ŷ⟩ (both documented), so for a *close* pair the float rounding of the dot
//   product (~ε·‖x‖²) is amplified like √ε (ε = 2^-24): the worst logit error over every random
//   problem below is 1.2e-5 (1-D hyperbolic parts, where close pairs are common), outputs less.
//   1e-4 leaves ~8× headroom; a real mistake (wrong curvature, conformal factor, radius, scale,
//   mask or head) moves logits and outputs by ≥ 1e-2.
// - double: 2e-7. Same mechanism with ε = 2^-53: a 1-D spherical part normalises to ±(1 − 2^-53),
//   whose arccos is √(2·2^-53) ≈ 2.1e-8 instead of 0; times R ≤ 2, w_s ≤ 1, 1/τ ≤ 2 that bounds the
//   logit error by 8.4e-8 (observed 4.3e-8); elsewhere errors are ~1e-13.
// The oracle always sees exactly the (rounded-to-T) inputs the library sees; where the library
// documents that it stores a projected point in T, the oracle rounds the projected point too.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/curvature/fused_attention.hpp"
#include "ruvector/attention/curvature/quantized_attention.hpp"
#include "support/curvature_oracle.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace co = ruvector_test::curvature_oracle;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::thrown_message;

static_assert(ra::attention_mechanism<ra::mixed_curvature_fused_attention<float>>);
static_assert(ra::attention_mechanism<ra::mixed_curvature_fused_attention<double>>);
static_assert(ra::masked_attention_mechanism<ra::mixed_curvature_fused_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::mixed_curvature_fused_attention<double>>);

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-4 : 2e-7;

// Plain dot products of up to ~50 N(0,1)·N(0,1) terms: √50·|term|·ε_T ≲ 3e-6 (float).
template <class T>
constexpr double kDotTol = std::is_same_v<T, float> ? 2e-5 : 1e-12;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// ---- problem generation -----------------------------------------------------------------------

// A random mixed-curvature problem: config for the library, params for the oracle, inputs already
// rounded to T (so both see the same numbers).
template <class T>
struct problem {
  ra::fused_curvature_config cfg;
  co::params p;
  std::vector<co::vec> queries, keys, values;
  std::vector<bool> mask;
};

template <class T>
double round_t(double x) {
  return static_cast<double>(static_cast<T>(x));
}

// How far hyperbolic parts sit from the origin.
enum class radius_mode { interior, near_boundary, outside };

template <class T>
co::vec random_point(std::mt19937_64& gen, const ra::component_dims& dims, double c,
                     radius_mode rm) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  co::vec x(dims.total());
  for (auto& v : x) v = normal(gen);
  if (dims.hyperbolic > 0) {
    double n2 = 0.0;
    for (std::size_t i = 0; i < dims.hyperbolic; ++i)
      n2 += x[dims.euclidean + i] * x[dims.euclidean + i];
    const double nx = std::sqrt(n2);
    double r = 0.0;
    switch (rm) {
      case radius_mode::interior:
        r = 0.95 * unit(gen) / std::sqrt(c);
        break;
      case radius_mode::near_boundary:  // within 1e-3 of the boundary sphere of radius 1/√c
        r = 1.0 / std::sqrt(c) - 1e-3 * (0.01 + 0.99 * unit(gen));
        break;
      case radius_mode::outside:
        r = (1.0 + 2.0 * unit(gen)) / std::sqrt(c);
        break;
    }
    for (std::size_t i = 0; i < dims.hyperbolic; ++i) x[dims.euclidean + i] *= r / nx;
  }
  for (auto& v : x) v = round_t<T>(v);
  return x;
}

template <class T>
problem<T> make_problem(std::uint64_t seed, ra::component_dims dims, std::size_t n, std::size_t dv,
                        std::size_t heads, double c, double c_s, double tau, double escale,
                        ra::hyperbolic_similarity mode, radius_mode key_r = radius_mode::interior,
                        radius_mode query_r = radius_mode::interior, std::size_t queries = 1) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  problem<T> pr;
  pr.cfg.dims = dims;
  pr.cfg.curvature_h = -c;
  pr.cfg.curvature_s = c_s;
  pr.cfg.num_heads = heads;
  pr.cfg.temperature = tau;
  pr.cfg.euclidean_scale = escale;
  pr.cfg.hyperbolic = mode;
  for (std::size_t h = 0; h < heads; ++h)
    pr.cfg.head_weights.push_back(
        {round_t<T>(unit(gen)), round_t<T>(unit(gen)), round_t<T>(unit(gen))});
  pr.p.e = dims.euclidean;
  pr.p.h = dims.hyperbolic;
  pr.p.s = dims.spherical;
  pr.p.c = c;
  pr.p.c_s = c_s;
  pr.p.weights = pr.cfg.head_weights;
  pr.p.tau = tau;
  pr.p.euclidean_scale =
      escale > 0
          ? escale
          : (dims.euclidean > 0 ? 1.0 / std::sqrt(static_cast<double>(dims.euclidean)) : 1.0);
  pr.p.tangent = mode == ra::hyperbolic_similarity::tangent;
  pr.p.round_stored = [](double x) { return round_t<T>(x); };
  for (std::size_t i = 0; i < queries; ++i)
    pr.queries.push_back(random_point<T>(gen, dims, c, query_r));
  for (std::size_t j = 0; j < n; ++j) pr.keys.push_back(random_point<T>(gen, dims, c, key_r));
  std::normal_distribution<double> normal(0.0, 1.0);
  for (std::size_t j = 0; j < n; ++j) {
    co::vec v(dv);
    for (auto& x : v) x = round_t<T>(normal(gen));
    pr.values.push_back(v);
  }
  return pr;
}

template <class T>
ra::row_matrix<T> to_matrix_t(const std::vector<co::vec>& rows, std::size_t cols) {
  ra::row_matrix<T> m(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(cols));
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < cols; ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<T>(rows[i][j]);
  return m;
}

template <class T>
std::vector<T> to_t(const co::vec& v) {
  return std::vector<T>(v.begin(), v.end());
}

std::vector<double> head_row(const auto& m, std::size_t h) {
  std::vector<double> r(static_cast<std::size_t>(m.cols()));
  for (std::size_t c = 0; c < r.size(); ++c)
    r[c] = static_cast<double>(m(static_cast<Eigen::Index>(h), static_cast<Eigen::Index>(c)));
  return r;
}

// Library vs oracle on every query of `pr`: mean output (per-call keys and key set), every
// head's output and logits. Returns the largest error seen.
template <class T>
double check_problem(const problem<T>& pr, double tol) {
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  const std::size_t d = pr.cfg.dims.total();
  const std::size_t dv = pr.values.empty() ? 0 : pr.values[0].size();
  const auto K = to_matrix_t<T>(pr.keys, d);
  const auto V = to_matrix_t<T>(pr.values, dv);
  const auto ks = attn.prepare_keys(K);
  std::unique_ptr<bool[]> mask;
  if (!pr.mask.empty()) {
    mask.reset(new bool[pr.mask.size()]);
    std::copy(pr.mask.begin(), pr.mask.end(), mask.get());
  }
  const std::span<const bool> mspan =
      pr.mask.empty() ? std::span<const bool>{} : std::span<const bool>(mask.get(), pr.mask.size());
  double worst = 0.0;
  for (const auto& qd : pr.queries) {
    const auto q = to_t<T>(qd);
    const auto ref = co::reference(qd, pr.keys, pr.values, pr.p, pr.mask);
    const std::vector<T> out = mspan.empty()
                                   ? attn.compute(std::span<const T>(q), K, V)
                                   : attn.compute_with_mask(std::span<const T>(q), K, V, mspan);
    const double e_mean = orc::max_mixed_error(out, ref.mean);
    EXPECT_LE(e_mean, tol) << "mean output";
    worst = std::max(worst, e_mean);
    const std::vector<T> out_ks = mspan.empty()
                                      ? attn.compute(std::span<const T>(q), ks, V)
                                      : attn.compute_with_mask(std::span<const T>(q), ks, V, mspan);
    EXPECT_EQ(out_ks, out) << "key-set path differs from the per-call path";
    const auto heads = attn.compute_heads(std::span<const T>(q), ks, V, mspan);
    EXPECT_EQ(static_cast<std::size_t>(heads.rows()), pr.cfg.num_heads);
    std::vector<T> lg(pr.keys.size());
    for (std::size_t h = 0; h < pr.cfg.num_heads; ++h) {
      const double e_head = orc::max_mixed_error(head_row(heads, h), ref.head_out[h]);
      EXPECT_LE(e_head, tol) << "head " << h;
      worst = std::max(worst, e_head);
      attn.logits(std::span<const T>(q), ks, h, std::span<T>(lg));
      const auto ref_lg = co::logits(qd, pr.keys, pr.p, h);
      const double e_lg = orc::max_mixed_error(lg, ref_lg);
      EXPECT_LE(e_lg, tol) << "logits of head " << h;
      worst = std::max(worst, e_lg);
    }
  }
  return worst;
}

template <class T>
class FusedCurvatureTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FusedCurvatureTest, Scalars);

constexpr auto kDist = ra::hyperbolic_similarity::distance;
constexpr auto kTan = ra::hyperbolic_similarity::tangent;

// ---- property tests against the oracle --------------------------------------------------------

TYPED_TEST(FusedCurvatureTest, RandomProblemsMatchOracle) {
  using T = TypeParam;
  const std::array<std::size_t, 6> sizes{0, 1, 3, 8, 17, 33};
  const std::array<std::size_t, 6> ns{1, 5, 8, 13, 37, 70};
  const std::array<double, 3> cs{0.1, 1.0, 10.0};
  const std::array<double, 3> css{0.25, 1.0, 4.0};
  std::mt19937_64 gen(42);
  double worst = 0.0;
  for (std::uint64_t seed = 0; seed < 60; ++seed) {
    ra::component_dims dims{sizes[gen() % 6], sizes[gen() % 6], sizes[gen() % 6]};
    if (dims.total() == 0) dims.hyperbolic = 5;
    const std::size_t n = ns[gen() % 6];
    const std::size_t dv = 1 + gen() % 9;
    const std::size_t heads = 1 + gen() % 4;
    const double c = cs[gen() % 3], c_s = css[gen() % 3];
    const double tau = std::array<double, 3>{0.5, 1.0, 2.0}[gen() % 3];
    const double escale = gen() % 2 ? 0.0 : 0.3;
    const auto mode = seed % 2 ? kTan : kDist;
    SCOPED_TRACE(::testing::Message()
                 << "seed=" << seed << " dims=(" << dims.euclidean << "," << dims.hyperbolic << ","
                 << dims.spherical << ") n=" << n << " H=" << heads << " c=" << c << " c_s=" << c_s
                 << " tau=" << tau << " tangent=" << (mode == kTan));
    const auto pr = make_problem<T>(seed, dims, n, dv, heads, c, c_s, tau, escale, mode,
                                    radius_mode::interior, radius_mode::interior, 2);
    worst = std::max(worst, check_problem<T>(pr, kTol<T>));
  }
  this->RecordProperty("worst_error", std::to_string(worst));
}

TYPED_TEST(FusedCurvatureTest, SingleComponentSpaces) {
  using T = TypeParam;
  const std::array<ra::component_dims, 3> spaces{
      ra::component_dims{12, 0, 0}, ra::component_dims{0, 12, 0}, ra::component_dims{0, 0, 12}};
  std::uint64_t seed = 100;
  for (const auto& dims : spaces)
    for (auto mode : {kDist, kTan})
      for (double c : {0.1, 1.0, 10.0}) {
        SCOPED_TRACE(::testing::Message() << "dims=(" << dims.euclidean << "," << dims.hyperbolic
                                          << "," << dims.spherical << ") c=" << c);
        check_problem<T>(make_problem<T>(seed++, dims, 21, 5, 2, c, 2.0, 1.0, 0.0, mode), kTol<T>);
      }
}

TYPED_TEST(FusedCurvatureTest, KeysNearTheBallBoundary) {
  using T = TypeParam;
  std::uint64_t seed = 200;
  for (double c : {0.1, 1.0, 10.0})
    for (auto mode : {kDist, kTan})
      for (auto qr : {radius_mode::interior, radius_mode::near_boundary}) {
        SCOPED_TRACE(::testing::Message()
                     << "c=" << c << " tangent=" << (mode == kTan)
                     << " query near boundary=" << (qr == radius_mode::near_boundary));
        const auto pr = make_problem<T>(seed++, {4, 9, 3}, 30, 6, 3, c, 1.0, 1.0, 0.0, mode,
                                        radius_mode::near_boundary, qr, 2);
        // Every key really is within 1e-3 of the boundary (and inside it).
        for (const auto& k : pr.keys) {
          double n2 = 0.0;
          for (std::size_t i = 4; i < 13; ++i) n2 += k[i] * k[i];
          EXPECT_LE(1.0 / std::sqrt(c) - std::sqrt(n2), 1.001e-3);
        }
        check_problem<T>(pr, kTol<T>);
      }
}

TYPED_TEST(FusedCurvatureTest, PointsOutsideTheBallAreProjected) {
  using T = TypeParam;
  std::uint64_t seed = 300;
  for (double c : {0.1, 1.0, 10.0})
    for (auto mode : {kDist, kTan}) {
      SCOPED_TRACE(::testing::Message() << "c=" << c << " tangent=" << (mode == kTan));
      check_problem<T>(make_problem<T>(seed++, {3, 6, 4}, 17, 4, 2, c, 1.0, 1.0, 0.0, mode,
                                       radius_mode::outside, radius_mode::outside),
                       kTol<T>);
    }
}

TYPED_TEST(FusedCurvatureTest, SingleKeyReturnsItsValue) {
  using T = TypeParam;
  for (auto mode : {kDist, kTan}) {
    const auto pr = make_problem<T>(400, {5, 4, 3}, 1, 7, 3, 1.0, 1.0, 1.0, 0.0, mode);
    check_problem<T>(pr, kTol<T>);
    const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
    const auto q = to_t<T>(pr.queries[0]);
    const auto K = to_matrix_t<T>(pr.keys, 12);
    const auto V = to_matrix_t<T>(pr.values, 7);
    const auto out = attn.compute(std::span<const T>(q), K, V);
    for (std::size_t c = 0; c < 7; ++c) EXPECT_EQ(out[c], V(0, static_cast<Eigen::Index>(c)));
  }
}

TYPED_TEST(FusedCurvatureTest, MasksMatchOracle) {
  using T = TypeParam;
  std::mt19937_64 gen(7);
  for (std::uint64_t seed = 500; seed < 512; ++seed) {
    auto pr = make_problem<T>(seed, {6, 5, 4}, 23, 5, 1 + seed % 3, 1.0, 1.0, 0.7, 0.0,
                              seed % 2 ? kTan : kDist);
    pr.mask.resize(23);
    for (std::size_t j = 0; j < 23; ++j) pr.mask[j] = gen() % 3 != 0;
    pr.mask[seed % 23] = true;
    SCOPED_TRACE(::testing::Message() << "seed=" << seed);
    check_problem<T>(pr, kTol<T>);
  }
}

TYPED_TEST(FusedCurvatureTest, AllMaskedGivesZeros) {
  using T = TypeParam;
  auto pr = make_problem<T>(600, {6, 5, 4}, 9, 5, 3, 1.0, 1.0, 1.0, 0.0, kDist);
  pr.mask.assign(9, false);
  check_problem<T>(pr, kTol<T>);  // the oracle gives zeros too
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  const auto q = to_t<T>(pr.queries[0]);
  const auto K = to_matrix_t<T>(pr.keys, 15);
  const auto V = to_matrix_t<T>(pr.values, 5);
  const std::unique_ptr<bool[]> m(new bool[9]());
  const auto out =
      attn.compute_with_mask(std::span<const T>(q), K, V, std::span<const bool>(m.get(), 9));
  for (T x : out) EXPECT_EQ(x, T(0));
  const auto heads = attn.compute_heads(std::span<const T>(q), attn.prepare_keys(K), V,
                                        std::span<const bool>(m.get(), 9));
  for (Eigen::Index i = 0; i < heads.size(); ++i) EXPECT_EQ(heads.data()[i], T(0));
}

TYPED_TEST(FusedCurvatureTest, MaskedKeysDoNotInfluenceTheOutput) {
  using T = TypeParam;
  const auto pr = make_problem<T>(650, {6, 5, 4}, 12, 5, 2, 1.0, 1.0, 1.0, 0.0, kDist);
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  const auto q = to_t<T>(pr.queries[0]);
  auto K = to_matrix_t<T>(pr.keys, 15);
  auto V = to_matrix_t<T>(pr.values, 5);
  std::unique_ptr<bool[]> m(new bool[12]);
  for (std::size_t j = 0; j < 12; ++j) m[j] = j % 4 != 1;
  const std::span<const bool> ms(m.get(), 12);
  const auto before = attn.compute_with_mask(std::span<const T>(q), K, V, ms);
  K.row(1) *= T(0.5);  // still a valid point
  V.row(1).setConstant(T(1000));
  V.row(5).setConstant(T(-1000));
  const auto after = attn.compute_with_mask(std::span<const T>(q), K, V, ms);
  EXPECT_EQ(before, after);
}

TYPED_TEST(FusedCurvatureTest, TinyTemperatureSelectsTheArgMax) {
  using T = TypeParam;
  // τ = 1e-30: logits of order 1e30, far outside exp's range; the max-shifted softmax still gives
  // a one-hot weight on the best key. Pure Euclidean keys with well-separated dot products make the
  // arg-max unambiguous in float.
  ra::fused_curvature_config cfg;
  cfg.dims = {4, 3, 2};
  cfg.temperature = 1e-30;
  cfg.num_heads = 2;
  cfg.head_weights = {{1.0, 0.0, 0.0}, {1.0, 0.0, 0.0}};
  const ra::mixed_curvature_fused_attention<T> attn(cfg);
  ra::row_matrix<T> K(5, 9);
  ra::row_matrix<T> V(5, 3);
  for (Eigen::Index j = 0; j < 5; ++j) {
    K.row(j) << T(j == 3 ? 2 : 0.1 * static_cast<double>(j)), 0, 0, 0, T(0.1), 0, 0, 1, 1;
    V.row(j) << T(j), T(10 + j), T(-j);
  }
  const std::vector<T> q{1, 0, 0, 0, 0, 0, 0, 1, 0};
  const auto out = attn.compute(std::span<const T>(q), K, V);
  for (Eigen::Index c = 0; c < 3; ++c) EXPECT_EQ(out[static_cast<std::size_t>(c)], V(3, c));
  // Oracle agrees (its own max-shifted softmax in double).
  co::params p;
  p.e = 4;
  p.h = 3;
  p.s = 2;
  p.weights = cfg.head_weights;
  p.tau = 1e-30;
  p.euclidean_scale = 0.5;
  std::vector<co::vec> keys, values;
  for (Eigen::Index j = 0; j < 5; ++j) {
    keys.push_back(head_row(K, static_cast<std::size_t>(j)));
    values.push_back(head_row(V, static_cast<std::size_t>(j)));
  }
  const auto ref = co::reference(co::vec(q.begin(), q.end()), keys, values, p);
  EXPECT_LE(orc::max_mixed_error(out, ref.mean), 0.0);
}

TYPED_TEST(FusedCurvatureTest, PureEuclideanEqualsScaledDotProduct) {
  using T = TypeParam;
  for (std::size_t d : {1u, 7u, 16u, 40u}) {
    for (std::size_t heads : {1u, 3u}) {
      SCOPED_TRACE(::testing::Message() << "d=" << d << " heads=" << heads);
      ra::fused_curvature_config cfg;
      cfg.dims = {d, 0, 0};
      cfg.num_heads = heads;
      cfg.head_weights.assign(heads, {1.0, 0.3, 0.9});  // w_h, w_s act on empty components
      cfg.euclidean_scale = static_cast<double>(static_cast<T>(1.0 / std::sqrt(double(d))));
      cfg.temperature = 1.0;
      const ra::mixed_curvature_fused_attention<T> attn(cfg);
      const auto q = orc::rounded<T>(orc::random_matrix(1, d, 800 + d));
      const auto k = orc::rounded<T>(orc::random_matrix(19, d, 900 + d));
      const auto v = orc::rounded<T>(orc::random_matrix(19, 6, 1000 + d));
      const auto ref = orc::reference_attention(q, k, v, cfg.euclidean_scale);
      const auto qv = ruvector_test::to_vec<T>(q.a);
      const auto out = attn.compute(std::span<const T>(qv), ruvector_test::to_eigen<T>(k),
                                    ruvector_test::to_eigen<T>(v));
      EXPECT_LE(orc::max_mixed_error(out, ref.out.a), kTol<T>);
    }
  }
}

TYPED_TEST(FusedCurvatureTest, KeySetReuseEqualsPerCallComputation) {
  using T = TypeParam;
  const auto pr = make_problem<T>(1100, {8, 6, 5}, 29, 7, 3, 1.0, 1.0, 1.0, 0.0, kDist,
                                  radius_mode::interior, radius_mode::interior, 6);
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  auto tangent_cfg = pr.cfg;
  tangent_cfg.hyperbolic = kTan;
  tangent_cfg.num_heads = 1;
  tangent_cfg.head_weights = {{0.2, 0.7, 0.1}};
  const ra::mixed_curvature_fused_attention<T> tangent(tangent_cfg);
  const auto K = to_matrix_t<T>(pr.keys, 19);
  const auto V = to_matrix_t<T>(pr.values, 7);
  const auto ks = attn.prepare_keys(K);
  EXPECT_EQ(ks.size(), 29u);
  EXPECT_EQ(ks.dims(), pr.cfg.dims);
  EXPECT_GE(ks.stride(), 19u);
  for (const auto& qd : pr.queries) {
    const auto q = to_t<T>(qd);
    EXPECT_EQ(attn.compute(std::span<const T>(q), ks, V),
              attn.compute(std::span<const T>(q), K, V));
    // A key set depends on dims and curvature_h only, so another mechanism may reuse it.
    EXPECT_EQ(tangent.compute(std::span<const T>(q), ks, V),
              tangent.compute(std::span<const T>(q), K, V));
  }
}

TYPED_TEST(FusedCurvatureTest, PrepareKeysIntoReusesStorage) {
  using T = TypeParam;
  const auto big = make_problem<T>(1120, {4, 4, 4}, 30, 3, 2, 1.0, 1.0, 1.0, 0.0, kDist);
  const auto small = make_problem<T>(1121, {4, 4, 4}, 7, 3, 2, 1.0, 1.0, 1.0, 0.0, kDist);
  const ra::mixed_curvature_fused_attention<T> attn(big.cfg);
  ra::mixed_curvature_key_set<T> ks;
  attn.prepare_keys_into(to_matrix_t<T>(big.keys, 12), ks);
  EXPECT_EQ(ks.size(), 30u);
  const auto Ks = to_matrix_t<T>(small.keys, 12);
  attn.prepare_keys_into(Ks, ks);
  const auto fresh = attn.prepare_keys(Ks);
  ASSERT_EQ(ks.size(), 7u);
  for (std::size_t j = 0; j < 7; ++j) {
    const auto a = ks.row(j), b = fresh.row(j);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  }
  const auto V = to_matrix_t<T>(small.values, 3);
  const auto q = to_t<T>(small.queries[0]);
  EXPECT_EQ(attn.compute(std::span<const T>(q), ks, V),
            attn.compute(std::span<const T>(q), fresh, V));
  // A failed preparation leaves the key set empty (never half-written but usable).
  auto bad = Ks;
  bad(5, 8) = bad(5, 9) = bad(5, 10) = bad(5, 11) = T(0);
  EXPECT_THROW(attn.prepare_keys_into(bad, ks), ra::invalid_argument);
  EXPECT_TRUE(ks.empty());
  EXPECT_THROW((void)attn.compute(std::span<const T>(q), ks, V), ra::invalid_argument);
}

TYPED_TEST(FusedCurvatureTest, PreparedKeyLayout) {
  using T = TypeParam;
  const auto pr =
      make_problem<T>(1150, {2, 3, 2}, 3, 1, 1, 4.0, 1.0, 1.0, 0.0, kDist, radius_mode::outside);
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  const auto ks = attn.prepare_keys(to_matrix_t<T>(pr.keys, 7));
  const auto terms = ks.key_terms();
  for (std::size_t j = 0; j < 3; ++j) {
    const auto row = ks.row(j);
    const co::vec& k = pr.keys[j];
    EXPECT_EQ(row[0], static_cast<T>(k[0]));
    EXPECT_EQ(row[1], static_cast<T>(k[1]));
    // H part: on the sphere of radius (1 − 1e-5)/√c (the key was outside the ball).
    double n2 = 0.0;
    for (std::size_t i = 2; i < 5; ++i) n2 += double(row[i]) * double(row[i]);
    EXPECT_NEAR(std::sqrt(n2), (1.0 - 1e-5) / 2.0, 1e-6);
    EXPECT_NEAR(double(terms.h_norm2[j]), n2, 1e-6 * n2);
    EXPECT_NEAR(double(terms.h_conformal[j]), 1.0 / (1.0 - 4.0 * n2), 1e-5 / (1.0 - 4.0 * n2));
    const double u = 2.0 * std::sqrt(n2);
    EXPECT_NEAR(double(terms.h_tangent[j]), std::atanh(u) / u, 1e-5 * std::atanh(u) / u);
    // S part: unit vector in the direction of k_S.
    const double ns = std::hypot(k[5], k[6]);
    EXPECT_NEAR(double(row[5]), k[5] / ns, 1e-6);
    EXPECT_NEAR(double(row[6]), k[6] / ns, 1e-6);
  }
  EXPECT_THROW((void)ks.row(3), ra::invalid_argument);
}

// ---- the stage kernels ------------------------------------------------------------------------

TYPED_TEST(FusedCurvatureTest, SegmentRowDotsMatchDirectSums) {
  using T = TypeParam;
  std::mt19937_64 gen(1200);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (const ra::component_dims dims :
       {ra::component_dims{3, 5, 7}, ra::component_dims{0, 17, 1}, ra::component_dims{33, 0, 0},
        ra::component_dims{16, 16, 16}, ra::component_dims{1, 0, 40}}) {
    for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 19u}) {
      const std::size_t d = dims.total(), ld = d + 3;
      std::vector<T> k(n * ld + 1), q(d);
      for (auto& x : k) x = static_cast<T>(normal(gen));
      for (auto& x : q) x = static_cast<T>(normal(gen));
      std::vector<T> de(n + 1, T(-7)), dh(n + 1, T(-7)), ds(n + 1, T(-7));
      ra::kernels::segment_row_dots<T>(k.data(), n, ld, dims, q.data(), de.data(), dh.data(),
                                       ds.data());
      for (std::size_t j = 0; j < n; ++j) {
        double ref[3] = {0, 0, 0};
        for (std::size_t c = 0; c < d; ++c) {
          const int seg = c < dims.euclidean ? 0 : c < dims.euclidean + dims.hyperbolic ? 1 : 2;
          ref[seg] += double(q[c]) * double(k[j * ld + c]);
        }
        EXPECT_NEAR(double(de[j]), ref[0], kDotTol<T>);
        EXPECT_NEAR(double(dh[j]), ref[1], kDotTol<T>);
        EXPECT_NEAR(double(ds[j]), ref[2], kDotTol<T>);
      }
      EXPECT_EQ(de[n], T(-7));  // nothing written past n
    }
  }
}

TYPED_TEST(FusedCurvatureTest, TemperedSoftmax) {
  using T = TypeParam;
  const T inf = std::numeric_limits<T>::infinity();
  for (std::size_t n : {1u, 3u, 16u, 17u, 40u}) {
    std::vector<T> x(n);
    std::vector<bool> vis(n);
    co::vec xd(n);
    for (std::size_t j = 0; j < n; ++j) {
      x[j] = static_cast<T>(std::sin(double(j) * 1.7) * 5.0);
      vis[j] = j % 5 != 2 || n == 1;
      if (!vis[j]) x[j] = -inf;
      xd[j] = double(x[j]) * 2.0;  // inv_tau = 2
    }
    const auto ref = co::softmax(xd, vis);
    EXPECT_TRUE(ra::kernels::tempered_softmax<T>(x.data(), n, T(2)));
    EXPECT_LE(orc::max_mixed_error(x, ref), kTol<T>);
  }
  std::vector<T> hidden(5, -inf);
  EXPECT_FALSE(ra::kernels::tempered_softmax<T>(hidden.data(), 5, T(1)));
  for (T w : hidden) EXPECT_EQ(w, T(0));
}

TYPED_TEST(FusedCurvatureTest, ComputeFromDotsFinishesLikeCompute) {
  using T = TypeParam;
  // Stage 1 replaced by dot products computed by the test in double from the prepared rows (as a
  // quantised-key path would supply them): the result must match the oracle.
  for (auto mode : {kDist, kTan}) {
    const auto pr = make_problem<T>(1300, {5, 7, 3}, 26, 4, 3, 1.0, 1.0, 1.0, 0.0, mode);
    const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
    const auto K = to_matrix_t<T>(pr.keys, 15);
    const auto V = to_matrix_t<T>(pr.values, 4);
    const auto ks = attn.prepare_keys(K);
    const auto qd = to_t<T>(pr.queries[0]);
    std::vector<T> qrow(15);
    const auto qt = attn.prepare_query(std::span<const T>(qd), std::span<T>(qrow));
    std::vector<T> de(26), dh(26), ds(26);
    for (std::size_t j = 0; j < 26; ++j) {
      const auto r = ks.row(j);
      double a[3] = {0, 0, 0};
      for (std::size_t c = 0; c < 15; ++c)
        a[c < 5 ? 0 : c < 12 ? 1 : 2] += double(qrow[c]) * double(r[c]);
      de[j] = static_cast<T>(a[0]);
      dh[j] = static_cast<T>(a[1]);
      ds[j] = static_cast<T>(a[2]);
    }
    std::vector<T> out(4);
    attn.compute_from_dots(qt, std::span<T>(de), std::span<T>(dh), std::span<T>(ds), ks.key_terms(),
                           V, {}, std::span<T>(out));
    const auto ref = co::reference(pr.queries[0], pr.keys, pr.values, pr.p);
    EXPECT_LE(orc::max_mixed_error(out, ref.mean), kTol<T>);
    // The dots now hold the component similarities.
    for (std::size_t j = 0; j < 26; ++j) {
      const auto c = co::components(pr.queries[0], pr.keys[j], pr.p);
      EXPECT_NEAR(double(de[j]), c[0], kTol<T> * std::max(1.0, std::abs(c[0])));
      EXPECT_NEAR(double(dh[j]), c[1], kTol<T> * std::max(1.0, std::abs(c[1])));
      EXPECT_NEAR(double(ds[j]), c[2], kTol<T> * std::max(1.0, std::abs(c[2])));
    }
    EXPECT_THROW(attn.compute_from_dots(qt, std::span<T>(de), std::span<T>(dh).first(25),
                                        std::span<T>(ds), ks.key_terms(), V, {}, std::span<T>(out)),
                 ra::dimension_mismatch);
  }
}

// ---- errors -----------------------------------------------------------------------------------

template <class T>
ra::fused_curvature_config small_config() {
  ra::fused_curvature_config cfg;
  cfg.dims = {3, 2, 2};
  cfg.num_heads = 2;
  return cfg;
}

TYPED_TEST(FusedCurvatureTest, BadConfigThrowsInvalidConfig) {
  using T = TypeParam;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto expect_bad = [](ra::fused_curvature_config cfg, const char* needle) {
    const std::string msg =
        thrown_message<ra::invalid_config>([&] { ra::mixed_curvature_fused_attention<T> a(cfg); });
    EXPECT_MESSAGE_HAS(msg, needle);
  };
  auto c = small_config<T>();
  c.dims = {0, 0, 0};
  expect_bad(c, "dims.total()");
  for (double v : {0.0, 1.0, nan, -inf}) {
    c = small_config<T>();
    c.curvature_h = v;
    expect_bad(c, "curvature_h");
  }
  for (double v : {0.0, -1.0, nan, inf}) {
    c = small_config<T>();
    c.curvature_s = v;
    expect_bad(c, "curvature_s");
  }
  c = small_config<T>();
  c.num_heads = 0;
  expect_bad(c, "num_heads");
  c = small_config<T>();
  c.head_weights = {{1, 1, 1}};  // 1 entry for 2 heads
  expect_bad(c, "head_weights");
  for (double v : {-0.1, nan, inf}) {
    c = small_config<T>();
    c.head_weights = {{1, 1, 1}, {1, v, 1}};
    expect_bad(c, "head_weights[1][1]");
  }
  for (double v : {0.0, -1.0, nan, inf}) {
    c = small_config<T>();
    c.temperature = v;
    expect_bad(c, "temperature");
  }
  c = small_config<T>();
  c.temperature = std::is_same_v<T, float> ? 1e-40 : 1e-320;  // 1/τ overflows T
  expect_bad(c, "temperature");
  for (double v : {-1.0, nan, inf}) {
    c = small_config<T>();
    c.euclidean_scale = v;
    expect_bad(c, "euclidean_scale");
  }
  // Valid edge values construct.
  c = small_config<T>();
  c.head_weights = {{0, 0, 0}, {2, 0, 1}};
  c.temperature = 1e-30;
  EXPECT_NO_THROW(ra::mixed_curvature_fused_attention<T>{c});
}

TYPED_TEST(FusedCurvatureTest, MismatchedDimensionsThrow) {
  using T = TypeParam;
  const ra::mixed_curvature_fused_attention<T> attn(small_config<T>());
  const ra::row_matrix<T> K = ra::row_matrix<T>::Constant(4, 7, T(0.2));
  const ra::row_matrix<T> V = ra::row_matrix<T>::Constant(4, 3, T(1));
  const std::vector<T> q(7, T(0.1)), q_short(6, T(0.1));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q_short), K, V); }),
                     "query.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q), K.leftCols(6), V); }),
                     "keys.cols()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q), K, V.topRows(3)); }),
                     "values.rows()");
  const std::unique_ptr<bool[]> m(new bool[3]{true, true, true});
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)attn.compute_with_mask(std::span<const T>(q), K, V,
                                                    std::span<const bool>(m.get(), 3));
                     }),
                     "mask.size()");
  const auto ks = attn.prepare_keys(K);
  EXPECT_THROW((void)attn.compute(std::span<const T>(q), ks, V.topRows(2)), ra::dimension_mismatch);
  EXPECT_THROW(
      (void)attn.compute_heads(std::span<const T>(q), ks, V, std::span<const bool>(m.get(), 3)),
      ra::dimension_mismatch);
  std::vector<T> lg(3);
  EXPECT_THROW(attn.logits(std::span<const T>(q), ks, 0, std::span<T>(lg)), ra::dimension_mismatch);
  // A key set prepared for other dims.
  auto other = small_config<T>();
  other.dims = {2, 3, 2};
  const ra::mixed_curvature_fused_attention<T> attn2(other);
  const auto ks2 = attn2.prepare_keys(K);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)attn.compute(std::span<const T>(q), ks2, V); }),
                     "key_set.dims()");
}

TYPED_TEST(FusedCurvatureTest, InvalidArgumentsThrow) {
  using T = TypeParam;
  const ra::mixed_curvature_fused_attention<T> attn(small_config<T>());
  ra::row_matrix<T> K = ra::row_matrix<T>::Constant(4, 7, T(0.2));
  const ra::row_matrix<T> V = ra::row_matrix<T>::Constant(4, 3, T(1));
  std::vector<T> q(7, T(0.1));
  // No keys.
  EXPECT_THROW((void)attn.compute(std::span<const T>(q), K.topRows(0), V.topRows(0)),
               ra::invalid_argument);
  // An empty key set.
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>(
          [&] { (void)attn.compute(std::span<const T>(q), ra::mixed_curvature_key_set<T>{}, V); }),
      "empty");
  // Head index out of range.
  const auto ks = attn.prepare_keys(K);
  std::vector<T> lg(4);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { attn.logits(std::span<const T>(q), ks, 2, std::span<T>(lg)); }),
                     "head");
  // A key set prepared for another curvature.
  auto other = small_config<T>();
  other.curvature_h = -2.0;
  const ra::mixed_curvature_fused_attention<T> attn2(other);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)attn2.compute(std::span<const T>(q), ks, V); }),
                     "curvature_h");
  // Zero spherical parts have no direction: documented as invalid_argument.
  std::vector<T> qz = q;
  qz[5] = qz[6] = T(0);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)attn.compute(std::span<const T>(qz), K, V); }),
                     "query has a zero spherical part");
  K(2, 5) = K(2, 6) = T(0);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { (void)attn.prepare_keys(K); }),
                     "keys[2] has a zero spherical part");
  // Without a spherical component, zero vectors are fine (the origin of E and H).
  auto no_s = small_config<T>();
  no_s.dims = {3, 4, 0};
  const ra::mixed_curvature_fused_attention<T> attn3(no_s);
  const ra::row_matrix<T> Z = ra::row_matrix<T>::Zero(2, 7);
  const auto out = attn3.compute(std::span<const T>(std::vector<T>(7, T(0))), Z, V.topRows(2));
  EXPECT_EQ(out, std::vector<T>(3, T(1)));
}

TYPED_TEST(FusedCurvatureTest, NonFiniteInputsThrow) {
  using T = TypeParam;
  const ra::mixed_curvature_fused_attention<T> attn(small_config<T>());
  const ra::row_matrix<T> K = ra::row_matrix<T>::Constant(4, 7, T(0.2));
  const ra::row_matrix<T> V = ra::row_matrix<T>::Constant(4, 3, T(1));
  const std::vector<T> q(7, T(0.1));
  for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
    auto qb = q;
    qb[4] = bad;
    EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                           [&] { (void)attn.compute(std::span<const T>(qb), K, V); }),
                       "query[4]");
    auto Kb = K;
    Kb(1, 2) = bad;
    EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                           [&] { (void)attn.compute(std::span<const T>(q), Kb, V); }),
                       "keys[1][2]");
    auto Vb = V;
    Vb(3, 0) = bad;
    EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                           [&] { (void)attn.compute(std::span<const T>(q), K, Vb); }),
                       "values[3][0]");
    const auto ks = attn.prepare_keys(K);
    EXPECT_THROW((void)attn.compute_heads(std::span<const T>(q), ks, Vb), ra::non_finite_input);
  }
  // Finite inputs whose Euclidean logits overflow T.
  auto cfg = small_config<T>();
  cfg.euclidean_scale = static_cast<double>(std::numeric_limits<T>::max()) / 4;
  cfg.head_weights = {{1, 0, 0}, {1, 1, 1}};
  const ra::mixed_curvature_fused_attention<T> big(cfg);
  const std::vector<T> q_big{100, 100, 100, 0, 0, 1, 0};
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)big.compute(std::span<const T>(q_big), K, V); }),
                     "overflowed");
}

// ---- API conveniences ---------------------------------------------------------------------------

TYPED_TEST(FusedCurvatureTest, SeedsShapedAdapters) {
  using T = TypeParam;
  const auto pr = make_problem<T>(1400, {3, 3, 3}, 6, 2, 2, 1.0, 1.0, 1.0, 0.0, kDist);
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  std::vector<std::vector<T>> keys, values;
  for (const auto& k : pr.keys) keys.push_back(to_t<T>(k));
  for (const auto& v : pr.values) values.push_back(to_t<T>(v));
  const auto q = to_t<T>(pr.queries[0]);
  const auto ref = co::reference(pr.queries[0], pr.keys, pr.values, pr.p);
  EXPECT_LE(orc::max_mixed_error(attn.compute(q, keys, values), ref.mean), kTol<T>);
  const std::vector<bool> mask{true, false, true, true, false, true};
  const auto ref_m = co::reference(pr.queries[0], pr.keys, pr.values, pr.p, mask);
  EXPECT_LE(orc::max_mixed_error(attn.compute_with_mask(q, keys, values, mask), ref_m.mean),
            kTol<T>);
  keys[2].pop_back();
  EXPECT_THROW((void)attn.compute(q, keys, values), ra::dimension_mismatch);
}

TYPED_TEST(FusedCurvatureTest, DefaultHeadWeightsAndConfigAccess) {
  using T = TypeParam;
  ra::fused_curvature_config cfg;
  cfg.dims = {4, 4, 4};
  cfg.num_heads = 3;
  const auto pr_cfg = cfg;
  const ra::mixed_curvature_fused_attention<T> attn(cfg);
  EXPECT_EQ(attn.config().num_heads, 3u);
  EXPECT_EQ(attn.config().dims, pr_cfg.dims);
  for (std::size_t h = 0; h < 3; ++h) {
    EXPECT_EQ(attn.head_weights(h)[0], T(0.5));
    EXPECT_EQ(attn.head_weights(h)[1], T(0.35));
    EXPECT_EQ(attn.head_weights(h)[2], T(0.15));
  }
  // With default weights every head is the same, and so is the mean.
  auto pr = make_problem<T>(1500, cfg.dims, 11, 3, 3, 1.0, 1.0, 1.0, 0.0, kDist);
  pr.cfg.head_weights.clear();
  pr.p.weights.assign(3, {0.5, 0.35, 0.15});
  check_problem<T>(pr, kTol<T>);
}

TYPED_TEST(FusedCurvatureTest, ConcurrentCallsAgreeWithSerial) {
  using T = TypeParam;
  const auto pr = make_problem<T>(1600, {8, 8, 8}, 40, 5, 4, 1.0, 1.0, 1.0, 0.0, kDist,
                                  radius_mode::interior, radius_mode::interior, 4);
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  const auto K = to_matrix_t<T>(pr.keys, 24);
  const auto V = to_matrix_t<T>(pr.values, 5);
  const auto ks = attn.prepare_keys(K);
  std::vector<std::vector<T>> serial;
  for (const auto& qd : pr.queries)
    serial.push_back(attn.compute(std::span<const T>(to_t<T>(qd)), ks, V));
  std::vector<std::vector<T>> par(4);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 4; ++i)
      threads.emplace_back([&, i] {
        const auto q = to_t<T>(pr.queries[i]);
        for (int rep = 0; rep < 20; ++rep) par[i] = attn.compute(std::span<const T>(q), ks, V);
      });
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(par, serial);
}

// ---- scoring on bit-packed keys (curvature/quantized_attention.hpp)
// ------------------------------

TYPED_TEST(FusedCurvatureTest, PackedKeysScoreExactlyTheDecodedKeys) {
  // compute_quantized scores on the packed codes; the oracle decodes every key (the packed bytes
  // read back by dequantize_row) and runs the double brute force on the decoded keys. The two must
  // agree to the float path's tolerance: quantisation changes the keys, not the attention.
  using T = TypeParam;
  std::uint64_t seed = 900;
  for (const auto mode : {kDist, kTan}) {
    for (const ra::quantization_config qc :
         {ra::quantization_config{8, 5, 5}, ra::quantization_config{4, 3, 6}}) {
      for (const ra::component_dims dims :
           {ra::component_dims{16, 12, 8}, ra::component_dims{0, 9, 0},
            ra::component_dims{5, 0, 3}}) {
        const auto pr = make_problem<T>(seed++, dims, 23, 4, 2, 1.0, 1.0, 1.0, 0.0, mode);
        const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
        const auto K = to_matrix_t<T>(pr.keys, dims.total());
        const auto V = to_matrix_t<T>(pr.values, 4);
        const ra::quantized_mixed_curvature_keys<T> qk(attn, K, qc);
        ASSERT_EQ(qk.size(), pr.keys.size());
        EXPECT_LT(qk.packed().storage_bytes(), pr.keys.size() * dims.total() * sizeof(T));
        std::vector<co::vec> decoded;
        std::vector<T> row(dims.total());
        for (std::size_t j = 0; j < qk.size(); ++j) {
          qk.packed().dequantize_row(j, row);
          decoded.emplace_back(row.begin(), row.end());
        }
        for (const auto& qd : pr.queries) {
          const auto ref = co::reference(qd, decoded, pr.values, pr.p);
          const auto out = ra::compute_quantized(attn, std::span<const T>(to_t<T>(qd)), qk, V);
          EXPECT_LE(orc::max_mixed_error(out, ref.mean), kTol<T>)
              << "dims=(" << dims.euclidean << "," << dims.hyperbolic << "," << dims.spherical
              << ") bits=(" << qc.euclidean_bits << "," << qc.hyperbolic_bits << ","
              << qc.spherical_bits << ") tangent=" << (mode == kTan);
        }
      }
    }
  }
}

TYPED_TEST(FusedCurvatureTest, PackedKeysMaskAndErrors) {
  using T = TypeParam;
  const auto pr = make_problem<T>(77, {6, 5, 4}, 9, 3, 1, 1.0, 1.0, 1.0, 0.0, kDist);
  const ra::mixed_curvature_fused_attention<T> attn(pr.cfg);
  const auto K = to_matrix_t<T>(pr.keys, 15);
  const auto V = to_matrix_t<T>(pr.values, 3);
  const ra::quantized_mixed_curvature_keys<T> qk(attn, K);
  const auto q = to_t<T>(pr.queries[0]);
  const std::unique_ptr<bool[]> none(new bool[9]());
  for (T x : ra::compute_quantized(attn, std::span<const T>(q), qk, V,
                                   std::span<const bool>(none.get(), 9)))
    EXPECT_EQ(x, T(0));  // every key masked: zeros
  EXPECT_THROW((void)ra::compute_quantized(attn, std::span<const T>(q.data(), 14), qk, V),
               ra::dimension_mismatch);
  EXPECT_THROW((void)ra::compute_quantized(attn, std::span<const T>(q), qk,
                                           to_matrix_t<T>(pr.values, 3).topRows(8)),
               ra::dimension_mismatch);
}

}  // namespace
