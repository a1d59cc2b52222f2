// Graph rotary position embeddings (graph/rope.hpp: graph_rope, graph_rope_attention) and
// dual-space attention (graph/dual_space.hpp: dual_space_attention), for float and double,
// against independent double-precision oracles written in this file (namespace `oracle_rd`,
// which uses no library header or type):
// - RoPE: each coordinate pair is multiplied by an explicit 2×2 rotation matrix
//   [[cos φ, −sin φ], [sin φ, cos φ]], φ_i = (p/s)·exp(−(2i/d)·ln base); attention is the
//   textbook softmax(scale·⟨R(p_q)q, R(p_j)k_j⟩)·V. Bucketing: the smallest k with E·2^k ≥ δ,
//   found by doubling (overflow-guarded), then clamped.
// - Dual space: ⟨W_e q, W_e k⟩/√d with both vectors projected explicitly, and the Poincaré
//   distance (1/√c)·acosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²))) with ‖x − y‖² summed directly
//   (not the library's log1p form), after the radial projection onto radius r. The projection
//   radius r = (1 − eps)/√c and the convention that a projected point has norm exactly r are the
//   documented conventions (poincare.hpp / dual_space.hpp); r is read from the ball (rounded to T).
//
// Tolerances (max |got − ref| / max(|ref|, 1)):
// - float 2e-5: scores are dot products of d ≤ 64 O(1) values accumulated in float (≲ √d·6e-8 ≈
//   5e-7) plus, for the hyperbolic term, a log of a product of three float factors (a few ulp
//   relative in a → a few 1e-7 absolute in the distance, × w_h/τ ≤ 4); the softmax turns an
//   absolute score error into the same relative weight error, and outputs are convex combinations
//   of O(1) values. Observed ≤ 1.2e-6; a wrong sign, scale, pair layout or projection moves
//   results by ≥ 1e-2.
// - double 1e-11: the same argument with 2^-53 (observed ≤ 3.2e-14), except for keys projected
//   onto the boundary, where β = 1 − c·r² ≈ 2e-10 is itself only known to ~1e-20 absolute (the
//   oracle rounds r·r, the library may fuse it): ~5e-11 relative in a, i.e. 5e-11 absolute in a
//   distance of ~24 (2e-12 relative; the terms test scales the tolerance by max(1, |ref|)).
// - Rotations compare elements with 4·d·ε_T·‖x‖ (an O(d)-term rounding bound for |x'| ≤ ‖x‖).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/graph/csr_graph.hpp"
#include "ruvector/attention/graph/dual_space.hpp"
#include "ruvector/attention/graph/rope.hpp"
#include "ruvector/attention/hyperbolic/hyperbolic_attention.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

// ================================================================================================
// Oracle (double precision, std types only)
// ================================================================================================
namespace oracle_rd {

using vec = std::vector<double>;
using mat = std::vector<vec>;

inline double dot(const vec& a, const vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// Rotary embedding by explicit 2×2 rotations. interleaved: pairs (2i, 2i+1); else (i, i + d/2).
inline vec rope_rotate(const vec& x, double p, double base, double scaling, bool interleaved) {
  const std::size_t d = x.size();
  const std::size_t h = d / 2;
  vec out(d, 0.0);
  for (std::size_t i = 0; i < h; ++i) {
    const double theta =
        std::exp(-(2.0 * static_cast<double>(i) / static_cast<double>(d)) * std::log(base));
    const double phi = (p / scaling) * theta;
    const double rot[2][2] = {{std::cos(phi), -std::sin(phi)}, {std::sin(phi), std::cos(phi)}};
    const std::size_t a = interleaved ? 2 * i : i;
    const std::size_t b = interleaved ? 2 * i + 1 : i + h;
    out[a] = rot[0][0] * x[a] + rot[0][1] * x[b];
    out[b] = rot[1][0] * x[a] + rot[1][1] * x[b];
  }
  return out;
}

/// Softmax over the visible scores; all hidden → zeros.
inline vec softmax(const vec& s, const std::vector<bool>& mask) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < s.size(); ++j)
    if (mask.empty() || mask[j]) m = std::max(m, s[j]);
  vec w(s.size(), 0.0);
  if (m == -std::numeric_limits<double>::infinity()) return w;
  double l = 0.0;
  for (std::size_t j = 0; j < s.size(); ++j)
    if (mask.empty() || mask[j]) l += std::exp(s[j] - m);
  for (std::size_t j = 0; j < s.size(); ++j)
    if (mask.empty() || mask[j]) w[j] = std::exp(s[j] - m) / l;
  return w;
}

inline vec weighted_sum(const vec& w, const mat& values) {
  vec out(values.empty() ? 0 : values[0].size(), 0.0);
  for (std::size_t j = 0; j < values.size(); ++j)
    for (std::size_t c = 0; c < out.size(); ++c) out[c] += w[j] * values[j][c];
  return out;
}

struct result {
  vec out;
  vec weights;
};

inline result rope_attention(const vec& q, double pq, const mat& keys, const vec& pk,
                             const mat& values, double scale, double base, double scaling,
                             bool interleaved, const std::vector<bool>& mask = {}) {
  const vec qr = rope_rotate(q, pq, base, scaling, interleaved);
  vec s(keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j)
    s[j] = scale * dot(qr, rope_rotate(keys[j], pk[j], base, scaling, interleaved));
  result r;
  r.weights = softmax(s, mask);
  r.out = weighted_sum(r.weights, values);
  return r;
}

/// min(M − 1, δ) for δ ≤ E, else min(M − 1, E + min{k : E·2^k ≥ δ}).
inline std::size_t bucket(std::size_t delta, std::size_t e, std::size_t m) {
  std::size_t b = delta;
  if (delta > e) {
    std::size_t span = e;  // E·2^k; one more doubling always suffices once span > SIZE_MAX/2
    std::size_t k = 0;
    while (span < delta) {
      ++k;
      if (span > std::numeric_limits<std::size_t>::max() / 2) break;
      span *= 2;
    }
    b = e + k;
  }
  return std::min(b, m - 1);
}

/// A point projected onto the ball of radius r and its squared norm (exactly r² if projected).
struct ball_point {
  vec x;
  double sq;
};

inline ball_point project(const vec& x, double r) {
  const double sq = dot(x, x);
  if (sq <= r * r) return {x, sq};
  vec y = x;
  const double f = r / std::sqrt(sq);
  for (double& v : y) v *= f;
  return {y, r * r};
}

inline double poincare_distance(const ball_point& x, const ball_point& y, double c) {
  double diff2 = 0.0;
  for (std::size_t i = 0; i < x.x.size(); ++i) diff2 += (x.x[i] - y.x[i]) * (x.x[i] - y.x[i]);
  return std::acosh(1.0 + 2.0 * c * diff2 / ((1.0 - c * x.sq) * (1.0 - c * y.sq))) / std::sqrt(c);
}

inline vec matvec(const mat& w, const vec& x) {
  if (w.empty()) return x;  // identity
  vec y(w.size(), 0.0);
  for (std::size_t i = 0; i < w.size(); ++i) y[i] = dot(w[i], x);
  return y;
}

struct dual_params {
  double c = 1.0, r = 1.0, w_e = 0.5, w_h = 0.5, tau = 1.0;
  mat w_e_map, w_h_map, w_out;  ///< empty = identity / no output projection
};

/// The unweighted terms (⟨W_e q, W_e k⟩/√d, d_c(P(W_h q), P(W_h k))) of one key.
inline std::pair<double, double> dual_terms(const vec& q, const vec& k, const dual_params& p) {
  const double e =
      dot(matvec(p.w_e_map, q), matvec(p.w_e_map, k)) / std::sqrt(static_cast<double>(q.size()));
  const double h = poincare_distance(project(matvec(p.w_h_map, q), p.r),
                                     project(matvec(p.w_h_map, k), p.r), p.c);
  return {e, h};
}

inline result dual_attention(const vec& q, const mat& keys, const mat& values, const dual_params& p,
                             const std::vector<bool>& mask = {}) {
  vec s(keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j) {
    const auto [e, h] = dual_terms(q, keys[j], p);
    s[j] = (p.w_e * e - p.w_h * h) / p.tau;
  }
  result r;
  r.weights = softmax(s, mask);
  r.out = weighted_sum(r.weights, values);
  if (!p.w_out.empty()) r.out = matvec(p.w_out, r.out);
  return r;
}

}  // namespace oracle_rd

namespace {

namespace ra = ruvector::attention;
namespace orc = oracle_rd;

static_assert(ra::masked_attention_mechanism<ra::graph_rope_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::graph_rope_attention<double>>);
static_assert(ra::masked_attention_mechanism<ra::dual_space_attention<float>>);
static_assert(ra::masked_attention_mechanism<ra::dual_space_attention<double>>);

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 2e-5 : 1e-11;

template <class T>
constexpr double kEps = std::numeric_limits<T>::epsilon();

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

/// Runs f and returns the message of the expected exception type E (fails otherwise).
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

/// max_i |a_i − b_i| / max(|b_i|, 1).
template <class A>
double max_err(const A& got, const orc::vec& ref) {
  EXPECT_EQ(static_cast<std::size_t>(got.size()), ref.size());
  double e = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i)
    e = std::max(e,
                 std::abs(static_cast<double>(got[i]) - ref[i]) / std::max(std::abs(ref[i]), 1.0));
  return e;
}

/// A random rows × cols matrix of T with N(0, sigma) entries.
template <class T>
ra::row_matrix<T> random_matrix(std::mt19937& gen, std::size_t rows, std::size_t cols,
                                double sigma = 1.0) {
  std::normal_distribution<double> nd(0.0, sigma);
  ra::row_matrix<T> m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(nd(gen));
  return m;
}

template <class T>
std::vector<T> random_vector(std::mt19937& gen, std::size_t n, double sigma = 1.0) {
  std::normal_distribution<double> nd(0.0, sigma);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(nd(gen));
  return v;
}

template <class T>
orc::vec to_d(std::span<const T> v) {
  return orc::vec(v.begin(), v.end());
}

template <class T>
orc::vec to_d(const std::vector<T>& v) {
  return orc::vec(v.begin(), v.end());
}

template <class M>
orc::mat rows_d(const M& m) {
  orc::mat out(static_cast<std::size_t>(m.rows()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].resize(static_cast<std::size_t>(m.cols()));
    for (std::size_t c = 0; c < out[i].size(); ++c)
      out[i][c] =
          static_cast<double>(m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)));
  }
  return out;
}

/// A std::vector<bool> as a contiguous bool array usable as std::span<const bool>.
struct bool_buf {
  explicit bool_buf(const std::vector<bool>& m) : n(m.size()), p(new bool[m.size() + 1]) {
    std::copy(m.begin(), m.end(), p.get());
  }
  [[nodiscard]] std::span<const bool> span() const { return {p.get(), n}; }
  std::size_t n;
  std::unique_ptr<bool[]> p;
};

template <class T>
class GraphRopeTest : public ::testing::Test {};
template <class T>
class DualSpaceTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GraphRopeTest, Scalars);
TYPED_TEST_SUITE(DualSpaceTest, Scalars);

// ================================================================================================
// graph_rope: rotation
// ================================================================================================

// Library rotation vs explicit 2×2 rotations, both pair layouts, integer (cached), fractional,
// negative and beyond-the-table positions, non-default base and scaling factor.
TYPED_TEST(GraphRopeTest, RotateMatchesExplicitRotations) {
  using T = TypeParam;
  std::mt19937 gen(11);
  const double positions[] = {0.0, 1.0, 3.0, 7.0, 2.5, -4.0, -0.75, 15.0, 16.0, 1234.5, 1e5};
  for (const bool interleaved : {true, false}) {
    for (const std::size_t d : {2u, 4u, 6u, 16u, 34u, 64u}) {
      for (const double base : {10000.0, 500.0}) {
        for (const double scaling : {1.0, 2.0}) {
          ra::graph_rope_config cfg{
              .dim = d,
              .base = base,
              .scaling_factor = scaling,
              .pairing = interleaved ? ra::rope_pairing::interleaved : ra::rope_pairing::half,
              .max_position = 16};
          const ra::graph_rope<T> rope(cfg);
          const auto x = random_vector<T>(gen, d);
          const double norm = std::sqrt(orc::dot(to_d(x), to_d(x)));
          for (const double p : positions) {
            const auto got = rope.rotate(x, p);
            const auto ref = orc::rope_rotate(to_d(x), p, base, scaling, interleaved);
            for (std::size_t i = 0; i < d; ++i) {
              // cos/sin are rounded to T once (≤ ε/2 each), then a 2-term combination in T;
              // plus the conditioning of the angle itself, |p/s|·θ_i evaluated in double (θ_i
              // by pow here, by exp∘log in the oracle: a few ulp apart, times |p/s|).
              const double angle_err = 8.0 * std::abs(p / scaling) * 0x1.0p-53 * norm;
              EXPECT_NEAR(static_cast<double>(got[i]), ref[i], 4.0 * kEps<T> * norm + angle_err)
                  << "d=" << d << " p=" << p << " i=" << i << " interleaved=" << interleaved;
            }
          }
        }
      }
    }
  }
}

// Closed forms: d = 2 has θ_0 = 1, so R(p)(1, 0) = (cos p, sin p); d = 4, base 100 has
// θ_1 = 100^(−1/2) = 0.1. Position 0 is the identity, exactly.
TYPED_TEST(GraphRopeTest, ClosedFormsAndIdentity) {
  using T = TypeParam;
  const ra::graph_rope<T> r2(ra::graph_rope_config{.dim = 2});
  const std::vector<T> e0{T(1), T(0)};
  for (const double p : {0.5, 1.0, 2.0, 10.0, -3.0}) {
    const auto y = r2.rotate(e0, p);
    EXPECT_NEAR(static_cast<double>(y[0]), std::cos(p), kEps<T>);
    EXPECT_NEAR(static_cast<double>(y[1]), std::sin(p), kEps<T>);
  }
  const ra::graph_rope<T> r4(ra::graph_rope_config{.dim = 4, .base = 100.0});
  EXPECT_DOUBLE_EQ(r4.frequencies()[0], 1.0);
  EXPECT_NEAR(r4.frequencies()[1], 0.1, 1e-15);
  const std::vector<T> x{T(0), T(0), T(1), T(0)};
  const auto y = r4.rotate(x, 5.0);  // pair 1 rotated by 0.5
  EXPECT_EQ(y[0], T(0));
  EXPECT_EQ(y[1], T(0));
  EXPECT_NEAR(static_cast<double>(y[2]), std::cos(0.5), kEps<T>);
  EXPECT_NEAR(static_cast<double>(y[3]), std::sin(0.5), kEps<T>);
  // Half layout pairs (0, 2) and (1, 3): the same rotation acts on coordinates 1 and 3.
  const ra::graph_rope<T> h4(
      ra::graph_rope_config{.dim = 4, .base = 100.0, .pairing = ra::rope_pairing::half});
  const std::vector<T> xh{T(0), T(1), T(0), T(0)};
  const auto yh = h4.rotate(xh, 5.0);
  EXPECT_NEAR(static_cast<double>(yh[1]), std::cos(0.5), kEps<T>);
  EXPECT_NEAR(static_cast<double>(yh[3]), std::sin(0.5), kEps<T>);
  EXPECT_EQ(yh[0], T(0));
  EXPECT_EQ(yh[2], T(0));
  std::mt19937 gen(3);
  const auto z = random_vector<T>(gen, 64);
  const ra::graph_rope<T> r64(ra::graph_rope_config{.dim = 64});
  EXPECT_EQ(r64.rotate(z, 0.0), z);
}

// ‖R(p)x‖ = ‖x‖ for any p.
TYPED_TEST(GraphRopeTest, PreservesNorm) {
  using T = TypeParam;
  std::mt19937 gen(5);
  for (const auto pairing : {ra::rope_pairing::interleaved, ra::rope_pairing::half}) {
    const ra::graph_rope<T> rope(ra::graph_rope_config{.dim = 48, .pairing = pairing});
    std::uniform_real_distribution<double> pd(-1000.0, 1000.0);
    for (int t = 0; t < 50; ++t) {
      const auto x = random_vector<T>(gen, 48);
      const double p = t % 2 == 0 ? std::floor(pd(gen)) : pd(gen);
      const auto y = rope.rotate(x, p);
      const double nx = std::sqrt(orc::dot(to_d(x), to_d(x)));
      const double ny = std::sqrt(orc::dot(to_d(y), to_d(y)));
      EXPECT_NEAR(ny, nx, 8.0 * kEps<T> * nx) << "p=" << p;
    }
  }
}

// ⟨R(p)q, R(r)k⟩ = ⟨R(p + s)q, R(r + s)k⟩ = ⟨q, R(r − p)k⟩, library rotations vs the oracle's.
TYPED_TEST(GraphRopeTest, RelativePositionProperty) {
  using T = TypeParam;
  std::mt19937 gen(17);
  std::uniform_real_distribution<double> pd(-50.0, 50.0);
  for (const auto pairing : {ra::rope_pairing::interleaved, ra::rope_pairing::half}) {
    const bool interleaved = pairing == ra::rope_pairing::interleaved;
    const ra::graph_rope<T> rope(ra::graph_rope_config{.dim = 32, .pairing = pairing});
    for (int t = 0; t < 40; ++t) {
      const auto q = random_vector<T>(gen, 32);
      const auto k = random_vector<T>(gen, 32);
      // Integer positions half of the time (cached rows), reals otherwise.
      double p = pd(gen), r = pd(gen), s = pd(gen);
      if (t % 2 == 0) {
        p = std::round(std::abs(p));
        r = std::round(std::abs(r));
        s = std::round(std::abs(s));
      }
      const double bound = 16.0 * 32.0 * kEps<T> *
                           std::sqrt(orc::dot(to_d(q), to_d(q)) * orc::dot(to_d(k), to_d(k)));
      const double ref = orc::dot(orc::rope_rotate(to_d(q), p, 1e4, 1.0, interleaved),
                                  orc::rope_rotate(to_d(k), r, 1e4, 1.0, interleaved));
      const double ref_rel =
          orc::dot(to_d(q), orc::rope_rotate(to_d(k), r - p, 1e4, 1.0, interleaved));
      EXPECT_NEAR(ref, ref_rel, 1e-9) << "oracle relative property";
      const double a = orc::dot(to_d(rope.rotate(q, p)), to_d(rope.rotate(k, r)));
      const double b = orc::dot(to_d(rope.rotate(q, p + s)), to_d(rope.rotate(k, r + s)));
      const double c = orc::dot(to_d(q), to_d(rope.rotate(k, r - p)));
      EXPECT_NEAR(a, ref, bound);
      EXPECT_NEAR(b, ref, bound);
      EXPECT_NEAR(c, ref, bound);
    }
  }
}

// The cache only accelerates: cached and on-the-fly rows are bit-identical; in-place rotation
// equals out-of-place; rotate_rows is row-wise rotate.
TYPED_TEST(GraphRopeTest, CacheInPlaceAndRowsAgree) {
  using T = TypeParam;
  std::mt19937 gen(23);
  for (const auto pairing : {ra::rope_pairing::interleaved, ra::rope_pairing::half}) {
    const ra::graph_rope<T> cached(
        ra::graph_rope_config{.dim = 20, .pairing = pairing, .max_position = 32});
    const ra::graph_rope<T> plain(ra::graph_rope_config{
        .dim = 20, .pairing = pairing, .max_position = 32, .cache_table = false});
    const auto x = random_vector<T>(gen, 20);
    for (const double p : {0.0, 1.0, 5.0, 31.0, 32.0, 100.0}) {
      const auto a = cached.rotate(x, p);
      EXPECT_EQ(a, plain.rotate(x, p)) << "p=" << p;
      std::vector<T> y = x;
      cached.rotate(y, p, y);
      EXPECT_EQ(y, a) << "in place, p=" << p;
    }
    const auto m = random_matrix<T>(gen, 5, 20);
    const std::vector<double> pos{0.0, 3.0, -2.0, 40.0, 0.5};
    const auto rows = cached.rotate_rows(m, pos);
    for (std::size_t i = 0; i < 5; ++i) {
      const auto ri =
          cached.rotate(std::span<const T>(m.row(static_cast<Eigen::Index>(i)).data(), 20), pos[i]);
      for (std::size_t c = 0; c < 20; ++c)
        EXPECT_EQ(rows(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)), ri[c]);
    }
  }
}

// ================================================================================================
// graph_rope: bucketing and graph positions
// ================================================================================================

TEST(GraphRopeBucket, DocumentedValues) {
  const ra::graph_rope<float> rope(ra::graph_rope_config{.dim = 2});  // E = 8, M = 512
  for (std::size_t d = 0; d <= 8; ++d) EXPECT_EQ(rope.bucket(d), d);
  EXPECT_EQ(rope.bucket(9), 9u);
  EXPECT_EQ(rope.bucket(16), 9u);
  EXPECT_EQ(rope.bucket(17), 10u);
  EXPECT_EQ(rope.bucket(32), 10u);
  EXPECT_EQ(rope.bucket(33), 11u);
  EXPECT_EQ(rope.bucket(1024), 15u);
  EXPECT_EQ(rope.bucket(1025), 16u);
  if constexpr (sizeof(std::size_t) == 8) {
    EXPECT_EQ(rope.bucket(std::numeric_limits<std::size_t>::max()), 69u);
    EXPECT_EQ(rope.bucket(std::size_t{1} << 63), 68u);
  }
  // Clamp at M − 1.
  const ra::graph_rope<float> small(ra::graph_rope_config{.dim = 2, .max_position = 12});
  EXPECT_EQ(small.bucket(8), 8u);
  EXPECT_EQ(small.bucket(40), 11u);
  EXPECT_EQ(small.bucket(1000000), 11u);
  const ra::graph_rope<float> tiny(ra::graph_rope_config{.dim = 2, .max_position = 4});
  EXPECT_EQ(tiny.bucket(3), 3u);
  EXPECT_EQ(tiny.bucket(5), 3u);
  // E = 1: 0, 1, 2, 3, 3, 4, 4, 4, 4, 5, ...
  const ra::graph_rope<float> e1(ra::graph_rope_config{.dim = 2, .exact_distances = 1});
  const std::size_t expect[] = {0, 1, 2, 3, 3, 4, 4, 4, 4, 5};
  for (std::size_t d = 0; d < 10; ++d) EXPECT_EQ(e1.bucket(d), expect[d]) << d;
}

TEST(GraphRopeBucket, MonotoneContiguousAndMatchesOracle) {
  std::mt19937_64 gen(29);
  for (const std::size_t e : {1u, 2u, 3u, 8u, 10u}) {
    for (const std::size_t m : {1u, 5u, 20u, 512u}) {
      const ra::graph_rope<double> rope(
          ra::graph_rope_config{.dim = 2, .exact_distances = e, .max_position = m});
      std::size_t prev = rope.bucket(0);
      EXPECT_EQ(prev, 0u);
      for (std::size_t d = 1; d <= 5000; ++d) {
        const std::size_t b = rope.bucket(d);
        ASSERT_EQ(b, orc::bucket(d, e, m)) << "d=" << d << " E=" << e << " M=" << m;
        ASSERT_TRUE(b == prev || b == prev + 1) << "d=" << d;  // monotone, never skips
        ASSERT_LT(b, m);
        prev = b;
      }
      for (int t = 0; t < 200; ++t) {
        const std::size_t d = static_cast<std::size_t>(gen() >> (gen() % 64));
        EXPECT_EQ(rope.bucket(d), orc::bucket(d, e, m)) << "d=" << d;
      }
      const std::size_t top = std::numeric_limits<std::size_t>::max();
      EXPECT_EQ(rope.bucket(top), orc::bucket(top, e, m));
      EXPECT_GE(rope.bucket(top), rope.bucket(top - 1));
    }
  }
}

// Hop positions from csr_graph: path 0–1–2–3–…–11 (edges in mixed directions, the BFS is
// undirected) plus an isolated node 12.
TEST(GraphRopeGraph, PositionsFromRoot) {
  std::vector<ra::edge> edges;
  for (std::size_t i = 0; i + 1 < 12; ++i)
    edges.push_back(i % 2 == 0 ? ra::edge{i, i + 1} : ra::edge{i + 1, i});
  const auto g = ra::csr_graph::from_edges(13, edges);
  const ra::graph_rope<float> rope(ra::graph_rope_config{.dim = 4, .exact_distances = 4});
  const auto pos = rope.positions_from_root(g, 0);
  // hop distances 0..11 → buckets 0,1,2,3,4,5,5,5,5,6,6,6; isolated → bucket(SIZE_MAX).
  const double expect[] = {0, 1, 2, 3, 4, 5, 5, 5, 5, 6, 6, 6};
  ASSERT_EQ(pos.size(), 13u);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(pos[i], expect[i]) << i;
  EXPECT_EQ(pos[12],
            static_cast<double>(orc::bucket(std::numeric_limits<std::size_t>::max(), 4, 512)));
  const auto from5 = rope.positions_from_root(g, 5);
  EXPECT_EQ(from5[5], 0.0);
  EXPECT_EQ(from5[0], 5.0);
  EXPECT_EQ(from5[11], 5.0);  // 6 hops → bucket 5 (E = 4: (4, 8] → 5)
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>([&] { (void)rope.positions_from_root(g, 13); }),
                     "13");
}

// ================================================================================================
// graph_rope_attention
// ================================================================================================

TYPED_TEST(GraphRopeTest, AttentionMatchesOracle) {
  using T = TypeParam;
  std::mt19937 gen(31);
  std::uniform_real_distribution<double> pd(0.0, 40.0);
  int case_no = 0;
  for (const auto pairing : {ra::rope_pairing::interleaved, ra::rope_pairing::half}) {
    for (const std::size_t d : {2u, 8u, 18u, 64u}) {
      for (const std::size_t n : {1u, 3u, 17u, 40u}) {
        ++case_no;
        const std::size_t dv = 1 + (case_no % 7);
        const ra::graph_rope_config cfg{.dim = d, .pairing = pairing, .max_position = 24};
        const ra::graph_rope_attention<T> attn(cfg);
        const auto q = random_vector<T>(gen, d);
        const auto keys = random_matrix<T>(gen, n, d);
        const auto values = random_matrix<T>(gen, n, dv);
        std::vector<double> pk(n);
        for (std::size_t j = 0; j < n; ++j)
          pk[j] = (j % 3 == 0) ? pd(gen) : std::floor(pd(gen));  // cached and computed rows
        const double pq = case_no % 2 ? 3.0 : 7.25;
        std::vector<bool> mask(n);
        for (std::size_t j = 0; j < n; ++j) mask[j] = (j + case_no) % 3 != 0;
        if (n == 1) mask[0] = true;
        const bool interleaved = pairing == ra::rope_pairing::interleaved;
        const double scale = 1.0 / std::sqrt(static_cast<double>(d));
        const auto ref = orc::rope_attention(to_d(q), pq, rows_d(keys), pk, rows_d(values), scale,
                                             1e4, 1.0, interleaved);
        EXPECT_LT(max_err(attn.compute_at(pq, q, pk, keys, values), ref.out), kTol<T>)
            << "d=" << d << " n=" << n;
        const bool_buf mb(mask);
        const auto refm = orc::rope_attention(to_d(q), pq, rows_d(keys), pk, rows_d(values), scale,
                                              1e4, 1.0, interleaved, mask);
        const auto got = attn.compute_at_with_weights(pq, q, pk, keys, values, mb.span());
        EXPECT_LT(max_err(got.output, refm.out), kTol<T>);
        EXPECT_LT(max_err(got.weights, refm.weights), kTol<T>);
        for (std::size_t j = 0; j < n; ++j) {
          if (!mask[j]) {
            EXPECT_EQ(got.weights[j], T(0));
          }
        }
      }
    }
  }
}

// compute() is the seeds' sequence positions (query 0, key j at j); compute_with_mask keeps the
// positions of the visible keys (no renumbering after masking).
TYPED_TEST(GraphRopeTest, SequencePositionsAndMaskKeepsPositions) {
  using T = TypeParam;
  std::mt19937 gen(37);
  const std::size_t d = 16, n = 12;
  const ra::graph_rope_attention<T> attn(ra::graph_rope_config{.dim = d, .max_position = 8});
  const auto q = random_vector<T>(gen, d);
  const auto keys = random_matrix<T>(gen, n, d);
  const auto values = random_matrix<T>(gen, n, 3);
  std::vector<double> seq(n);
  for (std::size_t j = 0; j < n; ++j) seq[j] = static_cast<double>(j);
  const double scale = 0.25;
  const auto ref =
      orc::rope_attention(to_d(q), 0.0, rows_d(keys), seq, rows_d(values), scale, 1e4, 1.0, true);
  EXPECT_LT(max_err(attn.compute(q, keys, values), ref.out), kTol<T>);
  std::vector<bool> mask(n, true);
  mask[0] = mask[4] = false;
  const auto refm = orc::rope_attention(to_d(q), 0.0, rows_d(keys), seq, rows_d(values), scale, 1e4,
                                        1.0, true, mask);
  const bool_buf mb(mask);
  EXPECT_LT(max_err(attn.compute_with_mask(q, keys, values, mb.span()), refm.out), kTol<T>);
  // The seeds' renumbering (visible keys at 0..n'−1) gives a different answer.
  orc::mat kept_k, kept_v;
  const auto kd = rows_d(keys), vd = rows_d(values);
  for (std::size_t j = 0; j < n; ++j)
    if (mask[j]) {
      kept_k.push_back(kd[j]);
      kept_v.push_back(vd[j]);
    }
  std::vector<double> renum(kept_k.size());
  for (std::size_t j = 0; j < renum.size(); ++j) renum[j] = static_cast<double>(j);
  const auto seeds =
      orc::rope_attention(to_d(q), 0.0, kept_k, renum, kept_v, scale, 1e4, 1.0, true);
  EXPECT_GT(max_err(attn.compute_with_mask(q, keys, values, mb.span()), seeds.out), 1e-3);
  // Seeds-shaped adapter.
  std::vector<std::vector<T>> kv, vv;
  for (Eigen::Index j = 0; j < keys.rows(); ++j) {
    kv.emplace_back(keys.row(j).data(), keys.row(j).data() + d);
    vv.emplace_back(values.row(j).data(), values.row(j).data() + 3);
  }
  EXPECT_LT(max_err(attn.compute(q, kv, vv), ref.out), kTol<T>);
}

// A common shift of every position leaves the output unchanged (relative positions only).
TYPED_TEST(GraphRopeTest, AttentionShiftInvariant) {
  using T = TypeParam;
  std::mt19937 gen(41);
  const std::size_t d = 24, n = 9;
  const ra::graph_rope_attention<T> attn(ra::graph_rope_config{.dim = d});
  const auto q = random_vector<T>(gen, d);
  const auto keys = random_matrix<T>(gen, n, d);
  const auto values = random_matrix<T>(gen, n, 4);
  std::vector<double> pk{0, 1, 2, 3, 5, 8, 13, 21, 34};
  const auto base_out = to_d(attn.compute_at(2.0, q, pk, keys, values));
  for (const double s : {1.0, 17.0, 600.0, -9.5}) {
    std::vector<double> shifted(pk);
    for (auto& p : shifted) p += s;
    EXPECT_LT(max_err(attn.compute_at(2.0 + s, q, shifted, keys, values), base_out), kTol<T>)
        << "shift " << s;
  }
  // ...but moving one key does change it.
  std::vector<double> moved(pk);
  moved[3] += 1.0;
  EXPECT_GT(max_err(attn.compute_at(2.0, q, moved, keys, values), base_out), 1e-4);
}

// compute_from_root: positions are the bucketed hop distances from the root (hand-computed).
TYPED_TEST(GraphRopeTest, ComputeFromRootUsesHopBuckets) {
  using T = TypeParam;
  std::mt19937 gen(43);
  // Star 0 → {1, 2}, chain 2 → 3 → 4 → 5 → 6, isolated 7.
  const std::vector<ra::edge> edges{{0, 1}, {0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}};
  const auto g = ra::csr_graph::from_edges(8, edges);
  const std::size_t d = 8, n = 8;
  const ra::graph_rope_config cfg{.dim = d, .exact_distances = 2, .max_position = 64};
  const ra::graph_rope_attention<T> attn(cfg);
  const auto q = random_vector<T>(gen, d);
  const auto keys = random_matrix<T>(gen, n, d);
  const auto values = random_matrix<T>(gen, n, 2);
  // hops from 2: 0→1, 1→2, 2→0, 3→1, 4→2, 5→3, 6→4, 7→∞; E = 2: 3 → 3, 4 → 3, ∞ → 2 + 63 = 65
  // clamped to 63.
  const std::vector<double> pk{1, 2, 0, 1, 2, 3, 3, 63};
  const double scale = 1.0 / std::sqrt(8.0);
  const auto ref =
      orc::rope_attention(to_d(q), 0.0, rows_d(keys), pk, rows_d(values), scale, 1e4, 1.0, true);
  EXPECT_LT(max_err(attn.compute_from_root(g, 2, 2, q, keys, values), ref.out), kTol<T>);
  // Root 0, query node 4: hops 0, 1, 1, 2, 3, 4, 5, ∞ → buckets 0, 1, 1, 2, 3, 3, 4, 63.
  const std::vector<double> pk0{0, 1, 1, 2, 3, 3, 4, 63};
  const auto ref0 =
      orc::rope_attention(to_d(q), 3.0, rows_d(keys), pk0, rows_d(values), scale, 1e4, 1.0, true);
  EXPECT_LT(max_err(attn.compute_from_root(g, 0, 4, q, keys, values), ref0.out), kTol<T>);
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_argument>([&] { (void)attn.compute_from_root(g, 0, 8, q, keys, values); }),
      "query_node 8");
  const auto short_keys = random_matrix<T>(gen, 7, d);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>(
                         [&] { (void)attn.compute_from_root(g, 0, 0, q, short_keys, values); }),
                     "num_nodes");
}

// compute_batch (rotate once + sdpa) equals per-query compute_at.
TYPED_TEST(GraphRopeTest, BatchMatchesSingle) {
  using T = TypeParam;
  std::mt19937 gen(47);
  const std::size_t d = 32, n = 21, lq = 6, dv = 5;
  const ra::graph_rope_attention<T> attn(
      ra::graph_rope_config{.dim = d, .pairing = ra::rope_pairing::half}, 0.3);
  const auto qs = random_matrix<T>(gen, lq, d);
  const auto keys = random_matrix<T>(gen, n, d);
  const auto values = random_matrix<T>(gen, n, dv);
  std::vector<double> pq{0, 1, 2.5, 9, 30, 700};
  std::vector<double> pk(n);
  for (std::size_t j = 0; j < n; ++j) pk[j] = static_cast<double>((j * 7) % 13);
  std::vector<bool> mask(n, true);
  mask[3] = mask[10] = false;
  const bool_buf mb(mask);
  const auto batch = attn.compute_batch(qs, pq, keys, pk, values, mb.span());
  for (std::size_t i = 0; i < lq; ++i) {
    const auto row = static_cast<Eigen::Index>(i);
    const auto single = attn.compute_at(pq[i], std::span<const T>(qs.row(row).data(), d), pk, keys,
                                        values, mb.span());
    const auto ref =
        orc::rope_attention(orc::vec(qs.row(row).data(), qs.row(row).data() + d), pq[i],
                            rows_d(keys), pk, rows_d(values), 0.3, 1e4, 1.0, false, mask);
    std::vector<T> b(batch.row(row).data(), batch.row(row).data() + dv);
    EXPECT_LT(max_err(b, ref.out), kTol<T>);
    EXPECT_LT(max_err(single, ref.out), kTol<T>);
  }
  const ra::row_matrix<T> none(0, static_cast<Eigen::Index>(d));
  EXPECT_EQ(attn.compute_batch(none, std::vector<double>{}, keys, pk, values).rows(), 0);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] {
                       (void)attn.compute_batch(qs, std::vector<double>(2), keys, pk, values);
                     }),
                     "query_positions.size()");
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] {
                       (void)attn.compute_batch(qs, pq, keys, std::vector<double>(3), values);
                     }),
                     "key_positions.size()");
}

// n = 1: the only key gets weight 1 wherever it sits; all keys masked → zeros.
TYPED_TEST(GraphRopeTest, SingleKeyAndFullyMasked) {
  using T = TypeParam;
  std::mt19937 gen(53);
  const ra::graph_rope_attention<T> attn(ra::graph_rope_config{.dim = 6});
  const auto q = random_vector<T>(gen, 6);
  const auto k = random_matrix<T>(gen, 1, 6);
  const auto v = random_matrix<T>(gen, 1, 3);
  const std::vector<double> p{5.0};
  const auto r = attn.compute_at_with_weights(1.0, q, p, k, v);
  EXPECT_EQ(r.weights[0], T(1));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(r.output[static_cast<std::size_t>(c)], v(0, c));
  const auto k3 = random_matrix<T>(gen, 3, 6);
  const auto v3 = random_matrix<T>(gen, 3, 2);
  const bool none[3] = {false, false, false};
  const auto z = attn.compute_with_mask(q, k3, v3, std::span<const bool>(none, 3));
  EXPECT_EQ(z, std::vector<T>(2, T(0)));
}

TYPED_TEST(GraphRopeTest, Errors) {
  using T = TypeParam;
  using cfg = ra::graph_rope_config;
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 7}); }),
                     "even");
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 0}); }),
                     "even");
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 4, .base = 1.0}); }), "base");
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 4, .base = std::nan("")}); }),
      "base");
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 4, .scaling_factor = 0.0}); }),
      "scaling_factor");
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 4, .exact_distances = 0}); }),
      "exact_distances");
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::graph_rope<T> r(cfg{.dim = 4, .max_position = 0}); }),
      "max_position");
  EXPECT_MESSAGE_HAS(thrown<ra::input_too_large>([] {
                       ra::graph_rope<T> r(cfg{.dim = 1024, .max_position = std::size_t{1} << 20});
                     }),
                     "max_position");
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::graph_rope_attention<T> a(cfg{.dim = 4}, -1.0); }),
      "scale");

  const ra::graph_rope_attention<T> attn(cfg{.dim = 4});
  const ra::graph_rope<T>& rope = attn.rope();
  std::vector<T> x(4, T(1)), out(4), x3(3, T(1));
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { rope.rotate(x3, 1.0, out); }),
                     "x.size()");
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { rope.rotate(x, std::nan(""), out); }),
                     "position");
  ra::row_matrix<T> k = ra::row_matrix<T>::Ones(3, 4), v = ra::row_matrix<T>::Ones(3, 2);
  const std::vector<double> p{0, 1, 2}, p2{0, 1};
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { (void)rope.rotate_rows(k, p2); }),
                     "positions.size()");
  EXPECT_MESSAGE_HAS(
      thrown<ra::dimension_mismatch>([&] { (void)attn.compute_at(0.0, x, p2, k, v); }),
      "key_positions");
  EXPECT_MESSAGE_HAS(
      thrown<ra::dimension_mismatch>([&] { (void)attn.compute_at(0.0, x3, p, k, v); }), "query");
  const ra::row_matrix<T> k0(0, 4), v0(0, 2);
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>(
                         [&] { (void)attn.compute_at(0.0, x, std::vector<double>{}, k0, v0); }),
                     "keys");
  ra::row_matrix<T> v4 = ra::row_matrix<T>::Ones(4, 2);
  EXPECT_MESSAGE_HAS(
      thrown<ra::dimension_mismatch>([&] { (void)attn.compute_at(0.0, x, p, k, v4); }),
      "values.rows()");
  const std::vector<double> pnan{0, std::numeric_limits<double>::infinity(), 2};
  EXPECT_MESSAGE_HAS(
      thrown<ra::non_finite_input>([&] { (void)attn.compute_at(0.0, x, pnan, k, v); }),
      "key_positions[1]");
  EXPECT_MESSAGE_HAS(
      thrown<ra::non_finite_input>([&] { (void)attn.compute_at(std::nan(""), x, p, k, v); }),
      "query_position");
  ra::row_matrix<T> kbad = k;
  kbad(2, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.compute(x, kbad, v); }),
                     "keys[2][1]");
  ra::row_matrix<T> vbad = v;
  vbad(1, 0) = std::numeric_limits<T>::infinity();
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.compute(x, k, vbad); }),
                     "values[1][0]");
  std::vector<T> xbad(x);
  xbad[3] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.compute(xbad, k, v); }),
                     "query[3]");
  const bool m2[2] = {true, true};
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] {
                       (void)attn.compute_with_mask(x, k, v, std::span<const bool>(m2, 2));
                     }),
                     "key_mask");
}

// ================================================================================================
// dual_space_attention
// ================================================================================================

/// Oracle parameters mirroring a mechanism (its maps and weights are its parameters).
template <class T>
orc::dual_params params_of(const ra::dual_space_attention<T>& a) {
  orc::dual_params p;
  p.c = -static_cast<double>(a.curvature());
  p.r = static_cast<double>(a.ball().max_norm());
  p.w_e = a.euclidean_weight();
  p.w_h = a.hyperbolic_weight();
  p.tau = a.config().temperature;
  p.w_e_map = rows_d(a.weights().w_e);
  p.w_h_map = rows_d(a.weights().w_h);
  p.w_out = rows_d(a.weights().w_out);
  return p;
}

// Random configurations (curvature, weights, temperature, projections, output projection) and
// inputs that mix keys inside the ball with keys far outside it.
TYPED_TEST(DualSpaceTest, MatchesOracle) {
  using T = TypeParam;
  std::mt19937 gen(59);
  int case_no = 0;
  for (const double curvature : {-1.0, -0.5, -2.0}) {
    for (const bool learned : {false, true}) {
      for (const bool out_proj : {false, true}) {
        for (const std::size_t d : {1u, 7u, 16u, 33u}) {
          const std::size_t n = 1 + (case_no * 7) % 23;
          const std::size_t dv = out_proj ? 4 : 1 + case_no % 6;
          ++case_no;
          ra::dual_space_config cfg{.dim = d,
                                    .curvature = curvature,
                                    .euclidean_weight = 0.3 + 0.2 * (case_no % 4),
                                    .hyperbolic_weight = 1.5 - 0.25 * (case_no % 3),
                                    .temperature = case_no % 2 ? 1.0 : 0.7,
                                    .learned_projections = learned,
                                    .output_projection = out_proj,
                                    .value_dim = out_proj ? 4u : 0u,
                                    .seed = static_cast<std::uint64_t>(case_no)};
          const ra::dual_space_attention<T> attn(cfg);
          const double radius = 1.0 / std::sqrt(-curvature);
          // Inside: ‖x‖ ≈ 0.4 r (σ = 0.4 r/√d); outside: σ = 1 (‖x‖ ≈ √d ≫ r except d = 1).
          const double sigma_in = 0.4 * radius / std::sqrt(static_cast<double>(d));
          // d = 1 keeps everything inside: outside the ball every 1-D point projects onto ±r,
          // so projected queries and keys coincide and their distance is pure boundary
          // round-off (λ·ulp; see NearBoundary).
          auto keys = random_matrix<T>(gen, n, d, sigma_in);
          for (std::size_t j = 0; d > 1 && j < n; j += 2)
            keys.row(static_cast<Eigen::Index>(j)) = random_matrix<T>(gen, 1, d, 1.0).row(0);
          const auto values = random_matrix<T>(gen, n, dv);
          const auto p = params_of(attn);
          for (const double qs : {sigma_in, d > 1 ? 1.0 : sigma_in}) {
            const auto q = random_vector<T>(gen, d, qs);
            const auto ref = orc::dual_attention(to_d(q), rows_d(keys), rows_d(values), p);
            const auto got = attn.compute_with_weights(q, keys, values);
            EXPECT_LT(max_err(got.output, ref.out), kTol<T>)
                << "c=" << curvature << " learned=" << learned << " out=" << out_proj << " d=" << d
                << " n=" << n;
            EXPECT_LT(max_err(got.weights, ref.weights), kTol<T>);
            std::vector<bool> mask(n);
            for (std::size_t j = 0; j < n; ++j) mask[j] = (j * 5 + case_no) % 4 != 0;
            const bool_buf mb(mask);
            const auto refm = orc::dual_attention(to_d(q), rows_d(keys), rows_d(values), p, mask);
            EXPECT_LT(max_err(attn.compute_with_mask(q, keys, values, mb.span()), refm.out),
                      kTol<T>);
          }
        }
      }
    }
  }
}

// The unweighted terms against the oracle, including the identity s = (w_e·E − w_h·H)/τ.
TYPED_TEST(DualSpaceTest, SpaceTermsMatchOracle) {
  using T = TypeParam;
  std::mt19937 gen(61);
  for (const bool learned : {false, true}) {
    const ra::dual_space_attention<T> attn(ra::dual_space_config{
        .dim = 12, .curvature = -1.0, .hyperbolic_weight = 0.0, .learned_projections = learned});
    const auto q = random_vector<T>(gen, 12, 0.1);
    auto keys = random_matrix<T>(gen, 9, 12, 0.1);
    keys.row(4) *= T(50);  // outside the ball
    const auto terms = attn.space_terms(q, keys);
    const auto p = params_of(attn);
    for (std::size_t j = 0; j < 9; ++j) {
      const auto [e, h] =
          orc::dual_terms(to_d(q),
                          orc::vec(keys.row(static_cast<Eigen::Index>(j)).data(),
                                   keys.row(static_cast<Eigen::Index>(j)).data() + 12),
                          p);
      EXPECT_NEAR(static_cast<double>(terms.euclidean[j]), e, kTol<T> * std::max(1.0, std::abs(e)));
      EXPECT_NEAR(static_cast<double>(terms.hyperbolic[j]), h, kTol<T> * std::max(1.0, h));
    }
  }
}

// w_h = 0, w_e = 1, τ = 1 is scaled dot-product attention (the library's SDPA and the oracle).
TYPED_TEST(DualSpaceTest, ZeroHyperbolicWeightIsScaledDotProduct) {
  using T = TypeParam;
  std::mt19937 gen(67);
  const std::size_t d = 20, n = 30;
  const ra::dual_space_attention<T> attn(ra::dual_space_config{
      .dim = d, .curvature = -1.0, .euclidean_weight = 1.0, .hyperbolic_weight = 0.0});
  const ra::scaled_dot_product_attention<T> sdpa(d);
  const auto q = random_vector<T>(gen, d);
  const auto keys = random_matrix<T>(gen, n, d);  // far outside the ball: irrelevant here
  const auto values = random_matrix<T>(gen, n, 6);
  const auto got = attn.compute(q, keys, values);
  const auto ref = sdpa.compute(q, keys, values);
  for (std::size_t c = 0; c < 6; ++c)
    EXPECT_NEAR(static_cast<double>(got[c]), static_cast<double>(ref[c]), 4 * kEps<T>);
  orc::vec s(n);
  for (std::size_t j = 0; j < n; ++j)
    s[j] = orc::dot(to_d(q), orc::vec(keys.row(static_cast<Eigen::Index>(j)).data(),
                                      keys.row(static_cast<Eigen::Index>(j)).data() + d)) /
           std::sqrt(static_cast<double>(d));
  EXPECT_LT(max_err(got, orc::weighted_sum(orc::softmax(s, {}), rows_d(values))), kTol<T>);
}

// w_e = 0 gives softmax(−d_c/τ): the same weights as hyperbolic_attention's distance score for
// points inside the ball.
TYPED_TEST(DualSpaceTest, ZeroEuclideanWeightIsHyperbolicDistanceAttention) {
  using T = TypeParam;
  std::mt19937 gen(71);
  const std::size_t d = 10, n = 15;
  const ra::dual_space_attention<T> attn(ra::dual_space_config{.dim = d,
                                                               .curvature = -0.5,
                                                               .euclidean_weight = 0.0,
                                                               .hyperbolic_weight = 1.0,
                                                               .temperature = 0.5});
  const ra::hyperbolic_attention<T> hyp(
      ra::hyperbolic_attention_config{.dim = d, .curvature = -0.5, .temperature = 0.5});
  const auto q = random_vector<T>(gen, d, 0.3);
  const auto keys = random_matrix<T>(gen, n, d, 0.3);
  const auto values = random_matrix<T>(gen, n, d);
  const auto w = attn.compute_with_weights(q, keys, values).weights;
  const auto wh = hyp.compute_weights(q, keys);
  for (std::size_t j = 0; j < n; ++j)
    EXPECT_NEAR(static_cast<double>(w[j]), static_cast<double>(wh[j]), 10 * kEps<T>);
}

// Masks: hidden keys get weight 0, all hidden → zeros (also through W_out); n = 1 → v_0.
TYPED_TEST(DualSpaceTest, MasksAndSingleKey) {
  using T = TypeParam;
  std::mt19937 gen(73);
  for (const bool out_proj : {false, true}) {
    const ra::dual_space_attention<T> attn(
        ra::dual_space_config{.dim = 8, .output_projection = out_proj, .value_dim = 3});
    const auto q = random_vector<T>(gen, 8, 0.2);
    const auto keys = random_matrix<T>(gen, 5, 8, 0.2);
    const auto values = random_matrix<T>(gen, 5, 3);
    const bool none[5] = {false, false, false, false, false};
    const auto r = attn.compute_with_weights(q, keys, values, std::span<const bool>(none, 5));
    EXPECT_EQ(r.output, std::vector<T>(3, T(0)));
    EXPECT_EQ(r.weights, std::vector<T>(5, T(0)));
    EXPECT_EQ(r.lse, -std::numeric_limits<T>::infinity());
    const bool one[5] = {false, false, true, false, false};
    const auto r1 = attn.compute_with_weights(q, keys, values, std::span<const bool>(one, 5));
    EXPECT_EQ(r1.weights[2], T(1));
    orc::vec v2(values.row(2).data(), values.row(2).data() + 3);
    const auto expect = out_proj ? orc::matvec(rows_d(attn.weights().w_out), v2) : v2;
    EXPECT_LT(max_err(r1.output, expect), kTol<T>);
    const auto k1 = random_matrix<T>(gen, 1, 8, 0.2);
    const auto v1 = random_matrix<T>(gen, 1, 3);
    const auto o1 = attn.compute(q, k1, v1);
    const orc::vec v1d(v1.data(), v1.data() + 3);
    EXPECT_LT(max_err(o1, out_proj ? orc::matvec(rows_d(attn.weights().w_out), v1d) : v1d),
              kTol<T>);
    // Seeds-shaped adapter with a std::vector<bool> mask.
    std::vector<std::vector<T>> kv, vv;
    for (Eigen::Index j = 0; j < 5; ++j) {
      kv.emplace_back(keys.row(j).data(), keys.row(j).data() + 8);
      vv.emplace_back(values.row(j).data(), values.row(j).data() + 3);
    }
    const std::vector<bool> mv{false, false, true, false, false};
    EXPECT_EQ(attn.compute_with_mask(std::vector<T>(q), kv, vv, mv), r1.output);
  }
}

// Points at and near the boundary: finite scores, agreement with the oracle (float resolves
// distances near radius r only to ~λ·ulp; 0.99r keeps λ ≈ 100, i.e. ~1e-5 in the distance).
TYPED_TEST(DualSpaceTest, NearBoundary) {
  using T = TypeParam;
  std::mt19937 gen(79);
  const std::size_t d = 6, n = 8;
  const ra::dual_space_attention<T> attn(ra::dual_space_config{.dim = d, .curvature = -1.0});
  auto keys = random_matrix<T>(gen, n, d);
  for (Eigen::Index j = 0; j < keys.rows(); ++j) {
    const double target = j % 2 == 0 ? 0.99 : 1.0;  // inside, or projected onto radius r
    keys.row(j) *= static_cast<T>(target / static_cast<double>(keys.row(j).norm()));
  }
  const auto values = random_matrix<T>(gen, n, 2);
  const auto q = random_vector<T>(gen, d, 5.0);  // outside: projected
  const auto got = attn.compute_with_weights(q, keys, values);
  const auto ref = orc::dual_attention(to_d(q), rows_d(keys), rows_d(values), params_of(attn));
  const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-9;
  EXPECT_LT(max_err(got.output, ref.out), tol);
  EXPECT_LT(max_err(got.weights, ref.weights), tol);
}

// compute_batch (keys projected once, queries in parallel) equals per-query compute.
TYPED_TEST(DualSpaceTest, BatchMatchesSingle) {
  using T = TypeParam;
  std::mt19937 gen(83);
  const ra::dual_space_attention<T> attn(ra::dual_space_config{
      .dim = 16, .learned_projections = true, .output_projection = true, .value_dim = 5});
  const auto qs = random_matrix<T>(gen, 7, 16, 0.5);
  const auto keys = random_matrix<T>(gen, 13, 16, 0.5);
  const auto values = random_matrix<T>(gen, 13, 5);
  std::vector<bool> mask(13, true);
  mask[0] = mask[12] = false;
  const bool_buf mb(mask);
  const auto batch = attn.compute_batch(qs, keys, values, mb.span());
  const auto p = params_of(attn);
  for (Eigen::Index i = 0; i < 7; ++i) {
    const std::span<const T> q(qs.row(i).data(), 16);
    const auto single = attn.compute_with_mask(q, keys, values, mb.span());
    const auto ref = orc::dual_attention(to_d(q), rows_d(keys), rows_d(values), p, mask);
    EXPECT_LT(max_err(single, ref.out), kTol<T>);
    for (std::size_t c = 0; c < 5; ++c)
      EXPECT_NEAR(static_cast<double>(batch(i, static_cast<Eigen::Index>(c))),
                  static_cast<double>(single[c]), 8 * kEps<T>);
  }
  EXPECT_EQ(attn.compute_batch(ra::row_matrix<T>(0, 16), keys, values).rows(), 0);
}

// Seeded Xavier initialisation: reproducible, seed-dependent, within ±√(6/(2d)); set_weights and
// set_space_weights take effect.
TYPED_TEST(DualSpaceTest, WeightsInitAndSetters) {
  using T = TypeParam;
  const ra::dual_space_config cfg{.dim = 9, .learned_projections = true, .seed = 5};
  ra::dual_space_attention<T> a(cfg), b(cfg);
  ra::dual_space_config cfg2 = cfg;
  cfg2.seed = 6;
  const ra::dual_space_attention<T> c(cfg2);
  EXPECT_EQ(a.weights().w_e, b.weights().w_e);
  EXPECT_EQ(a.weights().w_h, b.weights().w_h);
  EXPECT_NE(a.weights().w_e, c.weights().w_e);
  EXPECT_NE(a.weights().w_e, a.weights().w_h);
  EXPECT_EQ(a.weights().w_out.size(), 0);
  const double bound = std::sqrt(6.0 / 18.0);
  EXPECT_LE(static_cast<double>(a.weights().w_e.cwiseAbs().maxCoeff()), bound);
  EXPECT_GT(static_cast<double>(a.weights().w_e.cwiseAbs().maxCoeff()), 0.5 * bound);
  const ra::dual_space_attention<T> plain(ra::dual_space_config{.dim = 9});
  EXPECT_EQ(plain.weights().w_e.size(), 0);

  std::mt19937 gen(89);
  const auto q = random_vector<T>(gen, 9, 0.3);
  const auto keys = random_matrix<T>(gen, 6, 9, 0.3);
  const auto values = random_matrix<T>(gen, 6, 2);
  ra::dual_space_weights<T> w;
  w.w_e = random_matrix<T>(gen, 9, 9, 0.3);
  w.w_h = random_matrix<T>(gen, 9, 9, 0.3);
  a.set_weights(w);
  a.set_space_weights(-0.25, 2.0);
  const auto p = params_of(a);
  EXPECT_EQ(p.w_e, -0.25);
  EXPECT_EQ(p.w_h, 2.0);
  const auto ref = orc::dual_attention(to_d(q), rows_d(keys), rows_d(values), p);
  EXPECT_LT(max_err(a.compute(q, keys, values), ref.out), kTol<T>);
  EXPECT_GT(max_err(b.compute(q, keys, values), ref.out), 1e-4);

  ra::dual_space_weights<T> bad = w;
  bad.w_h = random_matrix<T>(gen, 9, 8);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { a.set_weights(bad); }), "w_h.cols()");
  bad = w;
  bad.w_out = random_matrix<T>(gen, 2, 2);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { a.set_weights(bad); }), "w_out");
  bad = w;
  bad.w_e(3, 4) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { a.set_weights(bad); }), "w_e[3][4]");
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>([&] { a.set_space_weights(std::nan(""), 1.0); }),
                     "finite");
}

TYPED_TEST(DualSpaceTest, Errors) {
  using T = TypeParam;
  using cfg = ra::dual_space_config;
  EXPECT_MESSAGE_HAS(
      thrown<ra::invalid_config>([] { ra::dual_space_attention<T> a(cfg{.dim = 0}); }), "dim");
  for (const double c : {0.0, 1.0, std::nan(""), -std::numeric_limits<double>::infinity()}) {
    EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>(
                           [&] { ra::dual_space_attention<T> a(cfg{.dim = 4, .curvature = c}); }),
                       "curvature");
  }
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>(
                         [] { ra::dual_space_attention<T> a(cfg{.dim = 4, .temperature = 0.0}); }),
                     "temperature");
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_config>([] {
                       ra::dual_space_attention<T> a(cfg{
                           .dim = 4, .euclidean_weight = std::numeric_limits<double>::infinity()});
                     }),
                     "weight");

  const ra::dual_space_attention<T> attn(cfg{.dim = 4});
  const ra::dual_space_attention<T> projected(cfg{.dim = 4, .output_projection = true});
  std::vector<T> q(4, T(0.1)), q3(3, T(0.1));
  ra::row_matrix<T> k = ra::row_matrix<T>::Constant(3, 4, T(0.1));
  ra::row_matrix<T> v = ra::row_matrix<T>::Ones(3, 2);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { (void)attn.compute(q3, k, v); }),
                     "query.size()");
  ra::row_matrix<T> k5 = ra::row_matrix<T>::Ones(3, 5);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { (void)attn.compute(q, k5, v); }),
                     "keys.cols()");
  ra::row_matrix<T> v2 = ra::row_matrix<T>::Ones(2, 2);
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { (void)attn.compute(q, k, v2); }),
                     "values.rows()");
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] { (void)projected.compute(q, k, v); }),
                     "value_dim");
  const ra::row_matrix<T> k0(0, 4), v0(0, 2);
  EXPECT_MESSAGE_HAS(thrown<ra::invalid_argument>([&] { (void)attn.compute(q, k0, v0); }), "keys");
  const bool m2[2] = {true, true};
  EXPECT_MESSAGE_HAS(thrown<ra::dimension_mismatch>([&] {
                       (void)attn.compute_with_mask(q, k, v, std::span<const bool>(m2, 2));
                     }),
                     "key_mask");
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
    std::vector<T> qb(q);
    qb[2] = bad;
    EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.compute(qb, k, v); }),
                       "query[2]");
    ra::row_matrix<T> kb = k;
    kb(1, 3) = bad;
    EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.compute(q, kb, v); }),
                       "keys[1][3]");
    ra::row_matrix<T> vb = v;
    vb(2, 1) = bad;
    EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.compute(q, k, vb); }),
                       "values[2][1]");
    EXPECT_MESSAGE_HAS(thrown<ra::non_finite_input>([&] { (void)attn.space_terms(q, kb); }),
                       "keys[1][3]");
  }
}

}  // namespace
