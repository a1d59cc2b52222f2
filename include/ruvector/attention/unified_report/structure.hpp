#pragma once
/// \file structure.hpp
/// \brief Structural metrics of a point set used by the unified report: attention entropy, H0
/// persistence (MST), Gromov four-point δ, and sequence smoothness.
///
/// - **Attention entropy.** H(w) = −Σ w_j ln w_j (0·ln 0 = 0), normalised by ln n (n = number of
///   keys; n = 1 → normalised 0). The logit spread σ is the standard deviation of ln w_j over the
///   keys with w_j > 0; it equals the standard deviation of the attention scores, because
///   ln w_j = s_j − logsumexp(s).
/// - **H0 persistence** of the Vietoris–Rips filtration: every point is born at scale 0 and the
///   H0 classes die at the edge lengths of a Euclidean minimum spanning tree (Edelsbrunner &
///   Harer 2010, §VII; the single-linkage merge heights). We report the n − 1 finite deaths, their
///   sum (total persistence) and their **scale spread**: the standard deviation of log₂(death)
///   over deaths > 0, in octaves. Hierarchical (tree-like) data merge at many scales — a tree whose
///   branches shrink by ½ per level spreads its deaths over one octave per level — while a
///   Gaussian cloud or a smooth curve merges at one scale (spread ≈ 0.2–0.4 octave).
/// - **Gromov δ** (four-point condition, Gromov 1987): for points x, y, z, w let
///   S₁ ≥ S₂ ≥ S₃ be the three sums d(x,y)+d(z,w), d(x,z)+d(y,w), d(x,w)+d(y,z); δ(x,y,z,w) =
///   (S₁ − S₂)/2. A metric tree has δ = 0. We report the maximum over sampled quadruples and
///   δ_rel = 2δ/diam (Khrulkov et al. 2020), with diam the largest distance among the sampled
///   points. Informational: near-equidistant clouds (high-dimensional Gaussians) are also small.
/// - **Sequence smoothness**: median_i ‖x_{i+1} − x_i‖ / median distance of random pairs. ≈ 1
///   for an unordered cloud, ≪ 1 when consecutive rows (tokens) change slowly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/gemv.hpp"

namespace ruvector::attention {

/// \brief Entropy statistics of one attention distribution.
struct entropy_stats {
  double entropy = 0;     ///< H = −Σ w ln w, nats
  double normalized = 0;  ///< H / ln n in [0, 1] (0 when n = 1)
  double logit_std = 0;   ///< standard deviation of ln w over w > 0 (= std of the scores)
};

/// \brief Entropy of attention weights `w` (non-negative, sum 1 within 1e-3; validated).
template <attention_scalar T>
[[nodiscard]] entropy_stats attention_entropy(std::span<const T> w) {
  require_non_empty("attention weights", w.size());
  require_finite("attention weights", w);
  double sum = 0, h = 0, mean_log = 0, m2 = 0;
  std::size_t positive = 0;
  for (const T x : w) {
    require_argument(x >= T(0), "attention_entropy: weights must be non-negative");
    const double v = static_cast<double>(x);
    sum += v;
    if (v > 0) {
      const double l = std::log(v);
      h -= v * l;
      // Welford update of the mean and variance of ln w.
      ++positive;
      const double delta = l - mean_log;
      mean_log += delta / static_cast<double>(positive);
      m2 += delta * (l - mean_log);
    }
  }
  require_argument(std::abs(sum - 1.0) <= 1e-3, "attention_entropy: weights must sum to 1");
  entropy_stats s;
  s.entropy = std::max(h, 0.0);
  const double ln_n = std::log(static_cast<double>(w.size()));
  s.normalized = w.size() > 1 ? std::clamp(s.entropy / ln_n, 0.0, 1.0) : 0.0;
  s.logit_std = positive > 1 ? std::sqrt(m2 / static_cast<double>(positive)) : 0.0;
  return s;
}

/// \brief H0 persistence summary of a point set (see the file comment).
struct h0_summary {
  std::vector<double> deaths;   ///< the n − 1 finite death scales (MST edge lengths), ascending
  double total = 0;             ///< Σ deaths (total persistence)
  double max_death = 0;         ///< the largest finite death
  double scale_spread = 0;      ///< std of log₂(death) over deaths > 0, in octaves
  std::size_t points_used = 0;  ///< points analysed (a seeded subsample when n > max_points)
};

namespace detail {

/// Indices of a seeded subsample of `m` of `n` rows (all rows, in order, when m ≥ n).
inline std::vector<std::size_t> subsample_rows(std::size_t n, std::size_t m, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  if (m >= n) return idx;
  rng gen(seed);
  for (std::size_t i = 0; i < m; ++i) {  // partial Fisher–Yates
    const auto j = i + static_cast<std::size_t>(gen.below(n - i));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(m);
  std::sort(idx.begin(), idx.end());
  return idx;
}

/// Rows `idx` of `points` gathered into a contiguous double matrix (m × d).
template <class T>
std::vector<double> gather_rows(const matrix_cref<T>& points, const std::vector<std::size_t>& idx) {
  const auto d = static_cast<std::size_t>(points.cols());
  std::vector<double> out(idx.size() * d);
  for (std::size_t r = 0; r < idx.size(); ++r)
    for (std::size_t c = 0; c < d; ++c)
      out[r * d + c] = static_cast<double>(
          points(static_cast<Eigen::Index>(idx[r]), static_cast<Eigen::Index>(c)));
  return out;
}

template <class T>
void require_points(std::string_view what, const matrix_cref<T>& points) {
  require_non_empty(what, static_cast<std::size_t>(points.rows()));
  require_non_empty(what, static_cast<std::size_t>(points.cols()));
  require_finite(what, points.data(), static_cast<std::size_t>(points.rows()),
                 static_cast<std::size_t>(points.cols()), points.outerStride());
}

}  // namespace detail

/// \brief H0 persistence of the rows of `points` by Prim's algorithm on the complete Euclidean
/// graph: O(m²·d) time, O(m) memory, m = min(n, max_points) rows (a seeded subsample beyond).
template <attention_scalar T>
[[nodiscard]] h0_summary h0_persistence(const matrix_cref<T>& points, std::size_t max_points = 2048,
                                        std::uint64_t seed = 42) {
  detail::require_points("points", points);
  require_argument(max_points >= 2, "h0_persistence: max_points must be >= 2");
  const auto idx =
      detail::subsample_rows(static_cast<std::size_t>(points.rows()), max_points, seed);
  const std::size_t m = idx.size();
  const auto d = static_cast<std::size_t>(points.cols());
  const std::vector<double> x = detail::gather_rows(points, idx);

  h0_summary s;
  s.points_used = m;
  std::vector<double> best(m, std::numeric_limits<double>::infinity());
  std::vector<double> dist(m);
  std::vector<char> in_tree(m, 0);
  std::size_t current = 0;
  in_tree[0] = 1;
  for (std::size_t step = 1; step < m; ++step) {
    // ‖x_current − x_j‖² for every j, then relax the frontier.
    kernels::row_squared_distances(x.data(), m, d, d, x.data() + current * d, dist.data());
    std::size_t next = m;
    double next_best = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < m; ++j) {
      if (in_tree[j]) continue;
      best[j] = std::min(best[j], dist[j]);
      if (next == m || best[j] < next_best) next = j, next_best = best[j];
    }
    in_tree[next] = 1;
    s.deaths.push_back(std::sqrt(std::max(next_best, 0.0)));
    current = next;
  }
  std::sort(s.deaths.begin(), s.deaths.end());
  double mean = 0, m2 = 0;
  std::size_t count = 0;
  for (const double death : s.deaths) {
    s.total += death;
    s.max_death = std::max(s.max_death, death);
    if (death > 0) {
      const double l = std::log2(death);
      ++count;
      const double delta = l - mean;
      mean += delta / static_cast<double>(count);
      m2 += delta * (l - mean);
    }
  }
  s.scale_spread = count > 1 ? std::sqrt(m2 / static_cast<double>(count)) : 0.0;
  return s;
}

/// \brief Sampled Gromov four-point δ (see the file comment).
struct gromov_delta_stats {
  double delta = 0;     ///< max over sampled quadruples of (S₁ − S₂)/2
  double diameter = 0;  ///< largest distance among the points used
  double relative = 0;  ///< 2δ/diameter in [0, 1] (0 when the diameter is 0)
};

/// \brief Gromov δ of the rows of `points` from `samples` seeded quadruples of a seeded subsample
/// of at most `max_points` rows (distances computed once: O(m²·d + samples)).
template <attention_scalar T>
[[nodiscard]] gromov_delta_stats gromov_delta(const matrix_cref<T>& points,
                                              std::size_t max_points = 256,
                                              std::size_t samples = 20000,
                                              std::uint64_t seed = 42) {
  detail::require_points("points", points);
  require_argument(max_points >= 2, "gromov_delta: max_points must be >= 2");
  const auto idx =
      detail::subsample_rows(static_cast<std::size_t>(points.rows()), max_points, seed);
  const std::size_t m = idx.size();
  const auto d = static_cast<std::size_t>(points.cols());
  const std::vector<double> x = detail::gather_rows(points, idx);
  std::vector<double> dm(m * m);
  for (std::size_t i = 0; i < m; ++i)
    kernels::row_squared_distances(x.data(), m, d, d, x.data() + i * d, dm.data() + i * m);
  gromov_delta_stats s;
  for (double& v : dm) {
    v = std::sqrt(std::max(v, 0.0));
    s.diameter = std::max(s.diameter, v);
  }
  if (m < 4 || s.diameter == 0) return s;
  rng gen(seed ^ 0x9e3779b97f4a7c15ULL);
  for (std::size_t t = 0; t < samples; ++t) {
    const auto a = gen.below(m), b = gen.below(m), c = gen.below(m), e = gen.below(m);
    double sums[3] = {dm[a * m + b] + dm[c * m + e], dm[a * m + c] + dm[b * m + e],
                      dm[a * m + e] + dm[b * m + c]};
    std::sort(sums, sums + 3);
    s.delta = std::max(s.delta, 0.5 * (sums[2] - sums[1]));
  }
  s.relative = std::clamp(2 * s.delta / s.diameter, 0.0, 1.0);
  return s;
}

/// \brief Sequence smoothness of the rows of `points` taken in order (see the file comment):
/// median consecutive distance over the median distance of `pairs` seeded random pairs. n < 2 or
/// a zero median pair distance (all rows equal) gives 0.
template <attention_scalar T>
[[nodiscard]] double sequence_smoothness(const matrix_cref<T>& points, std::size_t pairs = 4096,
                                         std::uint64_t seed = 42) {
  detail::require_points("points", points);
  const auto n = static_cast<std::size_t>(points.rows());
  if (n < 2) return 0.0;
  const auto distance = [&](std::size_t i, std::size_t j) {
    return std::sqrt((points.row(static_cast<Eigen::Index>(i)).template cast<double>() -
                      points.row(static_cast<Eigen::Index>(j)).template cast<double>())
                         .squaredNorm());
  };
  std::vector<double> consecutive(n - 1);
  for (std::size_t i = 0; i + 1 < n; ++i) consecutive[i] = distance(i, i + 1);
  std::vector<double> random_pairs;
  random_pairs.reserve(pairs);
  rng gen(seed);
  for (std::size_t t = 0; t < pairs; ++t) {
    const auto i = gen.below(n), j = gen.below(n);
    if (i != j) random_pairs.push_back(distance(i, j));
  }
  const auto median = [](std::vector<double>& v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  const double pair_median = median(random_pairs);
  return pair_median > 0 ? median(consecutive) / pair_median : 0.0;
}

}  // namespace ruvector::attention
