// Component quantiser with bit-packed storage (curvature/component_quantizer.hpp), for float and
// double, against an independent oracle written below in double / long double from the documented
// rules (the "qoracle" namespace includes no library header):
//   L = 2^(b−1) − 1, s = (max|x|/L rounded up to float), c = clamp(round_half_away(x/s), ±L),
//   u = c + L in bits [j·b, (j+1)·b) of a little-endian stream of ⌈m·b/8⌉ bytes per component,
//   rows [E | H | S] with no padding, 16 slack bytes, one float scale per non-empty component.
// The oracle reads the packed bytes bit by bit, so the storage layout itself is checked.
//
// Tolerances (u = unit roundoff of T: 2^−24 float, 2^−53 double; the oracle's long double dot has
// error ≤ m·2^−64·Σ|q||k|, negligible against every tolerance below):
// - dequantize_row: bit-exact against fl_T(s·c) (one rounding of an exactly known product).
// - component dots vs the long-double dot on the dequantised key: 2·(m + 3)·u·Σ_j|q_j||x̂_j|, the
//   worst-case rounding of a length-m dot in T plus one rounding of each x̂_j (Higham §3.1).
// - vs the original key: the library's documented error_bound, which is also checked against the
//   oracle's own evaluation of the formula (relative 1e-6 plus one subnormal step: the bound is
//   evaluated in double and rounded once to T) and shown to be nearly attained (≥ 0.95 of it) for
//   q_j = sign(k̂_j − k_j).
#include "ruvector/attention/curvature/component_quantizer.hpp"

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
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

// ================================================================================================
// Independent oracle (std only).
// ================================================================================================
namespace qoracle {

struct component_spec {
  std::size_t size;
  unsigned bits;
};

inline int levels(unsigned bits) { return (1 << (bits - 1)) - 1; }

inline std::size_t stream_bytes(std::size_t m, unsigned bits) { return (m * bits + 7) / 8; }

/// The scale: max|x|/L in double, rounded up to the next float (0 for all-zero input).
inline double scale_of(const std::vector<double>& x, unsigned bits) {
  double amax = 0;
  for (double v : x) amax = std::max(amax, std::fabs(v));
  if (amax == 0) return 0.0;
  const double sd = amax / levels(bits);
  float sf = static_cast<float>(sd);
  if (static_cast<double>(sf) < sd)
    sf = std::nextafterf(sf, std::numeric_limits<float>::infinity());
  return static_cast<double>(sf);
}

/// Signed codes c_j for a component with scale s (round half away from zero, clamped).
inline std::vector<int> codes_of(const std::vector<double>& x, double s, unsigned bits) {
  const int l = levels(bits);
  std::vector<int> c(x.size(), 0);
  if (s == 0) return c;
  for (std::size_t j = 0; j < x.size(); ++j) {
    const double q = x[j] / s;
    double r = std::floor(std::fabs(q) + 0.5);  // half away from zero
    r = q < 0 ? -r : r;
    c[j] = static_cast<int>(std::min<double>(l, std::max<double>(-l, r)));
  }
  return c;
}

/// Bits [pos, pos + bits) of a little-endian bit stream, read one bit at a time.
inline unsigned read_bits(const std::uint8_t* bytes, std::size_t pos, unsigned bits) {
  unsigned v = 0;
  for (unsigned t = 0; t < bits; ++t) {
    const std::size_t k = pos + t;
    v |= static_cast<unsigned>((bytes[k / 8] >> (k % 8)) & 1u) << t;
  }
  return v;
}

inline long double dot(const std::vector<double>& a, const std::vector<double>& b) {
  long double acc = 0;
  for (std::size_t j = 0; j < a.size(); ++j)
    acc += static_cast<long double>(a[j]) * static_cast<long double>(b[j]);
  return acc;
}

inline std::vector<double> slice(const std::vector<double>& v, std::size_t off, std::size_t n) {
  return std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(off),
                             v.begin() + static_cast<std::ptrdiff_t>(off + n));
}

}  // namespace qoracle

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;
using ruvector_test::to_vec;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

template <class T>
constexpr double kU = std::numeric_limits<T>::epsilon() / 2;
// Smallest positive subnormal of T: the absolute error of an operation that underflows.
template <class T>
constexpr double kEta = std::numeric_limits<T>::denorm_min();

constexpr ra::component_kind kKinds[3] = {
    ra::component_kind::euclidean, ra::component_kind::hyperbolic, ra::component_kind::spherical};

template <class T>
class ComponentQuantizerTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ComponentQuantizerTest, Scalars);

std::size_t sz(const ra::component_dims& d, std::size_t k) {
  return k == 0 ? d.euclidean : (k == 1 ? d.hyperbolic : d.spherical);
}
unsigned bits_of(const ra::quantization_config& c, std::size_t k) {
  return k == 0 ? c.euclidean_bits : (k == 1 ? c.hyperbolic_bits : c.spherical_bits);
}
std::size_t off(const ra::component_dims& d, std::size_t k) {
  return k == 0 ? 0 : (k == 1 ? d.euclidean : d.euclidean + d.hyperbolic);
}
template <class T>
T pick(const ra::component_scores<T>& s, std::size_t k) {
  return k == 0 ? s.euclidean : (k == 1 ? s.hyperbolic : s.spherical);
}

// Storage size from the layout rules, counted independently.
std::size_t hand_count(const ra::component_dims& d, const ra::quantization_config& c,
                       std::size_t n) {
  std::size_t row = 0, scales = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    row += qoracle::stream_bytes(sz(d, k), bits_of(c, k));
    scales += sz(d, k) > 0 ? 1 : 0;
  }
  return n * row + 16 + n * scales * sizeof(float);
}

// Checks everything about one quantised key set against the oracle: scales, the packed bits
// (including zero padding), dequantised values, round-trip error, squared norms, component dots
// (single and all-keys) and error bounds for one random query.
template <class T>
void check_key_set(const orc::dmat& keys, const ra::component_dims& dims,
                   const ra::quantization_config& cfg, std::uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "dims " << dims.euclidean << "/" << dims.hyperbolic << "/" << dims.spherical
               << " bits " << cfg.euclidean_bits << "/" << cfg.hyperbolic_bits << "/"
               << cfg.spherical_bits << " n=" << keys.rows << " seed=" << seed);
  const std::size_t n = keys.rows, d = dims.total();
  const ra::component_quantizer<T> quantizer(dims, cfg);
  const auto K = to_eigen<T>(keys);
  const ra::packed_keys<T> pk = quantizer.quantize(K);
  ASSERT_EQ(pk.size(), n);
  EXPECT_EQ(pk.dims(), dims);
  EXPECT_EQ(pk.config(), cfg);
  EXPECT_EQ(pk.storage_bytes(), hand_count(dims, cfg, n));
  EXPECT_EQ(pk.float_bytes(), n * d * sizeof(float));

  const auto qd = orc::rounded<T>(orc::random_matrix(1, d, seed + 77)).a;
  const auto qv = to_vec<T>(qd);
  const std::span<const T> q(qv);
  std::vector<T> all[3] = {std::vector<T>(n), std::vector<T>(n), std::vector<T>(n)};
  pk.component_dots_all(q, all[0], all[1], all[2]);
  std::vector<T> norms_all[3] = {std::vector<T>(n), std::vector<T>(n), std::vector<T>(n)};
  pk.component_squared_norms_all(norms_all[0], norms_all[1], norms_all[2]);

  std::vector<T> deq(d);
  for (std::size_t i = 0; i < n; ++i) {
    const auto row = keys.row(i);
    const auto bytes = pk.packed_row(i);
    ASSERT_EQ(bytes.size(), pk.row_bytes());
    pk.dequantize_row(i, deq);
    const auto dots = pk.component_dots(q, i);
    const auto bound = pk.error_bound(q, i);
    const auto norms = pk.component_squared_norms(i);
    std::size_t byte_off = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      const std::size_t m = sz(dims, k), o = off(dims, k);
      const unsigned b = bits_of(cfg, k);
      const int l = qoracle::levels(b);
      const auto x = qoracle::slice(row, o, m);
      const double s = qoracle::scale_of(x, b);
      const auto c = qoracle::codes_of(x, s, b);
      EXPECT_EQ(static_cast<double>(pk.scale(i, kKinds[k])), s) << "row " << i << " comp " << k;
      // Packed bits: u = c + L in b bits each, padding bits zero.
      const std::size_t nb = qoracle::stream_bytes(m, b);
      EXPECT_EQ(pk.component_bytes(kKinds[k]), nb);
      const std::uint8_t* stream = bytes.data() + byte_off;
      for (std::size_t j = 0; j < m; ++j) {
        ASSERT_EQ(qoracle::read_bits(stream, j * b, b), static_cast<unsigned>(c[j] + l))
            << "row " << i << " comp " << k << " value " << j;
      }
      for (std::size_t p = m * b; p < nb * 8; ++p) EXPECT_EQ(qoracle::read_bits(stream, p, 1), 0u);
      byte_off += nb;
      // Dequantised values and round-trip error.
      std::vector<double> xhat(m);
      for (std::size_t j = 0; j < m; ++j) {
        const T expected = static_cast<T>(s) * static_cast<T>(c[j]);
        EXPECT_EQ(deq[o + j], expected) << "row " << i << " col " << o + j;
        xhat[j] = static_cast<double>(deq[o + j]);
        // |x̂ − x| ≤ s/2, plus the double-quotient rounding and the rounding of x̂ to T.
        EXPECT_LE(std::fabs(xhat[j] - x[j]),
                  s / 2 + s * (std::abs(c[j]) + 1) * 0x1p-52 + kU<T> * std::fabs(xhat[j]) + kEta<T>)
            << "row " << i << " col " << o + j;
      }
      // Squared norm s²·Σc².
      double csq = 0;
      for (int cj : c) csq += static_cast<double>(cj) * cj;
      const double norm_ref = s * s * csq;
      if (norm_ref > static_cast<double>(std::numeric_limits<T>::max())) {
        EXPECT_EQ(pick(norms, k), std::numeric_limits<T>::infinity());  // ‖k̂‖² overflows T
      } else {
        EXPECT_NEAR(static_cast<double>(pick(norms, k)), norm_ref, 2 * kU<T> * norm_ref + kEta<T>);
      }
      EXPECT_EQ(pick(norms, k), norms_all[k][i]);
      // Dots: vs the dequantised key (tight) and vs the original key (within the bound).
      const auto qk = qoracle::slice(qd, o, m);
      double abs_qx = 0, l1 = 0, weighted = 0;
      for (std::size_t j = 0; j < m; ++j) {
        abs_qx += std::fabs(qk[j] * xhat[j]);
        l1 += std::fabs(qk[j]);
        weighted += std::fabs(qk[j]) * (std::abs(c[j]) + 1);
      }
      const double got = static_cast<double>(pick(dots, k));
      EXPECT_EQ(pick(dots, k), all[k][i]) << "component_dots_all vs component_dots";
      const auto on_deq = static_cast<double>(qoracle::dot(qk, xhat));
      EXPECT_LE(std::fabs(got - on_deq), 2.0 * (m + 3) * (kU<T> * abs_qx + kEta<T>))
          << "row " << i << " comp " << k;
      const auto on_orig = static_cast<double>(qoracle::dot(qk, x));
      EXPECT_LE(std::fabs(got - on_orig), static_cast<double>(pick(bound, k)))
          << "row " << i << " comp " << k;
      const double bound_ref =
          s == 0 ? 0.0 : 0.5 * s * l1 + 2.0 * (m + 2.0) * (kU<T> * s * weighted + 0.5 * kEta<T>);
      EXPECT_NEAR(static_cast<double>(pick(bound, k)), bound_ref, 1e-6 * bound_ref + kEta<T>);
      if (m == 0 || s == 0) {
        EXPECT_EQ(got, 0.0);
        EXPECT_EQ(static_cast<double>(pick(bound, k)), 0.0);
      }
    }
  }
}

// ================================================================================================
// Tests
// ================================================================================================

TYPED_TEST(ComponentQuantizerTest, MatchesOracleOnSelectedShapesAndEveryBitWidth) {
  using T = TypeParam;
  // Odd sizes (1, 3, 13), components of size 0, sizes around the 8-code groups, and one
  // component longer than the 512-code decode chunk.
  const ra::component_dims shapes[] = {{5, 3, 13}, {0, 8, 0}, {1, 1, 1},   {13, 0, 3},
                                       {16, 7, 0}, {0, 0, 9}, {37, 1, 0},  {64, 48, 16},
                                       {0, 13, 1}, {3, 0, 0}, {9, 15, 17}, {1030, 2, 521}};
  std::uint64_t seed = 1;
  for (const auto& dims : shapes) {
    for (unsigned b = 2; b <= 8; ++b) {
      const ra::quantization_config cfg{b, 2 + (b + 2) % 7, 2 + (b + 4) % 7};
      const std::size_t n = dims.total() > 1000 ? 2 : 1 + seed % 5;
      const auto keys = orc::rounded<T>(orc::random_matrix(n, dims.total(), seed, 1.5));
      check_key_set<T>(keys, dims, cfg, seed);
      ++seed;
    }
  }
}

TYPED_TEST(ComponentQuantizerTest, MatchesOracleOnRandomShapes) {
  using T = TypeParam;
  std::mt19937_64 gen(20240611);
  std::uniform_int_distribution<std::size_t> size_dist(0, 40), n_dist(1, 12);
  std::uniform_int_distribution<unsigned> bits_dist(2, 8);
  std::uniform_real_distribution<double> log_scale(-6, 6);
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    ra::component_dims dims{size_dist(gen), size_dist(gen), size_dist(gen)};
    if (dims.total() == 0) dims.hyperbolic = 1;
    const ra::quantization_config cfg{bits_dist(gen), bits_dist(gen), bits_dist(gen)};
    const double stddev = std::pow(10.0, log_scale(gen));
    const auto keys = orc::rounded<T>(
        orc::random_matrix(n_dist(gen), dims.total(), 500 + seed, stddev, 0.3 * stddev));
    check_key_set<T>(keys, dims, cfg, 500 + seed);
  }
}

TYPED_TEST(ComponentQuantizerTest, ExactStorageSize) {
  using T = TypeParam;
  // Eight 5-bit codes take exactly 5 bytes.
  {
    const ra::component_quantizer<T> qz({0, 8, 0}, {8, 5, 5});
    const auto pk = qz.quantize(to_eigen<T>(orc::random_matrix(3, 8, 3)));
    EXPECT_EQ(pk.row_bytes(), 5u);
    EXPECT_EQ(pk.component_bytes(ra::component_kind::hyperbolic), 5u);
    EXPECT_EQ(pk.component_bytes(ra::component_kind::euclidean), 0u);
    EXPECT_EQ(pk.storage_bytes(), 3u * 5u + 16u + 3u * 4u);  // codes + slack + one scale per key
  }
  // A 5-bit component of h values takes ⌈5h/8⌉ bytes; every combination against the hand count.
  for (std::size_t h = 1; h <= 40; ++h) {
    const ra::component_quantizer<T> qz({2, h, 0}, {3, 5, 7});
    const auto pk = qz.quantize(to_eigen<T>(orc::random_matrix(4, h + 2, h)));
    EXPECT_EQ(pk.component_bytes(ra::component_kind::hyperbolic), (5 * h + 7) / 8) << h;
    EXPECT_EQ(pk.row_bytes(), 1 + (5 * h + 7) / 8) << h;
    EXPECT_EQ(pk.storage_bytes(), 4 * (1 + (5 * h + 7) / 8) + 16 + 4 * 2 * 4) << h;
  }
}

TYPED_TEST(ComponentQuantizerTest, CompressionRatioOf256_192_64At8_5_5) {
  using T = TypeParam;
  const ra::component_dims dims{256, 192, 64};
  const ra::component_quantizer<T> qz(dims);  // default config 8/5/5
  const std::size_t n = 1000;
  const auto pk = qz.quantize(to_eigen<T>(orc::random_matrix(n, 512, 42)));
  // Hand count: 256 bytes + 192·5/8 = 120 + 64·5/8 = 40 → 416 code bytes, 3 float scales.
  EXPECT_EQ(pk.row_bytes(), 416u);
  EXPECT_EQ(pk.storage_bytes(), n * (416 + 12) + 16);
  EXPECT_EQ(pk.float_bytes(), n * 512 * 4);
  const double expected = (1000.0 * 2048.0) / (1000.0 * 428.0 + 16.0);  // 4.7849...
  EXPECT_DOUBLE_EQ(pk.compression_ratio(), expected);
  EXPECT_NEAR(pk.compression_ratio(), 4.785, 0.001);
}

// Keys whose every non-maximal value lies 0.49·s from a code: |k̂_j − k_j| = 0.49·s, so with
// q_j = sign(k̂_j − k_j) the error is 0.49·s·‖q‖₁ ≈ 0.98 of the bound (the bound is not vacuous).
TYPED_TEST(ComponentQuantizerTest, ErrorBoundIsNearlyAttained) {
  using T = TypeParam;
  const ra::component_dims dims{24, 17, 9};
  for (unsigned b = 2; b <= 8; ++b) {
    SCOPED_TRACE(b);
    const ra::quantization_config cfg{b, b, b};
    const int l = qoracle::levels(b);
    const double s0 = 0.125;  // a power of two: s = (L·s0)/L = s0 exactly
    std::mt19937_64 gen(b);
    std::uniform_int_distribution<int> code(-l, l);
    orc::dmat keys(3, dims.total());
    for (std::size_t i = 0; i < keys.rows; ++i) {
      for (std::size_t k = 0; k < 3; ++k) {
        for (std::size_t j = 0; j < sz(dims, k); ++j) {
          // 0.49·s0 off code c, on the side that stays inside [−L·s0, L·s0].
          const int c = code(gen);
          const double frac = c == l ? -0.49 : (c == -l ? 0.49 : (j % 2 == 0 ? 0.49 : -0.49));
          keys(i, off(dims, k) + j) = j == 0 ? l * s0 : (c + frac) * s0;
        }
      }
    }
    keys = orc::rounded<T>(keys);
    const ra::component_quantizer<T> qz(dims, cfg);
    const auto pk = qz.quantize(to_eigen<T>(keys));
    std::vector<T> deq(dims.total());
    for (std::size_t i = 0; i < keys.rows; ++i) {
      pk.dequantize_row(i, deq);
      std::vector<T> q(dims.total());
      for (std::size_t c = 0; c < q.size(); ++c) {
        const double diff = static_cast<double>(deq[c]) - keys(i, c);
        q[c] = diff > 0 ? T(1) : (diff < 0 ? T(-1) : T(0));
      }
      const auto dots = pk.component_dots(q, i);
      const auto bound = pk.error_bound(q, i);
      const auto row = keys.row(i);
      for (std::size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(static_cast<double>(pk.scale(i, kKinds[k])), s0);
        const std::vector<double> qk(
            q.begin() + static_cast<std::ptrdiff_t>(off(dims, k)),
            q.begin() + static_cast<std::ptrdiff_t>(off(dims, k) + sz(dims, k)));
        const double exact =
            static_cast<double>(qoracle::dot(qk, qoracle::slice(row, off(dims, k), sz(dims, k))));
        const double err = std::fabs(static_cast<double>(pick(dots, k)) - exact);
        const double bnd = static_cast<double>(pick(bound, k));
        EXPECT_LE(err, bnd) << k;
        EXPECT_GE(err, 0.95 * bnd) << k;
      }
    }
  }
}

TYPED_TEST(ComponentQuantizerTest, AllZeroComponentsDecodeToExactZero) {
  using T = TypeParam;
  const ra::component_dims dims{5, 9, 3};
  orc::dmat keys = orc::rounded<T>(orc::random_matrix(3, dims.total(), 9));
  for (std::size_t c = 0; c < 5; ++c) keys(0, c) = 0.0;          // key 0: zero euclidean part
  for (std::size_t c = 5; c < 14; ++c) keys(1, c) = 0.0;         // key 1: zero hyperbolic part
  for (std::size_t c = 0; c < keys.cols; ++c) keys(2, c) = 0.0;  // key 2: all zero
  const ra::component_quantizer<T> qz(dims, {6, 3, 2});
  const auto pk = qz.quantize(to_eigen<T>(keys));
  const auto qv = to_vec<T>(orc::random_vector(dims.total(), 5));
  std::vector<T> deq(dims.total());
  const std::pair<std::size_t, std::size_t> zero_parts[] = {{0, 0}, {1, 1}, {2, 0}, {2, 1}, {2, 2}};
  for (const auto& [i, k] : zero_parts) {
    SCOPED_TRACE(::testing::Message() << "key " << i << " comp " << k);
    EXPECT_EQ(pk.scale(i, kKinds[k]), 0.0f);
    pk.dequantize_row(i, deq);
    for (std::size_t j = 0; j < sz(dims, k); ++j) EXPECT_EQ(deq[off(dims, k) + j], T(0));
    EXPECT_EQ(pick(pk.component_dots(qv, i), k), T(0));
    EXPECT_EQ(pick(pk.error_bound(qv, i), k), T(0));
    EXPECT_EQ(pick(pk.component_squared_norms(i), k), T(0));
  }
  check_key_set<T>(keys, dims, {6, 3, 2}, 5);
}

TYPED_TEST(ComponentQuantizerTest, ConstantKeys) {
  using T = TypeParam;
  const ra::component_dims dims{7, 11, 4};
  for (const double v : {1.0, -3.25, 1e-3, 7e5}) {
    orc::dmat keys(2, dims.total(), v);
    for (std::size_t c = 0; c < dims.total(); ++c) keys(1, c) = -v;
    keys = orc::rounded<T>(keys);
    for (unsigned b = 2; b <= 8; ++b) {
      const ra::quantization_config cfg{b, b, b};
      const ra::component_quantizer<T> qz(dims, cfg);
      const auto pk = qz.quantize(to_eigen<T>(keys));
      std::vector<T> deq(dims.total());
      for (std::size_t i = 0; i < 2; ++i) {
        pk.dequantize_row(i, deq);
        // s ≥ |v|/L, and |v|/s ∈ (L − 1/2, L], so every code is ±L and x̂ = ±s·L.
        for (std::size_t c = 0; c < dims.total(); ++c) {
          const double s = static_cast<double>(pk.scale(i, ra::component_kind::hyperbolic));
          EXPECT_EQ(deq[c], static_cast<T>(static_cast<T>(s) *
                                           static_cast<T>(keys(i, c) > 0 ? qoracle::levels(b)
                                                                         : -qoracle::levels(b))));
          EXPECT_LE(std::fabs(static_cast<double>(deq[c]) - keys(i, c)),
                    std::fabs(keys(i, c)) * 4 * kU<float>);
        }
      }
      check_key_set<T>(keys, dims, cfg, b);
    }
  }
}

// Ties x/s = k + 1/2 round away from zero (the documented convention): with 3 bits (L = 3) and
// max|x| = 3 the scale is exactly 1, so 0.5 → 1, 1.5 → 2, 2.5 → 3, −0.5 → −1, −2.5 → −3
// (round-half-to-even would give 0, 2, 2, 0, −2).
TYPED_TEST(ComponentQuantizerTest, TiesRoundHalfAwayFromZero) {
  using T = TypeParam;
  const ra::component_dims dims{0, 7, 0};
  orc::dmat keys(1, 7);
  const double xs[7] = {3.0, 0.5, 1.5, 2.5, -0.5, -2.5, -1.5};
  const int expected[7] = {3, 1, 2, 3, -1, -3, -2};
  for (std::size_t c = 0; c < 7; ++c) keys(0, c) = xs[c];
  const ra::component_quantizer<T> qz(dims, {8, 3, 8});
  const auto pk = qz.quantize(to_eigen<T>(keys));
  EXPECT_EQ(pk.scale(0, ra::component_kind::hyperbolic), 1.0f);
  std::vector<T> deq(7);
  pk.dequantize_row(0, deq);
  const auto bytes = pk.packed_row(0);
  for (std::size_t c = 0; c < 7; ++c) {
    EXPECT_EQ(deq[c], T(expected[c])) << c;
    EXPECT_EQ(qoracle::read_bits(bytes.data(), 3 * c, 3), static_cast<unsigned>(expected[c] + 3));
  }
  check_key_set<T>(keys, dims, {8, 3, 8}, 1);
}

TYPED_TEST(ComponentQuantizerTest, HugeAndTinyMagnitudes) {
  using T = TypeParam;
  const ra::component_dims dims{6, 5, 3};
  // Float keys of 1e37 keep the dots (≈ 6·1e37·|q|) inside float's range; double keys of
  // 1e38 keep max|x|/L ≤ FLT_MAX for b = 2.
  const double big = std::is_same_v<T, float> ? 1.0e37 : 1.0e38;
  for (const double mag : {big, 1e30, 1e-30, 1e-38}) {
    const auto keys = orc::rounded<T>(orc::random_matrix(3, dims.total(), 11, mag / 4));
    for (unsigned b : {2u, 5u, 8u}) check_key_set<T>(keys, dims, {b, b, b}, 11);
  }
  // Largest float magnitudes: ±FLT_MAX with 2 bits (L = 1) gives s = FLT_MAX and exact decoding.
  {
    orc::dmat keys(1, dims.total(), 0.0);
    keys(0, 0) = std::numeric_limits<float>::max();
    keys(0, 1) = -std::numeric_limits<float>::max();
    const ra::component_quantizer<T> qz(dims, {2, 2, 2});
    const auto pk = qz.quantize(to_eigen<T>(keys));
    EXPECT_EQ(pk.scale(0, ra::component_kind::euclidean), std::numeric_limits<float>::max());
    std::vector<T> deq(dims.total());
    pk.dequantize_row(0, deq);
    EXPECT_EQ(deq[0], T(std::numeric_limits<float>::max()));
    EXPECT_EQ(deq[1], -T(std::numeric_limits<float>::max()));
  }
  if constexpr (std::is_same_v<T, double>) {
    // A scale beyond FLT_MAX cannot be stored: input_too_large naming the row and component.
    orc::dmat keys(2, dims.total(), 1.0);
    keys(1, 8) = 1e300;
    const ra::component_quantizer<T> qz(dims);
    const auto msg =
        thrown_message<ra::input_too_large>([&] { (void)qz.quantize(to_eigen<T>(keys)); });
    EXPECT_MESSAGE_HAS(msg, "keys[1]");
    EXPECT_MESSAGE_HAS(msg, "hyperbolic");
    // Subnormal doubles: the scale becomes the smallest float subnormal; codes are 0.
    orc::dmat tiny(1, dims.total(), 1e-310);
    check_key_set<T>(tiny, dims, {8, 5, 5}, 3);
  }
}

TYPED_TEST(ComponentQuantizerTest, EmptyKeySetAndStridedView) {
  using T = TypeParam;
  const ra::component_dims dims{4, 3, 2};
  const ra::component_quantizer<T> qz(dims);
  const ra::row_matrix<T> none(0, 9);
  const auto pk = qz.quantize(none);
  EXPECT_EQ(pk.size(), 0u);
  EXPECT_EQ(pk.storage_bytes(), 16u);
  const std::vector<T> q(9, T(1));
  pk.component_dots_all(q, {}, {}, {});
  EXPECT_THROW((void)pk.component_dots(q, 0), ra::invalid_argument);

  // A column block of a wider matrix (outer stride 12 > 9 columns) quantises like a copy.
  const auto wide = orc::rounded<T>(orc::random_matrix(5, 12, 8));
  const auto W = to_eigen<T>(wide);
  const ra::matrix_cref<T> block = W.leftCols(9);
  const auto a = qz.quantize(block);
  const ra::row_matrix<T> copy = W.leftCols(9);
  const auto b = qz.quantize(copy);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto ra_ = a.packed_row(i), rb = b.packed_row(i);
    EXPECT_TRUE(std::equal(ra_.begin(), ra_.end(), rb.begin(), rb.end()));
    for (auto k : kKinds) EXPECT_EQ(a.scale(i, k), b.scale(i, k));
  }
  // Default-constructed set: empty, holds only the slack.
  const ra::packed_keys<T> empty;
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.storage_bytes(), 16u);
}

TYPED_TEST(ComponentQuantizerTest, ComponentDotsAllSkipsEmptyOutputs) {
  using T = TypeParam;
  const ra::component_dims dims{10, 6, 5};
  const auto keys = orc::rounded<T>(orc::random_matrix(7, dims.total(), 31));
  const ra::component_quantizer<T> qz(dims, {4, 6, 3});
  const auto pk = qz.quantize(to_eigen<T>(keys));
  const auto qv = to_vec<T>(orc::random_vector(dims.total(), 32));
  std::vector<T> h(7, T(-99));
  pk.component_dots_all(qv, {}, h, {});
  for (std::size_t i = 0; i < 7; ++i) EXPECT_EQ(h[i], pk.component_dots(qv, i).hyperbolic);
}

TYPED_TEST(ComponentQuantizerTest, InvalidConfigurations) {
  using T = TypeParam;
  for (unsigned bad : {0u, 1u, 9u, 16u}) {
    const auto m1 = thrown_message<ra::invalid_config>([&] {
      ra::component_quantizer<T>({4, 4, 4}, {bad, 5, 5});
    });
    EXPECT_MESSAGE_HAS(m1, "euclidean_bits is " + std::to_string(bad));
    EXPECT_MESSAGE_HAS(m1, "[2, 8]");
    const auto m2 = thrown_message<ra::invalid_config>([&] {
      ra::component_quantizer<T>({4, 4, 4}, {8, bad, 5});
    });
    EXPECT_MESSAGE_HAS(m2, "hyperbolic_bits");
    const auto m3 = thrown_message<ra::invalid_config>([&] {
      ra::component_quantizer<T>({4, 4, 4}, {8, 5, bad});
    });
    EXPECT_MESSAGE_HAS(m3, "spherical_bits");
  }
  EXPECT_THROW(ra::component_quantizer<T>({0, 0, 0}), ra::invalid_config);
  EXPECT_THROW(ra::component_quantizer<T>({ra::max_dimension, 1, 0}), ra::input_too_large);
  EXPECT_NO_THROW(ra::component_quantizer<T>({0, 0, 1}, {2, 8, 2}));
}

TYPED_TEST(ComponentQuantizerTest, ErrorsNameTheArgument) {
  using T = TypeParam;
  const ra::component_dims dims{3, 4, 2};
  const ra::component_quantizer<T> qz(dims);
  // Non-finite keys: named by row and column.
  for (const double bad :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    orc::dmat keys = orc::random_matrix(4, 9, 2);
    keys(2, 6) = bad;
    const auto msg =
        thrown_message<ra::non_finite_input>([&] { (void)qz.quantize(to_eigen<T>(keys)); });
    EXPECT_MESSAGE_HAS(msg, "keys[2][6]");
  }
  // Wrong key width.
  const auto m = thrown_message<ra::dimension_mismatch>(
      [&] { (void)qz.quantize(to_eigen<T>(orc::random_matrix(2, 8, 1))); });
  EXPECT_MESSAGE_HAS(m, "keys.cols() is 8, expected 9");

  const auto pk = qz.quantize(to_eigen<T>(orc::random_matrix(3, 9, 4)));
  const std::vector<T> q8(8, T(1)), q10(10, T(1));
  std::vector<T> q9(9, T(1));
  std::vector<T> out3(3), out2(2);
  // Mismatched query size in every entry point.
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)pk.component_dots(q8, 0); }),
      "query.size() is 8, expected 9");
  EXPECT_THROW((void)pk.component_dots(q10, 0), ra::dimension_mismatch);
  EXPECT_THROW((void)pk.error_bound(q8, 0), ra::dimension_mismatch);
  EXPECT_THROW(pk.component_dots_all(q10, out3, out3, out3), ra::dimension_mismatch);
  // Output sizes.
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { pk.component_dots_all(q9, out3, out2, out3); }),
      "h.size() is 2, expected 3");
  EXPECT_THROW(pk.component_squared_norms_all(out3, out3, out2), ra::dimension_mismatch);
  std::vector<T> deq8(8);
  EXPECT_THROW(pk.dequantize_row(0, deq8), ra::dimension_mismatch);
  // Key index out of range.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { (void)pk.component_dots(q9, 3); }),
                     "key index is 3, expected < 3");
  EXPECT_THROW((void)pk.scale(3, ra::component_kind::euclidean), ra::invalid_argument);
  EXPECT_THROW((void)pk.packed_row(5), ra::invalid_argument);
  EXPECT_THROW((void)pk.component_squared_norms(3), ra::invalid_argument);
  EXPECT_THROW((void)pk.error_bound(q9, 3), ra::invalid_argument);
  // Non-finite query.
  q9[7] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)pk.component_dots(q9, 0); }),
                     "query[7]");
  EXPECT_THROW(pk.component_dots_all(q9, out3, out3, out3), ra::non_finite_input);
  EXPECT_THROW((void)pk.error_bound(q9, 0), ra::non_finite_input);
}

// The SWAR spread (used without BMI2) and the dispatching spread (pdep with BMI2) both put field
// k of a word into byte k, for every width; checked against a bit-by-bit oracle.
TEST(ComponentQuantizerDetail, SpreadCodesMatchesBitOracle) {
  std::mt19937_64 gen(7);
  for (unsigned b = 1; b <= 8; ++b) {
    const auto plan = ra::detail::spread_plan::make(b);
    for (int trial = 0; trial < 200; ++trial) {
      const std::uint64_t w = gen();
      std::uint8_t bytes[8];
      for (int k = 0; k < 8; ++k) bytes[k] = static_cast<std::uint8_t>((w >> (8 * k)) & 0xFF);
      std::uint64_t expected = 0;
      for (unsigned k = 0; k < 8; ++k)
        expected |= static_cast<std::uint64_t>(qoracle::read_bits(bytes, k * b, b)) << (8 * k);
      ASSERT_EQ(ra::detail::spread_codes_swar(w, plan), expected) << "b=" << b;
      ASSERT_EQ(ra::detail::spread_codes(w, plan), expected) << "b=" << b;
    }
  }
}

}  // namespace
