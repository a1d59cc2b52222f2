// Token-routed mixture of experts (moe/expert.hpp, moe/router.hpp, moe/moe_attention.hpp) for
// float and double against hand-computed closed forms and an independent double-precision
// brute-force reference (namespace `ref` below: plain loops over std::vector<double>, no library
// code) of the router (logits, softmax, top-k with ties to the lower index, gates, capacity with
// slot-major admission, Switch balance loss, z-loss) and of the experts (two-layer feed-forward
// with exact GELU/ReLU; attention experts through support/oracle.hpp's reference_attention).
//
// Tolerances (kTol<T>, checked as |got − ref| / max(|ref|, 1)):
// - float: 1e-5 (≈ 170 ulp of 1). The deepest chain is router logits (length ≤ 8 dot products)
//   → softmax → gate, times a feed-forward expert (two products of length ≤ 16 with O(1)
//   entries); each stage adds ~√n·2^-24 relative error to O(1) values, and the worst error
//   observed over the cases below is 4.7e-7, so 1e-5 keeps ~20× headroom while a real mistake
//   (wrong expert, gate, bias or dropped slot) is ≥ 1e-2. Random cases whose routing is within 1e-3
//   of a tie (top-k boundary or capacity priority) are redrawn: there float and double may
//   legitimately pick different experts.
// - double: 1e-12 (the same argument with 2^-53; observed ≤ 6e-15).
// Every input and weight is rounded to T before the reference sees it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/moe/expert.hpp"
#include "ruvector/attention/moe/moe_attention.hpp"
#include "ruvector/attention/moe/router.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

constexpr double kInf = std::numeric_limits<double>::infinity();

static_assert(ra::attention_mechanism<ra::moe_attention<float>>);
static_assert(ra::attention_mechanism<ra::moe_attention<double>>);
static_assert(ra::moe_expert<ra::feed_forward_expert<float>, float>);
static_assert(ra::moe_expert<ra::function_expert<double>, double>);
static_assert(ra::moe_expert<ra::any_expert<float>, float>);
static_assert(
    ra::moe_expert<ra::attention_expert<ra::scaled_dot_product_attention<double>>, double>);
static_assert(!ra::moe_expert<ra::feed_forward_expert<float>, double>);

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// ================================================================================================
// Independent reference (double, std only)
// ================================================================================================
namespace ref {

using dvec = std::vector<double>;

double gelu(double z) { return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0))); }

struct ffn_params {
  orc::dmat w1;  // [h × d]
  dvec b1;       // [h] or empty
  orc::dmat w2;  // [dout × h]
  dvec b2;       // [dout] or empty
  bool use_gelu = true;
};

dvec ffn(const ffn_params& p, const dvec& x) {
  dvec hid(p.w1.rows, 0.0);
  for (std::size_t i = 0; i < p.w1.rows; ++i) {
    double s = p.b1.empty() ? 0.0 : p.b1[i];
    for (std::size_t j = 0; j < p.w1.cols; ++j) s += p.w1(i, j) * x[j];
    hid[i] = p.use_gelu ? gelu(s) : std::max(s, 0.0);
  }
  dvec y(p.w2.rows, 0.0);
  for (std::size_t o = 0; o < p.w2.rows; ++o) {
    double s = p.b2.empty() ? 0.0 : p.b2[o];
    for (std::size_t i = 0; i < p.w2.cols; ++i) s += p.w2(o, i) * hid[i];
    y[o] = s;
  }
  return y;
}

struct routed {
  std::size_t N = 0, E = 0, k = 0, C = 0;
  orc::dmat logits, probs;
  std::vector<std::vector<std::size_t>> experts;    // [t][s]
  std::vector<dvec> gates;                          // [t][s]
  std::vector<std::vector<bool>> kept;              // [t][s]
  std::vector<std::array<std::size_t, 3>> dropped;  // (token, slot, expert) in admission order
  std::vector<std::size_t> kept_count, assigned;
  dvec f, P;
  double aux = 0.0, z = 0.0;
  double min_gap = kInf;  // smallest logit gap among a token's first k + 1 sorted logits, and
                          // between top-1 probabilities when admission is by gate value
};

// Brute-force router: logits x Wᵀ + b, softmax, top-k (strictly larger logit wins, so ties go to
// the lower index), gates, capacity with slot-major admission, losses.
routed route(const orc::dmat& x, const orc::dmat& w, const dvec& b, std::size_t k, double cf,
             bool renorm, bool by_gate, bool topk_fraction) {
  routed r;
  const std::size_t N = x.rows, E = w.rows, d = w.cols;
  r.N = N;
  r.E = E;
  r.k = k;
  r.logits = orc::dmat(N, E);
  r.probs = orc::dmat(N, E);
  r.f.assign(E, 0.0);
  r.P.assign(E, 0.0);
  r.kept_count.assign(E, 0);
  r.assigned.assign(E, 0);
  for (std::size_t t = 0; t < N; ++t) {
    double m = -kInf;
    for (std::size_t e = 0; e < E; ++e) {
      double s = b.empty() ? 0.0 : b[e];
      for (std::size_t j = 0; j < d; ++j) s += x(t, j) * w(e, j);
      r.logits(t, e) = s;
      m = std::max(m, s);
    }
    double sum = 0.0;
    for (std::size_t e = 0; e < E; ++e) sum += std::exp(r.logits(t, e) - m);
    for (std::size_t e = 0; e < E; ++e) r.probs(t, e) = std::exp(r.logits(t, e) - m) / sum;
    const double lse = m + std::log(sum);
    r.z += lse * lse / static_cast<double>(N);
    std::vector<bool> taken(E, false);
    std::vector<std::size_t> ex;
    for (std::size_t s = 0; s < std::min(k + 1, E); ++s) {
      std::size_t best = E;
      for (std::size_t e = 0; e < E; ++e)
        if (!taken[e] && (best == E || r.logits(t, e) > r.logits(t, best))) best = e;
      taken[best] = true;
      ex.push_back(best);
    }
    for (std::size_t s = 0; s + 1 < ex.size(); ++s)
      r.min_gap = std::min(r.min_gap, r.logits(t, ex[s]) - r.logits(t, ex[s + 1]));
    ex.resize(k);
    dvec g;
    double gs = 0.0;
    for (std::size_t e : ex) {
      g.push_back(r.probs(t, e));
      gs += r.probs(t, e);
    }
    if (renorm)
      for (double& v : g) v /= gs;
    r.experts.push_back(ex);
    r.gates.push_back(g);
    for (std::size_t e = 0; e < E; ++e) r.P[e] += r.probs(t, e) / static_cast<double>(N);
    if (topk_fraction) {
      for (std::size_t e : ex) r.f[e] += 1.0 / static_cast<double>(N * k);
    } else {
      r.f[ex[0]] += 1.0 / static_cast<double>(N);
    }
    for (std::size_t e : ex) ++r.assigned[e];
  }
  for (std::size_t e = 0; e < E; ++e) r.aux += static_cast<double>(E) * r.f[e] * r.P[e];

  if (N > 0) {
    const double c =
        std::isinf(cf) ? static_cast<double>(N)
                       : std::ceil(cf * static_cast<double>(N * k) / static_cast<double>(E) - 1e-9);
    r.C = std::max<std::size_t>(1, std::min<std::size_t>(N, static_cast<std::size_t>(c)));
  }
  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (by_gate) {  // insertion sort: descending top-1 probability, stable
    for (std::size_t i = 1; i < N; ++i)
      for (std::size_t j = i; j > 0; --j) {
        const double a = r.probs(order[j], r.experts[order[j]][0]);
        const double bb = r.probs(order[j - 1], r.experts[order[j - 1]][0]);
        if (a > bb) std::swap(order[j], order[j - 1]);
      }
    for (std::size_t i = 0; i + 1 < N; ++i)
      r.min_gap = std::min(r.min_gap, std::abs(r.probs(order[i], r.experts[order[i]][0]) -
                                               r.probs(order[i + 1], r.experts[order[i + 1]][0])));
  }
  r.kept.assign(N, std::vector<bool>(k, false));
  for (std::size_t s = 0; s < k; ++s)
    for (std::size_t t : order) {
      const std::size_t e = r.experts[t][s];
      if (r.kept_count[e] < r.C) {
        ++r.kept_count[e];
        r.kept[t][s] = true;
      } else {
        r.dropped.push_back({t, s, e});
      }
    }
  return r;
}

// y_t = Σ_{kept s} g_ts · expert_{e_ts}(x_t).
orc::dmat combine(const routed& r, const orc::dmat& x,
                  const std::vector<std::function<dvec(const dvec&)>>& experts, std::size_t dout) {
  orc::dmat y(r.N, dout);
  for (std::size_t t = 0; t < r.N; ++t)
    for (std::size_t s = 0; s < r.k; ++s) {
      if (!r.kept[t][s]) continue;
      const dvec o = experts[r.experts[t][s]](x.row(t));
      for (std::size_t c = 0; c < dout; ++c) y(t, c) += r.gates[t][s] * o[c];
    }
  return y;
}

}  // namespace ref

// ================================================================================================
// Helpers
// ================================================================================================

template <class T>
ra::row_matrix<T> mat(std::size_t rows, std::size_t cols, std::initializer_list<double> xs) {
  ra::row_matrix<T> m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  std::size_t i = 0;
  for (double x : xs) m.data()[i++] = static_cast<T>(x);
  EXPECT_EQ(i, rows * cols);
  return m;
}

template <class T>
Eigen::Matrix<T, Eigen::Dynamic, 1> evec(const std::vector<double>& v) {
  Eigen::Matrix<T, Eigen::Dynamic, 1> out(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i)
    out(static_cast<Eigen::Index>(i)) = static_cast<T>(v[i]);
  return out;
}

std::vector<double> rounded_vec(std::vector<double> v, bool to_float) {
  if (to_float)
    for (double& x : v) x = static_cast<double>(static_cast<float>(x));
  return v;
}

template <class M>
void expect_matrix_near(const M& got, const orc::dmat& want, double tol, const std::string& what) {
  ASSERT_EQ(static_cast<std::size_t>(got.rows()), want.rows) << what;
  ASSERT_EQ(static_cast<std::size_t>(got.cols()), want.cols) << what;
  for (std::size_t i = 0; i < want.rows; ++i)
    for (std::size_t j = 0; j < want.cols; ++j) {
      const double g =
          static_cast<double>(got(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)));
      EXPECT_LE(std::abs(g - want(i, j)) / std::max(std::abs(want(i, j)), 1.0), tol)
          << what << "(" << i << ", " << j << "): got " << g << ", want " << want(i, j);
    }
}

void expect_near_rel(double got, double want, double tol, const std::string& what) {
  EXPECT_LE(std::abs(got - want) / std::max(std::abs(want), 1.0), tol)
      << what << ": got " << got << ", want " << want;
}

// Feed-forward parameters drawn N(0, 0.5²) and rounded to T, in both representations.
template <class T>
struct ffn_pair {
  ra::feed_forward_weights<T> lib;
  ref::ffn_params oracle;
};

template <class T>
ffn_pair<T> random_ffn(std::size_t d, std::size_t h, std::size_t dout, bool bias, bool gelu,
                       std::uint64_t seed) {
  constexpr bool f = std::is_same_v<T, float>;
  ffn_pair<T> p;
  p.oracle.w1 = orc::rounded<T>(orc::random_matrix(h, d, seed, 0.5));
  p.oracle.w2 = orc::rounded<T>(orc::random_matrix(dout, h, seed + 1, 0.5));
  if (bias) {
    p.oracle.b1 = rounded_vec(orc::random_vector(h, seed + 2, 0.5), f);
    p.oracle.b2 = rounded_vec(orc::random_vector(dout, seed + 3, 0.5), f);
  }
  p.oracle.use_gelu = gelu;
  p.lib.w1 = to_eigen<T>(p.oracle.w1);
  p.lib.w2 = to_eigen<T>(p.oracle.w2);
  p.lib.b1 = evec<T>(p.oracle.b1);
  p.lib.b2 = evec<T>(p.oracle.b2);
  return p;
}

// expert_e(x) = (e + 1)·x, a function expert whose output is easy to compute by hand.
template <class T>
ra::any_expert<T> scaling_expert(std::size_t d, double factor) {
  return ra::function_expert<T>(d, d, [factor](const ra::matrix_cref<T>& x, ra::matrix_ref<T> out) {
    out = static_cast<T>(factor) * x;
  });
}

template <class T>
ra::top_k_router<T> router_with(std::size_t d, std::size_t E, std::size_t k, double cf,
                                const ra::row_matrix<T>& w, std::vector<double> b = {},
                                ra::capacity_priority pr = ra::capacity_priority::token_order,
                                std::optional<bool> renorm = std::nullopt) {
  ra::top_k_router<T> r(ra::router_config{.dim = d,
                                          .num_experts = E,
                                          .top_k = k,
                                          .capacity_factor = cf,
                                          .renormalize = renorm,
                                          .priority = pr});
  r.set_weights(w, evec<T>(b));
  return r;
}

template <class T>
class MoeTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(MoeTest, Scalars);

// ================================================================================================
// Experts
// ================================================================================================

// The vectorised GELU/ReLU (+ bias) kernel against std::erf / std::max, over lengths that exercise
// full batches and every tail length, and arguments from −12 to 12.
TYPED_TEST(MoeTest, ActivationKernelMatchesStd) {
  using T = TypeParam;
  // xsimd's erf is accurate to a few ulp; the product ½z(1+erf) adds two roundings.
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> u(-12.0, 12.0);
  for (std::size_t n : {1u, 3u, 7u, 8u, 16u, 17u, 33u, 64u}) {
    for (bool with_bias : {false, true}) {
      for (auto act : {ra::expert_activation::gelu, ra::expert_activation::relu}) {
        std::vector<T> x(n), b(n);
        for (auto& v : x) v = static_cast<T>(u(gen));
        for (auto& v : b) v = static_cast<T>(u(gen) / 4);
        std::vector<T> y = x;
        ra::detail::bias_activation(y.data(), with_bias ? b.data() : nullptr, n, act);
        for (std::size_t i = 0; i < n; ++i) {
          // The biased argument is rounded to T, as in the kernel.
          const double z = static_cast<double>(with_bias ? static_cast<T>(x[i] + b[i]) : x[i]);
          const double want = act == ra::expert_activation::gelu ? ref::gelu(z) : std::max(z, 0.0);
          EXPECT_LE(std::abs(static_cast<double>(y[i]) - want) / std::max(std::abs(want), 1.0), tol)
              << "n " << n << " i " << i << " z " << z;
        }
      }
    }
  }
}

// A feed-forward expert with caller weights against the reference, for both activations, with and
// without biases, and a non-square output (d_out ≠ d).
TYPED_TEST(MoeTest, FeedForwardExpertMatchesReference) {
  using T = TypeParam;
  std::uint64_t seed = 100;
  for (const bool gelu : {true, false}) {
    for (const bool bias : {true, false}) {
      for (const auto [d, h, dout, n] :
           {std::array<std::size_t, 4>{5, 7, 5, 6}, std::array<std::size_t, 4>{8, 16, 3, 1},
            std::array<std::size_t, 4>{1, 2, 4, 9}}) {
        const auto p = random_ffn<T>(d, h, dout, bias, gelu, seed += 10);
        const ra::feed_forward_expert<T> ex(
            p.lib, gelu ? ra::expert_activation::gelu : ra::expert_activation::relu);
        EXPECT_EQ(ex.dim(), d);
        EXPECT_EQ(ex.hidden_dim(), h);
        EXPECT_EQ(ex.out_dim(), dout);
        EXPECT_DOUBLE_EQ(ex.flops_per_token(), 2.0 * static_cast<double>(h * (d + dout)));
        const orc::dmat x = orc::rounded<T>(orc::random_matrix(n, d, seed + 5));
        const ra::row_matrix<T> xl = to_eigen<T>(x);
        ra::row_matrix<T> out(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dout));
        ex.forward(xl, out);
        orc::dmat want(n, dout);
        for (std::size_t t = 0; t < n; ++t) {
          const auto y = ref::ffn(p.oracle, x.row(t));
          for (std::size_t c = 0; c < dout; ++c) want(t, c) = y[c];
        }
        expect_matrix_near(out, want, kTol<T>, "ffn");
      }
    }
  }
}

// Seeded initialisation: Xavier bounds, zero biases, h defaults to 4·d, same seed → same weights,
// different seed → different weights; an expert built from those weights behaves identically.
TYPED_TEST(MoeTest, FeedForwardExpertSeededInit) {
  using T = TypeParam;
  const ra::feed_forward_expert<T> a(ra::feed_forward_config{.dim = 6, .seed = 3});
  const ra::feed_forward_expert<T> b(ra::feed_forward_config{.dim = 6, .seed = 3});
  const ra::feed_forward_expert<T> c(ra::feed_forward_config{.dim = 6, .seed = 4});
  EXPECT_EQ(a.hidden_dim(), 24u);
  EXPECT_EQ(a.out_dim(), 6u);
  EXPECT_TRUE(a.weights().w1 == b.weights().w1);
  EXPECT_TRUE(a.weights().w2 == b.weights().w2);
  EXPECT_FALSE(a.weights().w1 == c.weights().w1);
  const double bound = std::sqrt(6.0 / 30.0);  // fan_in + fan_out = 6 + 24
  EXPECT_LE(static_cast<double>(a.weights().w1.cwiseAbs().maxCoeff()), bound);
  EXPECT_LE(static_cast<double>(a.weights().w2.cwiseAbs().maxCoeff()), bound);
  // Not degenerate: the draws fill the interval.
  EXPECT_GT(static_cast<double>(a.weights().w1.cwiseAbs().maxCoeff()), 0.8 * bound);
  EXPECT_EQ(a.weights().b1.size(), 24);
  EXPECT_TRUE(a.weights().b1.isZero());
  EXPECT_TRUE(a.weights().b2.isZero());
  const ra::feed_forward_expert<T> no_bias(
      ra::feed_forward_config{.dim = 4, .hidden = 3, .bias = false});
  EXPECT_EQ(no_bias.weights().b1.size(), 0);
  EXPECT_EQ(no_bias.hidden_dim(), 3u);
}

TYPED_TEST(MoeTest, FeedForwardExpertErrors) {
  using T = TypeParam;
  auto p = random_ffn<T>(4, 5, 4, true, true, 1);
  auto bad = p.lib;
  bad.w2 = ra::row_matrix<T>::Ones(4, 6);  // w2.cols() ≠ h
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)ra::feed_forward_expert<T>(bad, ra::expert_activation::relu);
                     }),
                     "w2.cols()");
  bad = p.lib;
  bad.b1 = evec<T>({1.0, 2.0});
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       (void)ra::feed_forward_expert<T>(bad, ra::expert_activation::relu);
                     }),
                     "b1.size()");
  bad = p.lib;
  bad.w1(1, 2) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] {
                       (void)ra::feed_forward_expert<T>(bad, ra::expert_activation::relu);
                     }),
                     "w1[1][2]");
  bad = p.lib;
  bad.w1.resize(0, 0);
  EXPECT_THROW((void)ra::feed_forward_expert<T>(bad, ra::expert_activation::relu),
               ra::invalid_config);
  EXPECT_THROW((void)ra::feed_forward_expert<T>(ra::feed_forward_config{.dim = 0}),
               ra::invalid_config);
  const ra::feed_forward_expert<T> ex(p.lib, ra::expert_activation::gelu);
  ra::row_matrix<T> x = ra::row_matrix<T>::Ones(2, 3), out(2, 4);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { ex.forward(x, out); }),
                     "x.cols()");
  x = ra::row_matrix<T>::Ones(2, 4);
  ra::row_matrix<T> out_bad(3, 4);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { ex.forward(x, out_bad); }),
                     "out.rows()");
  EXPECT_THROW(ra::function_expert<T>(0, 2, [](const ra::matrix_cref<T>&, ra::matrix_ref<T>) {}),
               ra::invalid_config);
  EXPECT_THROW(ra::function_expert<T>(2, 2, nullptr), ra::invalid_config);
  const ra::any_expert<T> empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_THROW((void)empty.input_dim(), ra::invalid_config);
}

// The type-erased handle forwards to the expert, exposes it through target<>() and shares it on
// copy.
TYPED_TEST(MoeTest, AnyExpertForwardsAndShares) {
  using T = TypeParam;
  const auto p = random_ffn<T>(3, 4, 3, true, false, 9);
  const ra::any_expert<T> h = ra::feed_forward_expert<T>(p.lib, ra::expert_activation::relu);
  const ra::any_expert<T> copy = h;  // NOLINT(performance-unnecessary-copy-initialization)
  ASSERT_NE(h.template target<ra::feed_forward_expert<T>>(), nullptr);
  EXPECT_EQ(h.template target<ra::feed_forward_expert<T>>(),
            copy.template target<ra::feed_forward_expert<T>>());
  EXPECT_EQ(h.template target<ra::function_expert<T>>(), nullptr);
  EXPECT_EQ(h.input_dim(), 3u);
  EXPECT_EQ(h.output_dim(), 3u);
  const orc::dmat x = orc::rounded<T>(orc::random_matrix(2, 3, 77));
  ra::row_matrix<T> out(2, 3);
  h.forward(to_eigen<T>(x), out);
  orc::dmat want(2, 3);
  for (std::size_t t = 0; t < 2; ++t) {
    const auto y = ref::ffn(p.oracle, x.row(t));
    for (std::size_t c = 0; c < 3; ++c) want(t, c) = y[c];
  }
  expect_matrix_near(out, want, kTol<T>, "any_expert");
}

// An attention expert runs the wrapped mechanism per routed token over the context.
TYPED_TEST(MoeTest, AttentionExpertMatchesReferenceAttention) {
  using T = TypeParam;
  const std::size_t d = 4, n = 5, lk = 6, dv = 3;
  const ra::attention_expert<ra::scaled_dot_product_attention<T>> ex(
      ra::scaled_dot_product_attention<T>(d, T(0.75)));
  const orc::dmat q = orc::rounded<T>(orc::random_matrix(n, d, 1));
  const orc::dmat k = orc::rounded<T>(orc::random_matrix(lk, d, 2));
  const orc::dmat v = orc::rounded<T>(orc::random_matrix(lk, dv, 3));
  const ra::row_matrix<T> K = to_eigen<T>(k), V = to_eigen<T>(v);
  const ra::matrix_cref<T> kr(K), vr(V);
  const ra::expert_context<T> ctx{&kr, &vr};
  EXPECT_EQ(ex.input_dim(ctx), d);
  EXPECT_EQ(ex.output_dim(ctx), dv);
  ra::row_matrix<T> out(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
  ex.forward(to_eigen<T>(q), out, ctx);
  expect_matrix_near(out, orc::reference_attention(q, k, v, 0.75).out, kTol<T>, "attention");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { (void)ex.input_dim({}); }),
                     "no context");
}

// ================================================================================================
// Router: hand-computed cases and closed forms
// ================================================================================================

// d = 2, E = 3, W = [[1,0],[0,1],[1,1]], b = (0, 0.5, −1), k = 2, renormalised gates. Logits by
// hand: x0 = (2, 0) → (2, 0.5, 1); x1 = (0, 1) → (0, 1.5, 0) (tie between experts 0 and 2 for the
// second slot → expert 0); x2 = (1, 1) → (1, 1.5, 1) (tie again → 0); x3 = (−1, 2) → (−1, 2.5, 0).
TYPED_TEST(MoeTest, RouterHandComputed) {
  using T = TypeParam;
  const auto w = mat<T>(3, 2, {1, 0, 0, 1, 1, 1});
  const auto r = router_with<T>(2, 3, 2, kInf, w, {0.0, 0.5, -1.0});
  EXPECT_TRUE(r.renormalize());  // default for k > 1
  const auto x = mat<T>(4, 2, {2, 0, 0, 1, 1, 1, -1, 2});
  const auto out = r.route(x);
  const double L[4][3] = {{2, 0.5, 1}, {0, 1.5, 0}, {1, 1.5, 1}, {-1, 2.5, 0}};
  const std::size_t want_experts[4][2] = {{0, 2}, {1, 0}, {1, 0}, {1, 2}};
  double z = 0.0;
  std::array<double, 3> P{};
  std::array<double, 3> f{};
  for (std::size_t t = 0; t < 4; ++t) {
    const double se = std::exp(L[t][0]) + std::exp(L[t][1]) + std::exp(L[t][2]);
    z += std::log(se) * std::log(se) / 4.0;
    for (std::size_t e = 0; e < 3; ++e) {
      expect_near_rel(static_cast<double>(
                          out.logits(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(e))),
                      L[t][e], kTol<T>, "logit");
      const double p = std::exp(L[t][e]) / se;
      expect_near_rel(static_cast<double>(
                          out.probs(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(e))),
                      p, kTol<T>, "prob");
      P[e] += p / 4.0;
    }
    const double p0 = std::exp(L[t][want_experts[t][0]]), p1 = std::exp(L[t][want_experts[t][1]]);
    for (std::size_t s = 0; s < 2; ++s) {
      EXPECT_EQ(out.expert(t, s), want_experts[t][s]) << "token " << t << " slot " << s;
      EXPECT_TRUE(out.is_kept(t, s));
    }
    expect_near_rel(static_cast<double>(out.gate(t, 0)), p0 / (p0 + p1), kTol<T>, "gate 0");
    expect_near_rel(static_cast<double>(out.gate(t, 1)), p1 / (p0 + p1), kTol<T>, "gate 1");
    f[want_experts[t][0]] += 0.25;
  }
  double aux = 0.0;
  for (std::size_t e = 0; e < 3; ++e) {
    aux += 3.0 * f[e] * P[e];
    expect_near_rel(static_cast<double>(out.stats.mean_probability[e]), P[e], kTol<T>, "P_e");
    expect_near_rel(static_cast<double>(out.stats.expert_fraction[e]), f[e], kTol<T>, "f_e");
  }
  expect_near_rel(static_cast<double>(out.stats.load_balance_loss), aux, kTol<T>, "L_aux");
  expect_near_rel(static_cast<double>(out.stats.router_z_loss), z, kTol<T>, "L_z");
  EXPECT_EQ(out.stats.capacity, 4u);
  EXPECT_EQ(out.stats.assigned_per_expert, (std::vector<std::size_t>{3, 3, 2}));
  EXPECT_EQ(out.stats.tokens_per_expert, (std::vector<std::size_t>{3, 3, 2}));
  EXPECT_TRUE(out.stats.dropped.empty());
  EXPECT_EQ(out.expert_offsets, (std::vector<std::size_t>{0, 3, 6, 8}));
}

// Switch's k = 1 gate is the raw top-1 probability (not renormalised, so < 1); renormalize = true
// with k = 1 gives gate 1; renormalize = false with k = 2 gives the raw probabilities.
TYPED_TEST(MoeTest, GateRenormalisationOptions) {
  using T = TypeParam;
  const auto w = mat<T>(3, 2, {1, 0, 0, 1, -1, 0});
  const auto x = mat<T>(1, 2, {1, 0.5});  // logits (1, 0.5, −1)
  const double se = std::exp(1.0) + std::exp(0.5) + std::exp(-1.0);
  const double p0 = std::exp(1.0) / se, p1 = std::exp(0.5) / se;
  const auto k1 = router_with<T>(2, 3, 1, kInf, w);
  EXPECT_FALSE(k1.renormalize());
  expect_near_rel(static_cast<double>(k1.route(x).gate(0, 0)), p0, kTol<T>, "switch gate");
  const auto k1r = router_with<T>(2, 3, 1, kInf, w, {}, ra::capacity_priority::token_order, true);
  EXPECT_EQ(static_cast<double>(k1r.route(x).gate(0, 0)), 1.0);
  const auto k2 = router_with<T>(2, 3, 2, kInf, w, {}, ra::capacity_priority::token_order, false);
  const auto o = k2.route(x);
  expect_near_rel(static_cast<double>(o.gate(0, 0)), p0, kTol<T>, "raw gate 0");
  expect_near_rel(static_cast<double>(o.gate(0, 1)), p1, kTol<T>, "raw gate 1");
}

// Perfect balance → L_aux = 1: E = 4 and token t = 3·onehot(t mod 4) + onehot(t + 1 mod 4) with
// W = I, so P is uniform (each expert holds each probability once per cycle) and so are the top-1
// fractions and the top-2 fractions.
TYPED_TEST(MoeTest, BalanceLossIsOneAtPerfectBalance) {
  using T = TypeParam;
  const std::size_t E = 4, N = 8;
  ra::row_matrix<T> x = ra::row_matrix<T>::Zero(N, E);
  for (std::size_t t = 0; t < N; ++t) {
    x(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(t % E)) = T(3);
    x(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>((t + 1) % E)) = T(1);
  }
  const ra::row_matrix<T> w = ra::row_matrix<T>::Identity(E, E);
  for (const auto frac : {ra::balance_fraction::top1, ra::balance_fraction::top_k}) {
    ra::top_k_router<T> r(
        ra::router_config{.dim = E, .num_experts = E, .top_k = 2, .balance = frac});
    r.set_weights(w);
    const auto o = r.route(x);
    expect_near_rel(static_cast<double>(o.stats.load_balance_loss), 1.0, kTol<T>, "balanced");
    for (std::size_t e = 0; e < E; ++e) {
      expect_near_rel(static_cast<double>(o.stats.expert_fraction[e]), 0.25, kTol<T>, "f_e");
      expect_near_rel(static_cast<double>(o.stats.mean_probability[e]), 0.25, kTol<T>, "P_e");
    }
  }
}

// All tokens routed to one expert e → f_e = 1 and L_aux = E·P_e, with P_e the (shared) softmax
// probability in closed form. Identical tokens with logits (0, 2, 0, −1) pick expert 1.
TYPED_TEST(MoeTest, BalanceLossWhenAllTokensPickOneExpert) {
  using T = TypeParam;
  const auto w = mat<T>(4, 1, {0, 2, 0, -1});
  const ra::row_matrix<T> x = ra::row_matrix<T>::Ones(5, 1);
  const auto r = router_with<T>(1, 4, 1, kInf, w);
  const auto o = r.route(x);
  const double p1 = std::exp(2.0) / (2.0 + std::exp(2.0) + std::exp(-1.0));
  expect_near_rel(static_cast<double>(o.stats.load_balance_loss), 4.0 * p1, kTol<T>, "E·P_e");
  EXPECT_EQ(o.stats.assigned_per_expert, (std::vector<std::size_t>{0, 5, 0, 0}));
}

// z-loss closed forms: all-zero logits → (ln E)²; logits = b for every token → lse(b)².
TYPED_TEST(MoeTest, RouterZLossClosedForms) {
  using T = TypeParam;
  const ra::row_matrix<T> x = mat<T>(3, 2, {1, 2, -3, 0.5, 7, 1});
  auto r = router_with<T>(2, 5, 2, kInf, ra::row_matrix<T>::Zero(5, 2));
  expect_near_rel(static_cast<double>(r.route(x).stats.router_z_loss),
                  std::log(5.0) * std::log(5.0), kTol<T>, "zero logits");
  r = router_with<T>(2, 5, 2, kInf, ra::row_matrix<T>::Zero(5, 2), {1, -2, 0.5, 3, 0});
  const double lse =
      std::log(std::exp(1.0) + std::exp(-2.0) + std::exp(0.5) + std::exp(3.0) + std::exp(0.0));
  const auto o = r.route(x);
  expect_near_rel(static_cast<double>(o.stats.router_z_loss), lse * lse, kTol<T>, "bias logits");
  // With constant logits every token picks experts 3 then 0.
  for (std::size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(o.expert(t, 0), 3u);
    EXPECT_EQ(o.expert(t, 1), 0u);
  }
}

// Capacity C = ⌈cf·N·k/E⌉ clamped to [1, N] (cf = +inf → N), exact at integers.
TYPED_TEST(MoeTest, CapacityFormula) {
  using T = TypeParam;
  const auto cap = [](double cf, std::size_t N, std::size_t k, std::size_t E) {
    return ra::top_k_router<T>(
               ra::router_config{.dim = 1, .num_experts = E, .top_k = k, .capacity_factor = cf})
        .capacity(N);
  };
  EXPECT_EQ(cap(1.25, 8, 2, 4), 5u);  // exactly 5
  EXPECT_EQ(cap(1.1, 10, 2, 4), 6u);  // 5.5 → 6
  EXPECT_EQ(cap(1.0, 10, 1, 3), 4u);  // 3.33 → 4
  EXPECT_EQ(cap(0.7, 4, 2, 3), 2u);   // 1.87 → 2
  EXPECT_EQ(cap(1e-9, 100, 1, 8), 1u);
  EXPECT_EQ(cap(100.0, 7, 2, 2), 7u);
  EXPECT_EQ(cap(kInf, 9, 1, 4), 9u);
  EXPECT_EQ(cap(1.0, 0, 1, 4), 0u);
}

// Overflow, k = 1, E = 2, W = I, C = ⌈1·4·1/2⌉ = 2; every token prefers expert 0 with top-1
// probability increasing in a_t = (1, 3, 2, 4). Token order keeps tokens 0, 1 and drops 2, 3; gate
// priority keeps tokens 3, 1 and drops 2 then 0. Expert e scales by (e + 1): a kept token's output
// is p_t·x_t (k = 1: un-renormalised gate), a dropped token's output is zero.
TYPED_TEST(MoeTest, CapacityOverflowDropsByPriority) {
  using T = TypeParam;
  const std::vector<double> a = {1, 3, 2, 4};
  const auto x = mat<T>(4, 2, {1, 0, 3, 0, 2, 0, 4, 0});
  const auto w = ra::row_matrix<T>::Identity(2, 2).eval();
  for (const auto pr : {ra::capacity_priority::token_order, ra::capacity_priority::gate_value}) {
    const ra::moe_attention<T> moe(router_with<T>(2, 2, 1, 1.0, w, {}, pr),
                                   {scaling_expert<T>(2, 1.0), scaling_expert<T>(2, 2.0)});
    const auto r = moe.forward(x);
    const bool by_gate = pr == ra::capacity_priority::gate_value;
    const std::vector<bool> kept = by_gate ? std::vector<bool>{false, true, false, true}
                                           : std::vector<bool>{true, true, false, false};
    const std::vector<ra::moe_assignment> dropped =
        by_gate ? std::vector<ra::moe_assignment>{{2, 0, 0}, {0, 0, 0}}
                : std::vector<ra::moe_assignment>{{2, 0, 0}, {3, 0, 0}};
    EXPECT_EQ(r.stats.capacity, 2u);
    EXPECT_EQ(r.stats.dropped, dropped);
    EXPECT_EQ(r.stats.dropped_tokens, 2u);
    EXPECT_EQ(r.stats.tokens_per_expert, (std::vector<std::size_t>{2, 0}));
    EXPECT_EQ(r.stats.assigned_per_expert, (std::vector<std::size_t>{4, 0}));
    for (std::size_t t = 0; t < 4; ++t) {
      EXPECT_EQ(r.routing.is_kept(t, 0), kept[t]) << "token " << t;
      const double p = 1.0 / (1.0 + std::exp(-a[t]));  // softmax(a, 0)[0]
      const double want = kept[t] ? p * a[t] : 0.0;
      expect_near_rel(static_cast<double>(r.output(static_cast<Eigen::Index>(t), 0)), want, kTol<T>,
                      "out");
      EXPECT_EQ(static_cast<double>(r.output(static_cast<Eigen::Index>(t), 1)), 0.0);
    }
  }
}

// Top-2 overflow is slot-major: E = 3, W = I, C = ⌈0.7·4·2/3⌉ = 2. First choices fill expert 0
// (tokens 0, 1), expert 1 (token 2), expert 2 (token 3); second choices: token 0 → 1 kept, token
// 1 → 2 kept, token 2 → 0 dropped (full), token 3 → 1 dropped (full).
TYPED_TEST(MoeTest, TopTwoOverflowIsSlotMajor) {
  using T = TypeParam;
  const auto x = mat<T>(4, 3, {3, 1, 0, 3, 0, 1, 1, 3, 0, 0, 1, 3});
  const auto w = ra::row_matrix<T>::Identity(3, 3).eval();
  const ra::moe_attention<T> moe(
      router_with<T>(3, 3, 2, 0.7, w),
      {scaling_expert<T>(3, 1.0), scaling_expert<T>(3, 2.0), scaling_expert<T>(3, 3.0)});
  const auto r = moe.forward(x);
  EXPECT_EQ(r.stats.capacity, 2u);
  EXPECT_EQ(r.stats.dropped, (std::vector<ra::moe_assignment>{{2, 1, 0}, {3, 1, 1}}));
  EXPECT_EQ(r.stats.tokens_per_expert, (std::vector<std::size_t>{2, 2, 2}));
  EXPECT_EQ(r.stats.assigned_per_expert, (std::vector<std::size_t>{3, 3, 2}));
  EXPECT_EQ(r.stats.dropped_tokens, 0u);
  // Outputs by hand: gates renormalised over the two selected; dropped slots add nothing.
  const double L[4][3] = {{3, 1, 0}, {3, 0, 1}, {1, 3, 0}, {0, 1, 3}};
  const std::size_t ex[4][2] = {{0, 1}, {0, 2}, {1, 0}, {2, 1}};
  const bool kept[4][2] = {{true, true}, {true, true}, {true, false}, {true, false}};
  for (std::size_t t = 0; t < 4; ++t) {
    const double e0 = std::exp(L[t][ex[t][0]]), e1 = std::exp(L[t][ex[t][1]]);
    const double g[2] = {e0 / (e0 + e1), e1 / (e0 + e1)};
    for (std::size_t c = 0; c < 3; ++c) {
      double want = 0.0;
      for (std::size_t s = 0; s < 2; ++s)
        if (kept[t][s]) want += g[s] * static_cast<double>(ex[t][s] + 1) * L[t][c];
      expect_near_rel(
          static_cast<double>(r.output(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(c))),
          want, kTol<T>, "out");
    }
  }
}

// ================================================================================================
// The layer against the brute-force reference (random property test)
// ================================================================================================

TYPED_TEST(MoeTest, ForwardMatchesReferenceOnRandomCases) {
  using T = TypeParam;
  std::mt19937 pick(2024);
  std::uint64_t seed = 1000;
  int checked = 0;
  for (int c = 0; c < 60; ++c) {
    const std::size_t E = 2 + pick() % 3, k = 1 + pick() % E, d = 2 + pick() % 6,
                      h = 1 + pick() % 9, N = std::array<std::size_t, 4>{1, 5, 17, 40}[pick() % 4];
    const double cf = std::array<double, 4>{0.5, 1.0, 1.5, kInf}[pick() % 4];
    const bool by_gate = pick() % 2 == 0, topk_frac = pick() % 2 == 0, bias = pick() % 2 == 0,
               gelu = pick() % 2 == 0;
    const std::optional<bool> renorm =
        pick() % 3 == 0 ? std::optional<bool>(pick() % 2 == 0) : std::nullopt;
    seed += 100;
    const orc::dmat x = orc::rounded<T>(orc::random_matrix(N, d, seed));
    const orc::dmat w = orc::rounded<T>(orc::random_matrix(E, d, seed + 1));
    const std::vector<double> b =
        bias ? rounded_vec(orc::random_vector(E, seed + 2), std::is_same_v<T, float>)
             : std::vector<double>{};
    const ref::routed want = ref::route(x, w, b, k, cf, renorm.value_or(k > 1), by_gate, topk_frac);
    if (std::is_same_v<T, float> && want.min_gap < 1e-3) continue;  // near a tie: redraw
    ++checked;
    std::vector<ra::any_expert<T>> experts;
    std::vector<std::function<ref::dvec(const ref::dvec&)>> oracle_experts;
    for (std::size_t e = 0; e < E; ++e) {
      const auto p = random_ffn<T>(d, h, d, bias, gelu, seed + 10 + 5 * e);
      experts.emplace_back(ra::feed_forward_expert<T>(
          p.lib, gelu ? ra::expert_activation::gelu : ra::expert_activation::relu));
      oracle_experts.emplace_back([o = p.oracle](const ref::dvec& v) { return ref::ffn(o, v); });
    }
    ra::top_k_router<T> router(ra::router_config{
        .dim = d,
        .num_experts = E,
        .top_k = k,
        .capacity_factor = cf,
        .renormalize = renorm,
        .priority =
            by_gate ? ra::capacity_priority::gate_value : ra::capacity_priority::token_order,
        .balance = topk_frac ? ra::balance_fraction::top_k : ra::balance_fraction::top1});
    router.set_weights(to_eigen<T>(w), evec<T>(b));
    // A small expert block so several blocks per expert are exercised.
    const ra::moe_attention<T> moe(std::move(router), experts, 3);
    const auto r = moe.forward(to_eigen<T>(x));
    const std::string where = "case " + std::to_string(c);
    SCOPED_TRACE(where);
    expect_matrix_near(r.output, ref::combine(want, x, oracle_experts, d), kTol<T>, "output");
    expect_matrix_near(r.routing.logits, want.logits, kTol<T>, "logits");
    expect_matrix_near(r.routing.probs, want.probs, kTol<T>, "probs");
    for (std::size_t t = 0; t < N; ++t)
      for (std::size_t s = 0; s < k; ++s) {
        EXPECT_EQ(r.routing.expert(t, s), want.experts[t][s]);
        EXPECT_EQ(r.routing.is_kept(t, s), want.kept[t][s]);
        expect_near_rel(static_cast<double>(r.routing.gate(t, s)), want.gates[t][s], kTol<T>,
                        "gate");
      }
    EXPECT_EQ(r.stats.capacity, want.C);
    EXPECT_EQ(r.stats.tokens_per_expert, want.kept_count);
    EXPECT_EQ(r.stats.assigned_per_expert, want.assigned);
    ASSERT_EQ(r.stats.dropped.size(), want.dropped.size());
    for (std::size_t i = 0; i < want.dropped.size(); ++i)
      EXPECT_EQ(r.stats.dropped[i],
                (ra::moe_assignment{want.dropped[i][0], want.dropped[i][1], want.dropped[i][2]}));
    expect_near_rel(static_cast<double>(r.stats.load_balance_loss), want.aux, kTol<T>, "L_aux");
    expect_near_rel(static_cast<double>(r.stats.router_z_loss), want.z, kTol<T>, "L_z");
    // Dispatch lists: every kept assignment exactly once, grouped by expert.
    EXPECT_EQ(r.routing.dispatch.size(),
              std::accumulate(want.kept_count.begin(), want.kept_count.end(), std::size_t{0}));
    for (std::size_t e = 0; e < E; ++e)
      for (std::size_t i = r.routing.expert_offsets[e]; i < r.routing.expert_offsets[e + 1]; ++i)
        EXPECT_EQ(r.routing.dispatch[i].expert, e);
  }
  EXPECT_GE(checked, 40);
}

// Attention experts (the routed token is the query over the call's context) mixed with a
// feed-forward expert, against reference_attention and the reference feed-forward.
TYPED_TEST(MoeTest, AttentionExpertsOverContext) {
  using T = TypeParam;
  const std::size_t d = 4, N = 9, lk = 7, E = 3;
  const orc::dmat x = orc::rounded<T>(orc::random_matrix(N, d, 11));
  const orc::dmat keys = orc::rounded<T>(orc::random_matrix(lk, d, 12));
  const orc::dmat vals = orc::rounded<T>(orc::random_matrix(lk, d, 13));
  const orc::dmat w = orc::rounded<T>(orc::random_matrix(E, d, 14));
  const auto p = random_ffn<T>(d, 5, d, true, true, 15);
  const std::vector<ra::any_expert<T>> experts = {
      ra::attention_expert(ra::scaled_dot_product_attention<T>(d, T(0.75))),
      ra::feed_forward_expert<T>(p.lib, ra::expert_activation::gelu),
      ra::attention_expert(ra::scaled_dot_product_attention<T>(d))};
  const ra::moe_attention<T> moe(router_with<T>(d, E, 2, kInf, to_eigen<T>(w)), experts);
  const ref::routed want = ref::route(x, w, {}, 2, kInf, true, false, false);
  ASSERT_GT(want.min_gap, 1e-3);
  const std::vector<std::function<ref::dvec(const ref::dvec&)>> oracle_experts = {
      [&](const ref::dvec& q) {
        orc::dmat qm(1, d);
        qm.a = q;
        return orc::reference_attention(qm, keys, vals, 0.75).out.row(0);
      },
      [&](const ref::dvec& q) { return ref::ffn(p.oracle, q); },
      [&](const ref::dvec& q) {
        orc::dmat qm(1, d);
        qm.a = q;
        return orc::reference_attention(qm, keys, vals, 0.5 /* 1/√4 */).out.row(0);
      }};
  const auto r = moe.forward(to_eigen<T>(x), to_eigen<T>(keys), to_eigen<T>(vals));
  expect_matrix_near(r.output, ref::combine(want, x, oracle_experts, d), kTol<T>, "output");
  // The seeds' single-query API routes one token and matches the batch row.
  const ra::row_matrix<T> K = to_eigen<T>(keys), V = to_eigen<T>(vals), X = to_eigen<T>(x);
  for (std::size_t t = 0; t < N; ++t) {
    const std::vector<T> q(X.row(static_cast<Eigen::Index>(t)).data(),
                           X.row(static_cast<Eigen::Index>(t)).data() + d);
    const std::vector<T> y = moe.compute(std::span<const T>(q), K, V);
    for (std::size_t c = 0; c < d; ++c)
      expect_near_rel(
          static_cast<double>(y[c]),
          static_cast<double>(r.output(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(c))),
          kTol<T>, "compute");
  }
  // Without a context the attention experts cannot run.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] { (void)moe.forward(X); }),
                     "no context");
  // Context widths must match the layer: values of width 3 ≠ the feed-forward expert's 4.
  const ra::row_matrix<T> V3 = ra::row_matrix<T>::Ones(static_cast<Eigen::Index>(lk), 3);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { (void)moe.forward(X, K, V3); }),
                     "output width");
  const ra::row_matrix<T> V_short = ra::row_matrix<T>::Ones(3, static_cast<Eigen::Index>(d));
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { (void)moe.forward(X, K, V_short); }),
      "values.rows()");
}

// The seeds' compute_with_loss(queries, keys, values) = a batch forward: same outputs, the loss is
// the Switch balance loss.
TYPED_TEST(MoeTest, ComputeWithLossAdapter) {
  using T = TypeParam;
  const ra::moe_attention<T> moe(6, 4, 2);
  EXPECT_EQ(moe.num_experts(), 4u);
  EXPECT_EQ(moe.top_k(), 2u);
  const orc::dmat x = orc::rounded<T>(orc::random_matrix(7, 6, 31));
  std::vector<std::vector<T>> queries(7), keys(2, std::vector<T>(6, T(1)));
  for (std::size_t t = 0; t < 7; ++t)
    for (std::size_t c = 0; c < 6; ++c) queries[t].push_back(static_cast<T>(x(t, c)));
  const auto lo = moe.compute_with_loss(queries, keys, keys);
  const auto r = moe.forward(to_eigen<T>(x));
  ASSERT_EQ(lo.outputs.size(), 7u);
  for (std::size_t t = 0; t < 7; ++t)
    for (std::size_t c = 0; c < 6; ++c)
      EXPECT_EQ(lo.outputs[t][c],
                r.output(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(c)));
  EXPECT_EQ(lo.loss, r.stats.load_balance_loss);
  EXPECT_EQ(lo.stats.tokens_per_expert, r.stats.tokens_per_expert);
  // Empty batch: empty output, zero losses.
  const auto empty = moe.compute_with_loss({}, keys, keys);
  EXPECT_TRUE(empty.outputs.empty());
  EXPECT_EQ(empty.loss, T(0));
  const auto r0 = moe.forward(ra::row_matrix<T>(0, 6));
  EXPECT_EQ(r0.output.rows(), 0);
  EXPECT_EQ(r0.output.cols(), 6);
  EXPECT_EQ(r0.stats.router_z_loss, T(0));
  EXPECT_EQ(r0.stats.capacity, 0u);
}

// forward_into / route_into reuse a caller-owned result across calls of different shapes and give
// exactly what forward / route give; expert_outputs holds the un-gated expert rows of the dispatch.
TYPED_TEST(MoeTest, IntoVariantsReuseResults) {
  using T = TypeParam;
  const auto w = to_eigen<T>(orc::rounded<T>(orc::random_matrix(3, 4, 40)));
  const ra::moe_attention<T> moe(
      router_with<T>(4, 3, 2, 0.8, w),
      {scaling_expert<T>(4, 1.0), scaling_expert<T>(4, 2.0), scaling_expert<T>(4, 3.0)});
  ra::moe_result<T> reused;
  ra::router_output<T> routed;
  for (const std::size_t n : {std::size_t{23}, std::size_t{5}, std::size_t{0}, std::size_t{31}}) {
    const ra::row_matrix<T> x = to_eigen<T>(orc::random_matrix(n, 4, 41 + n));
    moe.forward_into(x, reused);
    const auto fresh = moe.forward(x);
    EXPECT_TRUE(reused.output == fresh.output) << n;
    EXPECT_EQ(reused.stats.dropped, fresh.stats.dropped);
    EXPECT_EQ(reused.stats.tokens_per_expert, fresh.stats.tokens_per_expert);
    EXPECT_EQ(reused.stats.load_balance_loss, fresh.stats.load_balance_loss);
    EXPECT_EQ(reused.routing.dispatch, fresh.routing.dispatch);
    EXPECT_EQ(reused.routing.lse, fresh.routing.lse);
    moe.router().route_into(x, routed);
    EXPECT_EQ(routed.kept, fresh.routing.kept);
    EXPECT_EQ(routed.gates, fresh.routing.gates);
    ASSERT_EQ(static_cast<std::size_t>(reused.expert_outputs.rows()),
              reused.routing.dispatch.size());
    for (std::size_t i = 0; i < reused.routing.dispatch.size(); ++i) {
      const auto& a = reused.routing.dispatch[i];
      const auto ii = static_cast<Eigen::Index>(i);
      const auto ti = static_cast<Eigen::Index>(a.token);
      for (Eigen::Index c = 0; c < 4; ++c)
        EXPECT_EQ(reused.expert_outputs(ii, c),
                  static_cast<T>(static_cast<double>(a.expert + 1)) * x(ti, c));
    }
    // lse is the z-loss term: mean lse² = L_z.
    double z = 0.0;
    for (const T v : reused.routing.lse) z += static_cast<double>(v) * static_cast<double>(v);
    if (n > 0)
      expect_near_rel(z / static_cast<double>(n), static_cast<double>(reused.stats.router_z_loss),
                      kTol<T>, "lse");
  }
}

// A single token is never dropped, however small the capacity factor (C ≥ 1).
TYPED_TEST(MoeTest, SingleTokenNeverDropped) {
  using T = TypeParam;
  const ra::moe_attention<T> moe(
      ra::moe_config{.dim = 3, .num_experts = 8, .top_k = 1, .capacity_factor = 1e-6});
  const auto r = moe.forward(mat<T>(1, 3, {0.3, -1, 2}));
  EXPECT_EQ(r.stats.capacity, 1u);
  EXPECT_TRUE(r.stats.dropped.empty());
  EXPECT_GT(static_cast<double>(r.output.cwiseAbs().maxCoeff()), 0.0);
}

// ================================================================================================
// Jitter and determinism
// ================================================================================================

TYPED_TEST(MoeTest, JitterIsSeededAndTrainingOnly) {
  using T = TypeParam;
  const std::size_t d = 8, E = 4, N = 50;
  const ra::row_matrix<T> x = to_eigen<T>(orc::random_matrix(N, d, 5));
  const auto make = [&](ra::router_jitter j) {
    return ra::moe_attention<T>(ra::moe_config{.dim = d,
                                               .num_experts = E,
                                               .top_k = 2,
                                               .hidden_dim = 8,
                                               .jitter = j,
                                               .jitter_eps = 0.1,
                                               .seed = 9});
  };
  const auto clean = make(ra::router_jitter::none).forward(x);
  for (const auto j : {ra::router_jitter::multiplicative, ra::router_jitter::additive}) {
    const auto moe = make(j);
    // Inference: deterministic, identical to the un-jittered layer whatever the seed.
    const auto inf1 = moe.forward(x, {.train = false, .seed = 1});
    const auto inf2 = moe.forward(x, {.train = false, .seed = 2});
    EXPECT_TRUE(inf1.routing.logits == clean.routing.logits);
    EXPECT_TRUE(inf2.output == clean.output);
    // Training: same seed → bit-identical; different seed → different jitter.
    const auto a = moe.forward(x, {.train = true, .seed = 42});
    const auto b = moe.forward(x, {.train = true, .seed = 42});
    const auto c = moe.forward(x, {.train = true, .seed = 43});
    EXPECT_TRUE(a.routing.logits == b.routing.logits);
    EXPECT_TRUE(a.output == b.output);
    EXPECT_EQ(a.stats.load_balance_loss, b.stats.load_balance_loss);
    EXPECT_FALSE(a.routing.logits == c.routing.logits);
    EXPECT_FALSE(a.routing.logits == clean.routing.logits);
  }
}

// The size of the jitter: multiplicative u ∈ [1 − ε, 1 + ε] moves logit e by at most
// ε·Σ_j |x_j W_ej|; additive noise ε·N(0, 1) has mean ≈ 0 and standard deviation ≈ ε.
TYPED_TEST(MoeTest, JitterMagnitude) {
  using T = TypeParam;
  const std::size_t d = 6, E = 4, N = 1024;
  const double eps = 0.05;
  const ra::row_matrix<T> x = to_eigen<T>(orc::random_matrix(N, d, 8));
  for (const auto j : {ra::router_jitter::multiplicative, ra::router_jitter::additive}) {
    const ra::top_k_router<T> r(ra::router_config{
        .dim = d, .num_experts = E, .top_k = 1, .jitter = j, .jitter_eps = eps, .seed = 3});
    const auto clean = r.route(x);
    const auto noisy = r.route(x, {.train = true, .seed = 77});
    double sum = 0.0, sq = 0.0;
    for (std::size_t t = 0; t < N; ++t)
      for (std::size_t e = 0; e < E; ++e) {
        const auto ti = static_cast<Eigen::Index>(t), ei = static_cast<Eigen::Index>(e);
        const double delta =
            static_cast<double>(noisy.logits(ti, ei)) - static_cast<double>(clean.logits(ti, ei));
        sum += delta;
        sq += delta * delta;
        if (j == ra::router_jitter::multiplicative) {
          double bound = 0.0;
          for (std::size_t c = 0; c < d; ++c)
            bound += std::abs(static_cast<double>(x(ti, static_cast<Eigen::Index>(c))) *
                              static_cast<double>(r.weight()(ei, static_cast<Eigen::Index>(c))));
          EXPECT_LE(std::abs(delta), eps * bound * (1 + 1e-4) + 1e-5);
        }
      }
    if (j == ra::router_jitter::additive) {
      const double n = static_cast<double>(N * E);
      const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
      EXPECT_LT(std::abs(mean), 4.0 * eps / std::sqrt(n));
      EXPECT_NEAR(sd, eps, 0.05 * eps);  // 4096 draws: the sd's sd is ≈ 1.1% of ε
    }
  }
}

// Results do not depend on the thread count (fixed blocking; serial jitter draws).
TYPED_TEST(MoeTest, ThreadCountDoesNotChangeResults) {
  using T = TypeParam;
  const ra::row_matrix<T> x = to_eigen<T>(orc::random_matrix(600, 8, 21));
  ra::moe_config cfg{.dim = 8,
                     .num_experts = 5,
                     .top_k = 2,
                     .hidden_dim = 12,
                     .capacity_factor = 1.0,
                     .jitter = ra::router_jitter::multiplicative,
                     .seed = 4,
                     .expert_block = 16};
  const ra::moe_attention<T> moe(cfg);
  ra::set_num_threads(1);
  const auto a = moe.forward(x, {.train = true, .seed = 5});
  ra::set_num_threads(2);
  const auto b = moe.forward(x, {.train = true, .seed = 5});
  ra::set_num_threads(0);
  EXPECT_TRUE(a.output == b.output);
  EXPECT_TRUE(a.routing.logits == b.routing.logits);
  EXPECT_EQ(a.stats.dropped, b.stats.dropped);
  EXPECT_FALSE(a.stats.dropped.empty());  // capacity 1.0 with 600 tokens does overflow
}

// The seeded layer is reproducible: the same config builds identical weights and outputs, and
// expert e uses seed + 1 + e.
TYPED_TEST(MoeTest, SeededLayerIsReproducible) {
  using T = TypeParam;
  const ra::moe_config cfg{.dim = 5, .num_experts = 3, .top_k = 2, .seed = 17};
  const ra::moe_attention<T> a(cfg), b(cfg);
  EXPECT_TRUE(a.router().weight() == b.router().weight());
  const auto* e1 = a.experts()[1].template target<ra::feed_forward_expert<T>>();
  ASSERT_NE(e1, nullptr);
  const ra::feed_forward_expert<T> direct(ra::feed_forward_config{.dim = 5, .seed = 19});
  EXPECT_TRUE(e1->weights().w1 == direct.weights().w1);
  // Router init: N(0, 0.1/d) truncated to ±2σ.
  const double sigma = std::sqrt(0.1 / 5.0);
  EXPECT_LE(static_cast<double>(a.router().weight().cwiseAbs().maxCoeff()), 2.0 * sigma + 1e-7);
  const ra::row_matrix<T> x = to_eigen<T>(orc::random_matrix(10, 5, 1));
  EXPECT_TRUE(a.forward(x).output == b.forward(x).output);
}

// ================================================================================================
// Errors
// ================================================================================================

TYPED_TEST(MoeTest, ConfigErrors) {
  using T = TypeParam;
  const auto build = [](ra::router_config c) { return ra::top_k_router<T>(c); };
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { (void)build({.dim = 4, .num_experts = 3, .top_k = 4}); }),
                     "top_k");
  EXPECT_THROW((void)build({.dim = 4, .num_experts = 3, .top_k = 0}), ra::invalid_config);
  EXPECT_THROW((void)build({.dim = 0, .num_experts = 3}), ra::invalid_config);
  EXPECT_THROW((void)build({.dim = 4, .num_experts = 0}), ra::invalid_config);
  for (const double cf : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>([&] {
                         (void)build({.dim = 4, .num_experts = 3, .capacity_factor = cf});
                       }),
                       "capacity_factor");
  }
  EXPECT_THROW((void)build({.dim = 4, .num_experts = 3, .jitter_eps = -0.1}), ra::invalid_config);
  EXPECT_THROW((void)build({.dim = 4,
                            .num_experts = 3,
                            .jitter = ra::router_jitter::multiplicative,
                            .jitter_eps = 1.0}),
               ra::invalid_config);
  EXPECT_THROW((void)ra::moe_attention<T>(ra::moe_config{.dim = 4, .num_experts = 2, .top_k = 3}),
               ra::invalid_config);
  EXPECT_THROW(
      (void)ra::moe_attention<T>(ra::moe_config{.dim = 4, .num_experts = 2, .expert_block = 0}),
      ra::invalid_config);
  // Experts vs router.
  ra::top_k_router<T> r(ra::router_config{.dim = 2, .num_experts = 3});
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_config>(
                         [&] { (void)ra::moe_attention<T>(r, {scaling_expert<T>(2, 1.0)}); }),
                     "1 experts");
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_config>([&] {
        (void)ra::moe_attention<T>(
            r, {scaling_expert<T>(2, 1.0), ra::any_expert<T>{}, scaling_expert<T>(2, 1.0)});
      }),
      "experts[1]");
  // Router weights.
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { r.set_weights(ra::row_matrix<T>::Ones(3, 3)); }),
      "router weight.cols()");
  EXPECT_THROW(r.set_weights(ra::row_matrix<T>::Ones(3, 2), evec<T>({1, 2})),
               ra::dimension_mismatch);
  auto nan_w = ra::row_matrix<T>::Ones(3, 2).eval();
  nan_w(2, 1) = std::numeric_limits<T>::infinity();
  EXPECT_THROW(r.set_weights(nan_w), ra::non_finite_input);
}

TYPED_TEST(MoeTest, CallErrors) {
  using T = TypeParam;
  const ra::moe_attention<T> moe(ra::moe_config{.dim = 4, .num_experts = 3, .top_k = 2});
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)moe.forward(ra::row_matrix<T>::Ones(2, 5)); }),
                     "tokens.cols()");
  auto x = ra::row_matrix<T>::Ones(3, 4).eval();
  x(1, 3) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)moe.forward(x); }),
                     "tokens[1][3]");
  x(1, 3) = std::numeric_limits<T>::max();  // finite, but the logits overflow
  ra::top_k_router<T> big(ra::router_config{.dim = 4, .num_experts = 3, .top_k = 2});
  big.set_weights(ra::row_matrix<T>::Constant(3, 4, T(1e3)));
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>([&] { (void)big.route(x); }), "token 1");
  const std::vector<T> q(3, T(1));
  const ra::row_matrix<T> kv = ra::row_matrix<T>::Ones(2, 4);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)moe.compute(std::span<const T>(q), kv, kv); }),
                     "query.size()");
  // Experts whose output widths differ.
  const ra::moe_attention<T> mixed(
      ra::top_k_router<T>(ra::router_config{.dim = 2, .num_experts = 2}),
      {scaling_expert<T>(2, 1.0),
       ra::function_expert<T>(
           2, 3, [](const ra::matrix_cref<T>&, ra::matrix_ref<T> o) { o.setZero(); })});
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)mixed.forward(ra::row_matrix<T>::Ones(2, 2)); }),
                     "experts[1] output width");
}

}  // namespace
