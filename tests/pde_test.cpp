// Graph Laplacians (pde/laplacian.hpp), heat diffusion (pde/diffusion.hpp) and diffusion
// attention (pde/diffusion_attention.hpp), for float and double.
//
// Oracle: `pde_oracle` below, written from the formulas in double precision with Eigen's dense
// types and solvers only (no library header): brute-force pairwise distances and kNN lists
// (ties by smaller index), the Gaussian kernel, max/mean symmetrisation as dense matrices, the
// three Laplacians as dense matrices, exp(−tL) by the eigendecomposition of a symmetric L
// (SelfAdjointEigenSolver) or by Eigen's unsupported MatrixFunctions (Padé scaling and squaring)
// for the non-symmetric L_rw, the median, the Dirichlet forms as double sums, and a plain
// softmax attention. It always sees the inputs rounded to T. Closed forms are used where they
// exist (scaled Bessel values from std::cyl_bessel_i, exp(−tλ) from std::exp).
//
// Tolerances, checked as max |got − ref| / max(|ref|, 1) unless stated:
// - float: 2e-5. Keys are N(0,1) with d ≤ 8; σ-scaled squared distances and kernel weights are
//   O(1) and carry a few float roundings (~d·6e-8 relative); degrees sum ≤ 2k of them. Diffusion
//   adds ≈ (K + 1)·6e-8 with Chebyshev degree K ≤ 30, i.e. ≤ 2e-6; the softmax and the output
//   (a convex combination) keep that level. 2e-5 leaves ~10× headroom; a wrong normalisation,
//   neighbour or coefficient moves values by ≥ 1e-3.
// - double: 1e-10 (Chebyshev tolerance 1e-12 plus ~K·1e-16 rounding; observed ≤ 1e-13).
// Euler is compared with a tolerance derived from its O(h) global error (see each test).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/pde/diffusion.hpp"
#include "ruvector/attention/pde/diffusion_attention.hpp"
#include "ruvector/attention/pde/laplacian.hpp"
#include "support/helpers.hpp"

// The oracle's dense eigensolver and matrix exponential, inside the library's guard for GCC 12's
// false-positive -Wuninitialized in its AVX-512 intrinsics (see detail/eigen.hpp).
#include "ruvector/attention/config.hpp"
RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <Eigen/Eigenvalues>
#include <unsupported/Eigen/MatrixFunctions>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

namespace ra = ruvector::attention;

// ---------------------------------------------------------------------------------------------
// Independent oracle (Eigen dense + std only).
namespace pde_oracle {

using Eigen::MatrixXd;
using Eigen::VectorXd;

enum class lap { comb, sym, rw };

inline MatrixXd sq_dists(const MatrixXd& x) {
  const Eigen::Index n = x.rows();
  MatrixXd d(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) d(i, j) = (x.row(i) - x.row(j)).squaredNorm();
  return d;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size();
  return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

// kNN lists: knn[i] = the k nearest j != i, ascending by (distance, index).
inline std::vector<std::vector<Eigen::Index>> knn(const MatrixXd& d2, std::size_t k) {
  const Eigen::Index n = d2.rows();
  std::vector<std::vector<Eigen::Index>> out(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    std::vector<Eigen::Index> c;
    for (Eigen::Index j = 0; j < n; ++j)
      if (j != i) c.push_back(j);
    std::sort(c.begin(), c.end(), [&](Eigen::Index a, Eigen::Index b) {
      return d2(i, a) < d2(i, b) || (d2(i, a) == d2(i, b) && a < b);
    });
    c.resize(k);
    out[static_cast<std::size_t>(i)] = c;
  }
  return out;
}

// std::exp element-wise (Eigen's vectorised exp clamps its argument near −709, so it returns
// ~1e-308 instead of 0 for a far outlier).
inline double expd(double v) { return std::exp(v); }

// Fully connected Gaussian weights.
inline MatrixXd dense_weights(const MatrixXd& x, double sigma) {
  MatrixXd w = (-sq_dists(x) / (2 * sigma * sigma)).unaryExpr(&expd);
  w.diagonal().setZero();
  return w;
}

// Symmetrised kNN Gaussian weights (max or mean).
inline MatrixXd knn_weights(const MatrixXd& x, std::size_t k, double sigma, bool use_max) {
  const MatrixXd d2 = sq_dists(x);
  const auto lists = knn(d2, k);
  const Eigen::Index n = x.rows();
  MatrixXd a = MatrixXd::Zero(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j : lists[static_cast<std::size_t>(i)])
      a(i, j) = std::exp(-d2(i, j) / (2 * sigma * sigma));
  if (use_max) return a.cwiseMax(a.transpose());
  return 0.5 * (a + a.transpose());
}

// Median of the kNN distances (the library's default σ for the sparse form).
inline double knn_median_sigma(const MatrixXd& x, std::size_t k) {
  const MatrixXd d2 = sq_dists(x);
  const auto lists = knn(d2, k);
  std::vector<double> v;
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j : lists[static_cast<std::size_t>(i)]) v.push_back(std::sqrt(d2(i, j)));
  return median(v);
}

inline double all_pairs_median_sigma(const MatrixXd& x) {
  const MatrixXd d2 = sq_dists(x);
  std::vector<double> v;
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = i + 1; j < x.rows(); ++j) v.push_back(std::sqrt(d2(i, j)));
  return median(v);
}

// Laplacian of W; isolated nodes (degree 0) get zero rows/columns in L_sym and zero rows in L_rw.
inline MatrixXd laplacian(const MatrixXd& w, lap type) {
  const VectorXd d = w.rowwise().sum();
  const MatrixXd l = MatrixXd(d.asDiagonal()) - w;
  if (type == lap::comb) return l;
  VectorXd s(d.size()), inv(d.size());
  for (Eigen::Index i = 0; i < d.size(); ++i) {
    s(i) = d(i) > 0 ? 1 / std::sqrt(d(i)) : 0.0;
    inv(i) = d(i) > 0 ? 1 / d(i) : 0.0;
  }
  if (type == lap::sym) return s.asDiagonal() * l * s.asDiagonal();
  return inv.asDiagonal() * l;
}

// exp(−tL): eigendecomposition for symmetric L, Padé (MatrixFunctions) otherwise.
inline MatrixXd expm(const MatrixXd& l, double t, bool symmetric) {
  if (symmetric) {
    const Eigen::SelfAdjointEigenSolver<MatrixXd> es(l);
    const VectorXd e = (-t * es.eigenvalues()).unaryExpr(&expd);
    return es.eigenvectors() * e.asDiagonal() * es.eigenvectors().transpose();
  }
  const MatrixXd a = -t * l;
  return a.exp();
}

inline VectorXd softmax(const VectorXd& s) {
  const VectorXd e = (s.array() - s.maxCoeff()).matrix().unaryExpr(&expd);
  return e / e.sum();
}

// Diffusion attention: mean over times of softmax(E_t · scale·Kq)ᵀ V with E_t = exp(−t_r L).
inline VectorXd diffusion_attention(const VectorXd& q, const MatrixXd& keys, const MatrixXd& values,
                                    const std::vector<MatrixXd>& heat, double scale) {
  const VectorXd s = scale * (keys * q);
  VectorXd out = VectorXd::Zero(values.cols());
  for (const MatrixXd& e : heat) out += values.transpose() * softmax(e * s);
  return out / static_cast<double>(heat.size());
}

}  // namespace pde_oracle

namespace {

namespace po = pde_oracle;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using ruvector_test::thrown_message;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 2e-5 : 1e-10;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

static_assert(ra::laplacian_operator<ra::dense_laplacian<float>>);
static_assert(ra::laplacian_operator<ra::sparse_laplacian<double>>);
static_assert(ra::attention_mechanism<ra::diffusion_attention<float>>);
static_assert(ra::attention_mechanism<ra::diffusion_attention<double>>);

constexpr ra::laplacian_type kTypes[] = {ra::laplacian_type::combinatorial,
                                         ra::laplacian_type::symmetric_normalized,
                                         ra::laplacian_type::random_walk};

po::lap to_oracle(ra::laplacian_type t) {
  switch (t) {
    case ra::laplacian_type::combinatorial:
      return po::lap::comb;
    case ra::laplacian_type::symmetric_normalized:
      return po::lap::sym;
    case ra::laplacian_type::random_walk:
      return po::lap::rw;
  }
  return po::lap::comb;
}

// n × d standard normal keys rounded to T (library copy) and the same values in double.
template <class T>
struct points {
  ra::row_matrix<T> lib;
  MatrixXd ref;
};

template <class T>
points<T> random_points(std::size_t n, std::size_t d, std::uint32_t seed, double spread = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, spread);
  points<T> p{ra::row_matrix<T>(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d)),
              MatrixXd(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d))};
  for (Eigen::Index i = 0; i < p.lib.rows(); ++i)
    for (Eigen::Index c = 0; c < p.lib.cols(); ++c) {
      p.lib(i, c) = static_cast<T>(nd(gen));
      p.ref(i, c) = static_cast<double>(p.lib(i, c));
    }
  return p;
}

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd;
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(nd(gen));
  return v;
}

template <class T>
VectorXd to_ref(const std::vector<T>& v) {
  VectorXd r(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) r(static_cast<Eigen::Index>(i)) = v[i];
  return r;
}

template <class M>
MatrixXd to_ref_mat(const M& m) {
  return m.template cast<double>();
}

// max |a − b| / max(max|b|, 1).
double rel_err(const MatrixXd& a, const MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1.0);
}

template <class T>
class PdeTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(PdeTest, Scalars);

// ================================================================================================
// Laplacians
// ================================================================================================

// Dense Laplacians equal the oracle's for given σ and for the default σ (median of all pairwise
// distances), for every type; D − W annihilates the constant vector.
TYPED_TEST(PdeTest, DenseLaplacianMatchesOracle) {
  using T = TypeParam;
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    const auto p = random_points<T>(9 + seed * 5, 2 + seed, seed);
    for (auto type : kTypes) {
      for (bool given : {true, false}) {
        ra::laplacian_options<T> o;
        o.type = type;
        if (given) o.sigma = static_cast<T>(0.8 + 0.3 * seed);
        const auto lib = ra::dense_laplacian<T>::from_keys(p.lib, o);
        const double sigma =
            given ? static_cast<double>(*o.sigma) : po::all_pairs_median_sigma(p.ref);
        EXPECT_NEAR(static_cast<double>(lib.sigma()), sigma, kTol<T> * sigma);
        const MatrixXd ref = po::laplacian(po::dense_weights(p.ref, sigma), to_oracle(type));
        EXPECT_LT(rel_err(to_ref_mat(lib.matrix()), ref), kTol<T>)
            << "seed " << seed << " type " << static_cast<int>(type);
        EXPECT_LT(rel_err(to_ref_mat(lib.weights()), po::dense_weights(p.ref, sigma)), kTol<T>);
        // apply == the stored matrix times x.
        const auto x = random_vector<T>(lib.size(), seed + 7);
        std::vector<T> y(lib.size());
        lib.apply(x, y);
        EXPECT_LT(rel_err(to_ref(y), ref * to_ref(x)), 10 * kTol<T>);
      }
    }
  }
}

// L·1 = 0 for D − W (dense and kNN); the row sums are 0 to rounding of the degrees.
TYPED_TEST(PdeTest, CombinatorialAnnihilatesConstants) {
  using T = TypeParam;
  const auto p = random_points<T>(40, 5, 11);
  ra::laplacian_options<T> o;
  o.type = ra::laplacian_type::combinatorial;
  const auto dense = ra::dense_laplacian<T>::from_keys(p.lib, o);
  const auto sparse = ra::sparse_laplacian<T>::from_keys(p.lib, 6, o);
  const std::vector<T> ones(40, T(1));
  std::vector<T> y(40);
  for (int which = 0; which < 2; ++which) {
    if (which == 0) {
      dense.apply(ones, y);
    } else {
      sparse.apply(ones, y);
    }
    double max_deg = 0;
    const auto deg = which == 0 ? std::span<const T>(dense.degrees()) : sparse.degrees();
    for (T dgr : deg) max_deg = std::max(max_deg, static_cast<double>(dgr));
    for (T v : y) EXPECT_LE(std::abs(static_cast<double>(v)), kTol<T> * max_deg);
  }
}

// The CSR kNN Laplacian equals a dense brute-force construction of the same kNN graph, for both
// symmetrisations, all types, given and default σ; CSR rows are sorted and the structure is the
// oracle's nonzero pattern.
TYPED_TEST(PdeTest, KnnCsrMatchesBruteForce) {
  using T = TypeParam;
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    const std::size_t n = 20 + 7 * seed, k = 2 + seed;
    const auto p = random_points<T>(n, 3 + seed, 100 + seed);
    for (auto sym : {ra::knn_symmetrization::max, ra::knn_symmetrization::mean}) {
      for (auto type : kTypes) {
        for (bool given : {true, false}) {
          ra::laplacian_options<T> o;
          o.type = type;
          o.symmetrize = sym;
          if (given) o.sigma = T(1.5);
          const auto lib = ra::sparse_laplacian<T>::from_keys(p.lib, k, o);
          const double sigma = given ? 1.5 : po::knn_median_sigma(p.ref, k);
          EXPECT_NEAR(static_cast<double>(lib.sigma()), sigma, kTol<T> * sigma);
          const MatrixXd w = po::knn_weights(p.ref, k, sigma, sym == ra::knn_symmetrization::max);
          const MatrixXd ref = po::laplacian(w, to_oracle(type));
          EXPECT_LT(rel_err(to_ref_mat(lib.to_dense()), ref), kTol<T>);
          EXPECT_LT(rel_err(to_ref_mat(lib.weights_dense()), w), kTol<T>);
          std::size_t nz = 0;
          for (Eigen::Index i = 0; i < w.rows(); ++i)
            for (Eigen::Index j = 0; j < w.cols(); ++j) nz += w(i, j) > 0;
          EXPECT_EQ(lib.nnz(), nz);
          for (std::size_t i = 0; i < n; ++i)
            for (std::size_t q = lib.offsets()[i] + 1; q < lib.offsets()[i + 1]; ++q)
              EXPECT_LT(lib.columns()[q - 1], lib.columns()[q]);
          // apply == oracle matrix · x.
          const auto x = random_vector<T>(n, seed);
          std::vector<T> y(n);
          lib.apply(x, y);
          EXPECT_LT(rel_err(to_ref(y), ref * to_ref(x)), 10 * kTol<T>);
        }
      }
    }
  }
}

// L_sym is exactly symmetric with spectrum in [0, 2]; the Gershgorin bounds hold; the
// power-iteration estimate approaches λ_max from below.
TYPED_TEST(PdeTest, SpectrumAndBounds) {
  using T = TypeParam;
  const auto p = random_points<T>(30, 4, 21);
  for (auto type : kTypes) {
    ra::laplacian_options<T> o;
    o.type = type;
    const auto dense = ra::dense_laplacian<T>::from_keys(p.lib, o);
    const auto sparse = ra::sparse_laplacian<T>::from_keys(p.lib, 5, o);
    for (int which = 0; which < 2; ++which) {
      const MatrixXd l = which == 0 ? to_ref_mat(dense.matrix()) : to_ref_mat(sparse.to_dense());
      const double bound = which == 0 ? static_cast<double>(dense.lambda_max_bound())
                                      : static_cast<double>(sparse.lambda_max_bound());
      // Eigenvalues of a symmetric similar matrix for L_rw: D^{1/2} L_rw D^{-1/2}.
      MatrixXd s = l;
      if (type == ra::laplacian_type::random_walk) {
        VectorXd d(l.rows());
        for (Eigen::Index i = 0; i < l.rows(); ++i)
          d(i) = which == 0 ? dense.degrees()[static_cast<std::size_t>(i)]
                            : sparse.degrees()[static_cast<std::size_t>(i)];
        s = d.cwiseSqrt().asDiagonal() * l * d.cwiseSqrt().cwiseInverse().asDiagonal();
        s = 0.5 * (s + s.transpose());
      } else {
        EXPECT_EQ((l - l.transpose()).cwiseAbs().maxCoeff(), 0.0) << "not exactly symmetric";
      }
      const VectorXd ev = Eigen::SelfAdjointEigenSolver<MatrixXd>(s).eigenvalues();
      EXPECT_GE(ev.minCoeff(), -kTol<T> * bound);
      EXPECT_LE(ev.maxCoeff(), bound * (1 + kTol<T>));
      if (type != ra::laplacian_type::combinatorial) {
        EXPECT_LE(ev.maxCoeff(), 2.0 + kTol<T>);
      }
      EXPECT_NEAR(ev.minCoeff(), 0.0, 1e-4);  // the constant (or √d) null vector
      const double est = which == 0 ? static_cast<double>(ra::estimate_lambda_max(dense, 400))
                                    : static_cast<double>(ra::estimate_lambda_max(sparse, 400));
      EXPECT_LE(est, ev.maxCoeff() * (1 + 1e-4));
      EXPECT_GE(est, 0.9 * ev.maxCoeff());
    }
  }
}

// L_rw = D^{-1} L: from the oracle and from the library's own combinatorial Laplacian.
TYPED_TEST(PdeTest, RandomWalkIsDegreeScaledCombinatorial) {
  using T = TypeParam;
  const auto p = random_points<T>(25, 3, 31);
  ra::laplacian_options<T> o;
  o.sigma = T(1);
  o.type = ra::laplacian_type::random_walk;
  const auto rw = ra::sparse_laplacian<T>::from_keys(p.lib, 4, o);
  o.type = ra::laplacian_type::combinatorial;
  const auto comb = ra::sparse_laplacian<T>::from_keys(p.lib, 4, o);
  const MatrixXd w = po::knn_weights(p.ref, 4, 1.0, true);
  const VectorXd d = w.rowwise().sum();
  const MatrixXd ref = d.cwiseInverse().asDiagonal() * (MatrixXd(d.asDiagonal()) - w);
  EXPECT_LT(rel_err(to_ref_mat(rw.to_dense()), ref), kTol<T>);
  VectorXd dl(25);
  for (Eigen::Index i = 0; i < 25; ++i) dl(i) = comb.degrees()[static_cast<std::size_t>(i)];
  EXPECT_LT(rel_err(to_ref_mat(rw.to_dense()),
                    dl.cwiseInverse().asDiagonal() * to_ref_mat(comb.to_dense())),
            kTol<T>);
}

// k ≥ n is clamped to n − 1: the kNN graph is then complete and equals the dense Laplacian.
// n = 1 gives a single isolated node with L = 0.
TYPED_TEST(PdeTest, KnnClampAndSingleNode) {
  using T = TypeParam;
  const auto p = random_points<T>(8, 3, 41);
  ra::laplacian_options<T> o;
  o.sigma = T(1.2);
  o.type = ra::laplacian_type::symmetric_normalized;
  const auto sparse = ra::sparse_laplacian<T>::from_keys(p.lib, 100, o);
  EXPECT_EQ(sparse.k(), 7u);
  EXPECT_EQ(sparse.nnz(), 56u);
  const MatrixXd ref = po::laplacian(po::dense_weights(p.ref, 1.2), po::lap::sym);
  EXPECT_LT(rel_err(to_ref_mat(sparse.to_dense()), ref), kTol<T>);

  const auto one = random_points<T>(1, 3, 42);
  const auto s1 = ra::sparse_laplacian<T>::from_keys(one.lib, 4, o);
  const auto d1 = ra::dense_laplacian<T>::from_keys(one.lib, o);
  EXPECT_EQ(s1.size(), 1u);
  EXPECT_EQ(s1.nnz(), 0u);
  EXPECT_EQ(s1.to_dense()(0, 0), T(0));
  EXPECT_EQ(d1.matrix()(0, 0), T(0));
  EXPECT_EQ(s1.sigma(), T(1.2));
  const std::vector<T> x{T(3.5)};
  const auto y = ra::heat_diffuse(s1, std::span<const T>(x), 2.0);
  EXPECT_EQ(y[0], T(3.5));
}

// A far outlier whose kernel weights underflow to 0 is an isolated node: its rows of L_sym and
// L_rw are zero (Chung's convention) and diffusion leaves its value unchanged, for every type.
TYPED_TEST(PdeTest, IsolatedNodeIsLeftAlone) {
  using T = TypeParam;
  auto p = random_points<T>(12, 2, 51);
  p.lib.row(11).setConstant(T(200));
  p.ref.row(11).setConstant(200.0);
  const auto x = random_vector<T>(12, 52);
  for (auto type : kTypes) {
    ra::laplacian_options<T> o;
    o.sigma = T(1);
    o.type = type;
    const auto dense = ra::dense_laplacian<T>::from_keys(p.lib, o);
    const auto sparse = ra::sparse_laplacian<T>::from_keys(p.lib, 3, o);
    EXPECT_EQ(dense.degrees()[11], T(0));
    EXPECT_EQ(sparse.degrees()[11], T(0));
    const MatrixXd ref = po::laplacian(po::dense_weights(p.ref, 1.0), to_oracle(type));
    EXPECT_LT(rel_err(to_ref_mat(dense.matrix()), ref), kTol<T>);
    EXPECT_EQ(to_ref_mat(dense.matrix()).row(11).cwiseAbs().maxCoeff(), 0.0);
    EXPECT_EQ(to_ref_mat(sparse.to_dense()).row(11).cwiseAbs().maxCoeff(), 0.0);
    for (auto method : {ra::diffusion_method::chebyshev, ra::diffusion_method::euler}) {
      ra::diffusion_options d;
      d.method = method;
      const auto y = ra::heat_diffuse(sparse, std::span<const T>(x), 1.5, d);
      // Euler: x_i − h·0 exactly; Chebyshev: p(0) = 1 up to its tolerance.
      if (method == ra::diffusion_method::euler) {
        EXPECT_EQ(y[11], x[11]);
      } else {
        EXPECT_NEAR(y[11], x[11], kTol<T>);
      }
      for (T v : y) EXPECT_TRUE(std::isfinite(v));
    }
  }
}

// from_weights: a path graph's combinatorial spectrum 2 − 2cos(πj/n) (closed form).
TYPED_TEST(PdeTest, FromWeightsPathGraphSpectrum) {
  using T = TypeParam;
  const int n = 9;
  ra::row_matrix<T> w = ra::row_matrix<T>::Zero(n, n);
  for (int i = 0; i + 1 < n; ++i) w(i, i + 1) = w(i + 1, i) = T(1);
  const auto lap = ra::dense_laplacian<T>::from_weights(w, ra::laplacian_type::combinatorial);
  VectorXd ev = Eigen::SelfAdjointEigenSolver<MatrixXd>(to_ref_mat(lap.matrix())).eigenvalues();
  const double pi = std::acos(-1.0);
  for (int j = 0; j < n; ++j) EXPECT_NEAR(ev(j), 2 - 2 * std::cos(pi * j / n), 1e-5);
  EXPECT_EQ(lap.lambda_max_bound(), T(4));
}

// ================================================================================================
// Energy
// ================================================================================================

// E(x) = xᵀ(D − W)x = ½ Σ W_ij (x_i − x_j)² (dense and kNN, against the oracle's double sum);
// the L_rw energy xᵀ D L_rw x equals the same form; xᵀ L_sym x = ½ Σ W_ij (x_i/√d_i − x_j/√d_j)².
TYPED_TEST(PdeTest, EnergyEqualsDirichletForm) {
  using T = TypeParam;
  const auto p = random_points<T>(30, 4, 61);
  const auto x = random_vector<T>(30, 62);
  const VectorXd xr = to_ref(x);
  for (int which = 0; which < 2; ++which) {
    const MatrixXd w =
        which == 0 ? po::dense_weights(p.ref, 1.3) : po::knn_weights(p.ref, 5, 1.3, true);
    const VectorXd d = w.rowwise().sum();
    double form = 0, nform = 0;
    for (Eigen::Index i = 0; i < 30; ++i)
      for (Eigen::Index j = 0; j < 30; ++j) {
        form += 0.5 * w(i, j) * (xr(i) - xr(j)) * (xr(i) - xr(j));
        const double u = xr(i) / std::sqrt(d(i)) - xr(j) / std::sqrt(d(j));
        nform += 0.5 * w(i, j) * u * u;
      }
    for (auto type : kTypes) {
      ra::laplacian_options<T> o;
      o.sigma = T(1.3);
      o.type = type;
      T energy = 0, dirichlet = 0;
      if (which == 0) {
        const auto lap = ra::dense_laplacian<T>::from_keys(p.lib, o);
        energy = ra::diffusion_energy(lap, std::span<const T>(x));
        dirichlet = lap.dirichlet_form(x);
      } else {
        const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 5, o);
        energy = ra::diffusion_energy(lap, std::span<const T>(x));
        dirichlet = lap.dirichlet_form(x);
      }
      const double expect = type == ra::laplacian_type::symmetric_normalized ? nform : form;
      EXPECT_NEAR(energy, expect, 10 * kTol<T> * std::max(expect, 1.0));
      EXPECT_NEAR(dirichlet, form, 10 * kTol<T> * std::max(form, 1.0));
    }
  }
}

// The energy is non-increasing along the diffusion (Chebyshev multiscale and Euler), every type.
TYPED_TEST(PdeTest, EnergyNonIncreasingAlongDiffusion) {
  using T = TypeParam;
  const auto p = random_points<T>(40, 4, 71);
  const auto x = random_vector<T>(40, 72);
  const std::vector<double> times{0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2};
  for (auto type : kTypes) {
    ra::laplacian_options<T> o;
    o.type = type;
    const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 6, o);
    for (auto method : {ra::diffusion_method::chebyshev, ra::diffusion_method::euler}) {
      ra::diffusion_options d;
      d.method = method;
      d.dt = 0.05;
      const auto xs = ra::heat_diffuse_multiscale(lap, std::span<const T>(x), times, d);
      double prev = std::numeric_limits<double>::infinity();
      for (Eigen::Index r = 0; r < xs.rows(); ++r) {
        const std::vector<T> row(xs.row(r).data(), xs.row(r).data() + xs.cols());
        const double e = ra::diffusion_energy(lap, std::span<const T>(row));
        EXPECT_LE(e, prev + kTol<T> * 10) << "time " << times[static_cast<std::size_t>(r)];
        EXPECT_GE(e, -kTol<T>);
        prev = e;
      }
      EXPECT_LT(prev, 0.2 * ra::diffusion_energy(lap, std::span<const T>(x)));
    }
  }
}

// ================================================================================================
// Heat diffusion
// ================================================================================================

// Scaled Bessel values against std::cyl_bessel_i and the series against std::exp.
TEST(PdeChebyshev, CoefficientsMatchClosedForms) {
  for (double alpha : {0.0, 0.3, 1.0, 1.5, 5.0, 40.0, 300.0}) {
    const double b = 2.0, t = alpha;  // α = t·b/2
    for (double tol : {1e-3, 1e-8, 1e-14}) {
      const auto s = ra::chebyshev_heat_coefficients(t, b, tol);
      EXPECT_LE(s.error_bound, tol);
      EXPECT_DOUBLE_EQ(s.alpha, alpha);
      for (std::size_t k = 0; k < s.coefficients.size(); ++k) {
        const double ref = (k == 0 ? 1.0 : 2.0 * (k % 2 ? -1.0 : 1.0)) *
                           std::cyl_bessel_i(static_cast<double>(k), alpha) * std::exp(-alpha);
        EXPECT_NEAR(s.coefficients[k], ref, 1e-13 * std::max(1.0, std::abs(ref)) + 1e-300)
            << "alpha " << alpha << " k " << k;
      }
      for (double lambda = 0.0; lambda <= b; lambda += 0.05) {
        const double u = std::clamp(lambda / b * 2 - 1, -1.0, 1.0);
        double p = 0;
        for (std::size_t k = 0; k < s.coefficients.size(); ++k)
          p += s.coefficients[k] * std::cos(static_cast<double>(k) * std::acos(u));
        EXPECT_NEAR(p, std::exp(-t * lambda), s.error_bound + 1e-13);
      }
    }
  }
  // Degree grows like √α, not α.
  EXPECT_LT(ra::chebyshev_heat_coefficients(10000.0, 2.0, 1e-8).coefficients.size(), 1000u);
}

// Chebyshev and (small-step) Euler against the oracle's exact exp(−tL)x, dense and kNN, all
// types, several times.
TYPED_TEST(PdeTest, HeatKernelMatchesExpm) {
  using T = TypeParam;
  for (std::uint32_t seed = 1; seed <= 2; ++seed) {
    const auto p = random_points<T>(24 + 8 * seed, 3, 80 + seed);
    const auto x = random_vector<T>(p.lib.rows(), 90 + seed);
    for (auto type : kTypes) {
      ra::laplacian_options<T> o;
      o.type = type;
      o.sigma = T(1.4);
      const auto dense = ra::dense_laplacian<T>::from_keys(p.lib, o);
      const auto sparse = ra::sparse_laplacian<T>::from_keys(p.lib, 5, o);
      const MatrixXd ld = po::laplacian(po::dense_weights(p.ref, 1.4), to_oracle(type));
      const MatrixXd ls = po::laplacian(po::knn_weights(p.ref, 5, 1.4, true), to_oracle(type));
      const bool symmetric = type != ra::laplacian_type::random_walk;
      for (double t : {0.1, 1.0, 5.0}) {
        const VectorXd ref_d = po::expm(ld, t, symmetric) * to_ref(x);
        const VectorXd ref_s = po::expm(ls, t, symmetric) * to_ref(x);
        std::vector<T> y(x.size());
        ra::diffusion_report rep;
        rep = ra::heat_chebyshev(dense, std::span<const T>(x), t, std::span<T>(y),
                                 std::is_same_v<T, float> ? 1e-7 : 1e-12);
        EXPECT_LT(rel_err(to_ref(y), ref_d), kTol<T>) << "dense t " << t;
        EXPECT_EQ(rep.matvecs, rep.chebyshev_degree);
        rep = ra::heat_chebyshev(sparse, std::span<const T>(x), t, std::span<T>(y),
                                 std::is_same_v<T, float> ? 1e-7 : 1e-12);
        EXPECT_LT(rel_err(to_ref(y), ref_s), kTol<T>) << "sparse t " << t;
        // Euler, h ≤ 1e-3: global error ≲ t·h·max|λ|²·‖x‖/2 ≲ 5·1e-3·4·‖x‖∞... checked at 2e-2.
        if (type != ra::laplacian_type::combinatorial) {
          rep = ra::heat_euler(sparse, std::span<const T>(x), t, 1e-3, std::span<T>(y));
          EXPECT_LT(rel_err(to_ref(y), ref_s), 2e-2) << "euler t " << t;
          EXPECT_FALSE(rep.split);
          EXPECT_EQ(rep.euler_steps, static_cast<std::size_t>(std::llround(t / 1e-3)));
        }
      }
    }
  }
}

// The observed Chebyshev error respects the documented bound ε_K·‖x‖₂ (symmetric L, double).
TEST(PdeChebyshev, ErrorBoundHolds) {
  const auto p = random_points<double>(40, 4, 95);
  const auto x = random_vector<double>(40, 96);
  for (auto type : {ra::laplacian_type::combinatorial, ra::laplacian_type::symmetric_normalized}) {
    ra::laplacian_options<double> o;
    o.type = type;
    const auto lap = ra::sparse_laplacian<double>::from_keys(p.lib, 6, o);
    const MatrixXd l = lap.to_dense();
    for (double tol : {1e-1, 1e-3, 1e-6}) {
      for (double t : {0.5, 3.0}) {
        std::vector<double> y(40);
        const auto rep =
            ra::heat_chebyshev(lap, std::span<const double>(x), t, std::span<double>(y), tol);
        const double err = (to_ref(y) - po::expm(l, t, true) * to_ref(x)).norm();
        EXPECT_LE(err, rep.error_bound * to_ref(x).norm() + 1e-13);
        EXPECT_LE(rep.error_bound, tol);
      }
    }
  }
}

// Euler converges with order 1: halving h halves the error (ratio in [1.8, 2.2]).
TEST(PdeEuler, FirstOrderConvergence) {
  const auto p = random_points<double>(30, 3, 97);
  const auto x = random_vector<double>(30, 98);
  ra::laplacian_options<double> o;
  o.type = ra::laplacian_type::symmetric_normalized;
  const auto lap = ra::sparse_laplacian<double>::from_keys(p.lib, 5, o);
  const VectorXd ref = po::expm(lap.to_dense(), 1.0, true) * to_ref(x);
  std::vector<double> errs;
  for (double h : {0.04, 0.02, 0.01, 0.005}) {
    std::vector<double> y(30);
    (void)ra::heat_euler(lap, std::span<const double>(x), 1.0, h, std::span<double>(y));
    errs.push_back((to_ref(y) - ref).norm());
  }
  for (std::size_t i = 1; i < errs.size(); ++i) {
    EXPECT_GT(errs[i - 1] / errs[i], 1.8);
    EXPECT_LT(errs[i - 1] / errs[i], 2.2);
  }
}

// A step far beyond the stability bound is split automatically (and reported); the result stays
// bounded and accurate, while naive Euler with the caller's step blows up.
TYPED_TEST(PdeTest, EulerStabilityBoundEnforced) {
  using T = TypeParam;
  const auto p = random_points<T>(30, 3, 99, 0.3);  // tight cluster: large degrees
  ra::laplacian_options<T> o;
  o.type = ra::laplacian_type::combinatorial;
  o.sigma = T(1);
  const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 8, o);
  const double b = lap.lambda_max_bound();
  ASSERT_GT(b, 4.0);
  const double dt = 10 * 2 / b, t = 20 * dt;
  const auto x = random_vector<T>(30, 100);
  std::vector<T> y(30);
  const auto rep = ra::heat_euler(lap, std::span<const T>(x), t, dt, std::span<T>(y));
  EXPECT_TRUE(rep.split);
  EXPECT_EQ(rep.requested_steps, 20u);
  EXPECT_GE(rep.euler_steps, static_cast<std::size_t>(std::ceil(t * b / 2)));
  EXPECT_LE(rep.step * b, 2.0);
  EXPECT_LE(to_ref(y).norm(), to_ref(x).norm() * (1 + 1e-5));
  const VectorXd ref = po::expm(to_ref_mat(lap.to_dense()), t, true) * to_ref(x);
  EXPECT_LT(rel_err(to_ref(y), ref), 0.05);
  // Naive: 20 unsplit steps of size dt (done here with apply).
  std::vector<double> naive(x.begin(), x.end());
  std::vector<T> xt(30), lx(30);
  for (int s = 0; s < 20; ++s) {
    for (int i = 0; i < 30; ++i) xt[i] = static_cast<T>(naive[i]);
    lap.apply(xt, lx);
    for (int i = 0; i < 30; ++i) naive[i] -= dt * lx[i];
  }
  double nn = 0;
  for (double v : naive) nn += v * v;
  EXPECT_GT(std::sqrt(nn), 1e6 * to_ref(x).norm());
}

// t = 0 is the identity (exactly), for both methods; `out` may alias `x`.
TYPED_TEST(PdeTest, TimeZeroIsIdentityAndAliasingWorks) {
  using T = TypeParam;
  const auto p = random_points<T>(20, 3, 101);
  const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 4);
  const auto x = random_vector<T>(20, 102);
  for (auto method : {ra::diffusion_method::chebyshev, ra::diffusion_method::euler}) {
    ra::diffusion_options d;
    d.method = method;
    ra::diffusion_report rep;
    const auto y = ra::heat_diffuse(lap, std::span<const T>(x), 0.0, d, &rep);
    EXPECT_EQ(y, x);
    EXPECT_EQ(rep.matvecs, 0u);
    std::vector<T> z = x;
    const auto expect = ra::heat_diffuse(lap, std::span<const T>(x), 0.7, d);
    (void)ra::heat_diffuse(lap, std::span<const T>(z), 0.7, std::span<T>(z), d);
    EXPECT_EQ(z, expect);
  }
}

// Conserved quantities: Σ x for D − W (1ᵀL = 0), Σ d_i x_i for L_rw (dᵀL_rw = 1ᵀL = 0),
// Σ √d_i x_i for L_sym; and the limit t → ∞ is the (weighted) mean on a connected graph.
TYPED_TEST(PdeTest, DiffusionConservesMass) {
  using T = TypeParam;
  const auto p = random_points<T>(36, 3, 103);
  const auto x = random_vector<T>(36, 104);
  for (auto type : kTypes) {
    ra::laplacian_options<T> o;
    o.type = type;
    const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 6, o);
    const auto deg = lap.degrees();
    const auto weight = [&](std::size_t i) {
      switch (type) {
        case ra::laplacian_type::combinatorial:
          return 1.0;
        case ra::laplacian_type::random_walk:
          return static_cast<double>(deg[i]);
        case ra::laplacian_type::symmetric_normalized:
          return std::sqrt(static_cast<double>(deg[i]));
      }
      return 0.0;
    };
    double m0 = 0, scale = 0;
    for (std::size_t i = 0; i < 36; ++i)
      m0 += weight(i) * x[i], scale += weight(i) * std::abs(x[i]);
    for (auto method : {ra::diffusion_method::chebyshev, ra::diffusion_method::euler}) {
      ra::diffusion_options d;
      d.method = method;
      for (double t : {0.3, 2.0}) {
        const auto y = ra::heat_diffuse(lap, std::span<const T>(x), t, d);
        double m = 0;
        for (std::size_t i = 0; i < 36; ++i) m += weight(i) * y[i];
        EXPECT_NEAR(m, m0, 10 * kTol<T> * scale) << "type " << static_cast<int>(type);
      }
    }
  }
}

// Multiscale equals separate calls (Chebyshev, shared recurrence) and the oracle (Euler, times
// given out of order).
TYPED_TEST(PdeTest, MultiscaleMatchesSeparateCalls) {
  using T = TypeParam;
  const auto p = random_points<T>(30, 3, 105);
  const auto x = random_vector<T>(30, 106);
  const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 5);
  const std::vector<double> times{2.0, 0.25, 0.0, 1.0, 2.0};
  ra::diffusion_report rep;
  const auto ms = ra::heat_diffuse_multiscale(lap, std::span<const T>(x), times, {}, &rep);
  std::size_t max_single = 0;
  for (std::size_t r = 0; r < times.size(); ++r) {
    ra::diffusion_report one;
    const auto y = ra::heat_diffuse(lap, std::span<const T>(x), times[r], {}, &one);
    max_single = std::max(max_single, one.matvecs);
    for (std::size_t i = 0; i < 30; ++i)
      EXPECT_NEAR(ms(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(i)), y[i], kTol<T>);
  }
  EXPECT_EQ(rep.matvecs, max_single);  // shared work: one recurrence for all times
  ra::diffusion_options d;
  d.method = ra::diffusion_method::euler;
  d.dt = 1e-3;
  const auto me = ra::heat_diffuse_multiscale(lap, std::span<const T>(x), times, d, &rep);
  EXPECT_EQ(rep.euler_steps, 2000u);  // 0 → 0.25 → 1 → 2 integrated once
  const MatrixXd l = to_ref_mat(lap.to_dense());
  for (std::size_t r = 0; r < times.size(); ++r) {
    const VectorXd ref = po::expm(l, times[r], true) * to_ref(x);
    EXPECT_LT(rel_err(to_ref_mat(me.row(static_cast<Eigen::Index>(r))).transpose(), ref), 1e-2);
  }
}

// ================================================================================================
// Diffusion attention
// ================================================================================================

// Against the oracle (brute-force kNN graph, exact expm, softmax, average), all types, one and
// several times, Chebyshev; and Euler with h = 1e-3 (O(h) error, checked at 5e-3).
TYPED_TEST(PdeTest, DiffusionAttentionMatchesReference) {
  using T = TypeParam;
  for (std::uint32_t seed = 1; seed <= 2; ++seed) {
    const std::size_t n = 30 + 10 * seed, d = 6, dv = 5;
    const auto keys = random_points<T>(n, d, 200 + seed);
    const auto vals = random_points<T>(n, dv, 300 + seed);
    const auto q = random_points<T>(3, d, 400 + seed);
    for (auto type : kTypes) {
      for (const auto& times : {std::vector<double>{0.7}, std::vector<double>{0.2, 1.0, 3.0}}) {
        for (auto method : {ra::diffusion_method::chebyshev, ra::diffusion_method::euler}) {
          ra::diffusion_attention_config<T> c;
          c.k = 7;
          c.type = type;
          c.times = times;
          c.method = method;
          c.euler_dt = 1e-3;
          const ra::diffusion_attention<T> att(d, c);
          const auto graph = att.prepare_keys(keys.lib);
          const double sigma = po::knn_median_sigma(keys.ref, 7);
          const MatrixXd l =
              po::laplacian(po::knn_weights(keys.ref, 7, sigma, true), to_oracle(type));
          const auto out = att.forward(q.lib, graph, vals.lib);
          std::vector<MatrixXd> heat;
          for (double t : times)
            heat.push_back(po::expm(l, t, type != ra::laplacian_type::random_walk));
          for (Eigen::Index i = 0; i < 3; ++i) {
            const VectorXd ref = po::diffusion_attention(q.ref.row(i).transpose(), keys.ref,
                                                         vals.ref, heat, 1 / std::sqrt(double(d)));
            const double tol = method == ra::diffusion_method::euler ? 5e-3 : kTol<T>;
            EXPECT_LT(rel_err(to_ref_mat(out.row(i)).transpose(), ref), tol)
                << "type " << static_cast<int>(type) << " m " << times.size();
            const std::span<const T> qi(q.lib.row(i).data(), d);
            const auto w = att.compute_with_weights(qi, graph, vals.lib);
            EXPECT_EQ(static_cast<std::size_t>(w.weights.rows()), times.size());
            for (Eigen::Index r = 0; r < w.weights.rows(); ++r)
              EXPECT_NEAR(w.weights.row(r).template cast<double>().sum(), 1.0, 1e-5);
            EXPECT_LT(rel_err(to_ref(w.output), ref), tol);
          }
        }
      }
    }
  }
}

// t = 0 reduces to softmax attention; the unprepared vector API equals the prepared one; n = 1
// returns v_0.
TYPED_TEST(PdeTest, DiffusionAttentionSpecialCases) {
  using T = TypeParam;
  const auto keys = random_points<T>(25, 4, 501);
  const auto vals = random_points<T>(25, 3, 502);
  const auto q = random_vector<T>(4, 503);
  ra::diffusion_attention_config<T> c;
  c.times = {0.0};
  const ra::diffusion_attention<T> att0(4, c);
  const auto out0 = att0.compute(std::span<const T>(q), keys.lib, vals.lib);
  const VectorXd ref0 =
      vals.ref.transpose() * po::softmax(0.5 * (keys.ref * to_ref(q)));  // scale 1/√4
  EXPECT_LT(rel_err(to_ref(out0), ref0), kTol<T>);

  const ra::diffusion_attention<T> att(4);
  const auto g = att.prepare_keys(keys.lib);
  EXPECT_EQ(att.compute(std::span<const T>(q), keys.lib, vals.lib),
            att.compute(std::span<const T>(q), g, vals.lib));
  // Diffusion changes the result (the test can fail).
  EXPECT_GT(rel_err(to_ref(att.compute(std::span<const T>(q), g, vals.lib)), ref0), 1e-4);

  const auto one_k = random_points<T>(1, 4, 504);
  const auto one_v = random_points<T>(1, 3, 505);
  const auto o1 = att.compute(std::span<const T>(q), one_k.lib, one_v.lib);
  for (int c2 = 0; c2 < 3; ++c2) EXPECT_NEAR(o1[c2], one_v.lib(0, c2), 1e-6);
}

// ================================================================================================
// Errors
// ================================================================================================

TYPED_TEST(PdeTest, ErrorsNameTheProblem) {
  using T = TypeParam;
  const auto p = random_points<T>(10, 3, 601);
  const auto lap = ra::sparse_laplacian<T>::from_keys(p.lib, 3);
  const auto x = random_vector<T>(10, 602);
  std::vector<T> y9(9), y(10);
  // Laplacian construction.
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::sparse_laplacian<T>::from_keys(p.lib, 0); }),
                     "k");
  ra::laplacian_options<T> bad;
  bad.sigma = T(0);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::dense_laplacian<T>::from_keys(p.lib, bad); }),
                     "sigma");
  auto nan_keys = p.lib;
  nan_keys(4, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)ra::sparse_laplacian<T>::from_keys(nan_keys, 3); }),
                     "keys[4][1]");
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)ra::dense_laplacian<T>::from_keys(nan_keys); }),
                     "keys[4][1]");
  const ra::row_matrix<T> empty(0, 3);
  (void)thrown_message<ra::invalid_argument>(
      [&] { (void)ra::sparse_laplacian<T>::from_keys(empty, 3); });
  ra::row_matrix<T> asym = ra::row_matrix<T>::Zero(3, 3);
  asym(0, 1) = T(1);
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([&] {
                       (void)ra::dense_laplacian<T>::from_weights(
                           asym, ra::laplacian_type::combinatorial);
                     }),
                     "weights[0][1]");
  // apply / energy sizes.
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] { lap.apply(x, y9); }), "y.size()");
  (void)thrown_message<ra::dimension_mismatch>([&] { (void)lap.energy(y9); });
  // Diffusion.
  (void)thrown_message<ra::dimension_mismatch>(
      [&] { (void)ra::heat_diffuse(lap, std::span<const T>(y9), 1.0); });
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::heat_diffuse(lap, std::span<const T>(x), -1.0); }),
                     "times[0] = -1");
  (void)thrown_message<ra::invalid_argument>([&] {
    (void)ra::heat_diffuse(lap, std::span<const T>(x), std::numeric_limits<double>::quiet_NaN());
  });
  auto xn = x;
  xn[3] = std::numeric_limits<T>::infinity();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)ra::heat_diffuse(lap, std::span<const T>(xn), 1.0); }),
                     "x[3]");
  ra::diffusion_options d;
  d.tolerance = 0.0;
  (void)thrown_message<ra::invalid_argument>(
      [&] { (void)ra::heat_diffuse(lap, std::span<const T>(x), 1.0, d); });
  d = {};
  d.method = ra::diffusion_method::euler;
  d.dt = 0.0;
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::heat_diffuse(lap, std::span<const T>(x), 1.0, d); }),
                     "dt");
  d.dt = 0.1;
  d.max_steps = 5;
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::heat_diffuse(lap, std::span<const T>(x), 10.0, d); }),
                     "max_steps");
  d = {};
  d.max_degree = 3;
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>(
                         [&] { (void)ra::heat_diffuse(lap, std::span<const T>(x), 50.0, d); }),
                     "max_degree");
  d = {};
  d.lambda_max = -1.0;
  (void)thrown_message<ra::invalid_argument>(
      [&] { (void)ra::heat_diffuse(lap, std::span<const T>(x), 1.0, d); });
  (void)thrown_message<ra::invalid_argument>([&] { (void)ra::estimate_lambda_max(lap, 0); });
  // Attention config and inputs.
  ra::diffusion_attention_config<T> c;
  c.times = {1.0, -0.5};
  (void)thrown_message<ra::invalid_config>([&] { ra::diffusion_attention<T> a(3, c); });
  c = {};
  c.times.clear();
  (void)thrown_message<ra::invalid_config>([&] { ra::diffusion_attention<T> a(3, c); });
  c = {};
  c.k = 0;
  (void)thrown_message<ra::invalid_config>([&] { ra::diffusion_attention<T> a(3, c); });
  (void)thrown_message<ra::invalid_config>([&] { ra::diffusion_attention<T> a(0); });
  const ra::diffusion_attention<T> att(3);
  const auto g = att.prepare_keys(p.lib);
  const auto q = random_vector<T>(3, 603);
  const auto vals = random_points<T>(10, 2, 604);
  const auto vals9 = random_points<T>(9, 2, 605);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)att.compute(std::span<const T>(q.data(), 2), g, vals.lib); }),
                     "query.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { (void)att.compute(std::span<const T>(q), g, vals9.lib); }),
                     "values.rows()");
  const auto wide = random_points<T>(10, 4, 606);
  (void)thrown_message<ra::dimension_mismatch>([&] { (void)att.prepare_keys(wide.lib); });
  (void)thrown_message<ra::non_finite_input>([&] { (void)att.prepare_keys(nan_keys); });
  auto qn = q;
  qn[1] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)att.compute(std::span<const T>(qn), g, vals.lib); }),
                     "query[1]");
  auto vn = vals.lib;
  vn(7, 1) = std::numeric_limits<T>::infinity();
  EXPECT_MESSAGE_HAS(thrown_message<ra::non_finite_input>(
                         [&] { (void)att.compute(std::span<const T>(q), g, vn); }),
                     "values[7][1]");
}

}  // namespace
