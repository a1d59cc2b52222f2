#pragma once
/// \file transport/kmeans.hpp
/// \brief k-means clustering: k-means++ seeding (Arthur & Vassilvitskii 2007) followed by Lloyd
/// iterations (Lloyd 1982), minimising the inertia
///
///     J(c, a) = Σ_i ‖x_i − c_{a(i)}‖²   over centroids c_1..c_M and assignments a(i) ∈ {0..M−1}.
///
/// Seeding: the first centroid is a uniformly drawn point; each next one is point i with
/// probability D(x_i)² / Σ_j D(x_j)², D = distance to the nearest centroid chosen so far (if every
/// D is 0 — duplicates — a uniformly drawn point). All draws come from `ra::rng(seed)`, and every
/// reduction is done in a fixed order, so the result depends only on the inputs and the seed (not
/// on the thread count).
///
/// One Lloyd iteration: (1) assign each point to its nearest centroid (ties → lowest index);
/// stop if no assignment changed; (2) re-seed empty clusters; (3) move each centroid to the mean
/// of its points (sums in double); (4) record the inertia of (centroids, assignment); stop when it
/// decreased by at most `tolerance` × the previous value. J never increases from one iteration to
/// the next (steps 1–3 each minimise J over one block of variables).
///
/// Empty clusters: a cluster left without points in step (1) is re-seeded with the point farthest
/// from its current centroid among clusters that keep ≥ 2 points (ties → lowest index); that point
/// moves to the empty cluster, whose centroid becomes that point in step (3). Hence every returned
/// cluster has ≥ 1 point. With fewer distinct points than clusters, several centroids coincide.
///
/// Sizes: 1 ≤ M ≤ n is required (M > n throws `invalid_argument`; no silent clamp); M = n gives
/// one point per cluster. Distances are computed in T with the xsimd `row_squared_distances`
/// kernel; the assignment step runs in parallel over chunks of points.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"

namespace ruvector::attention {

/// \brief Parameters of `kmeans`.
struct kmeans_options {
  /// Number of clusters M, 1 ≤ M ≤ number of points.
  std::size_t clusters = 8;
  /// Cap on Lloyd iterations (≥ 1).
  std::size_t max_iterations = 100;
  /// Stop when the inertia decreases by at most tolerance × its previous value (≥ 0).
  double tolerance = 1e-6;
  /// Seed of the k-means++ draws.
  std::uint64_t seed = 0x5eed;
  /// Throw `non_finite_input` on NaN/Inf in the points.
  bool check_finite = true;
};

/// \brief The result of `kmeans`.
template <class T>
struct kmeans_result {
  row_matrix<T> centroids;                ///< M × d; row m = mean of cluster m's points
  std::vector<std::uint32_t> assignment;  ///< cluster of each point (length n)
  std::vector<std::size_t> sizes;         ///< points per cluster (length M, each ≥ 1)
  double inertia = 0.0;  ///< Σ_i ‖x_i − c_{a(i)}‖² of the returned clustering
  std::vector<double> inertia_history;  ///< inertia after each iteration's update step
  std::size_t iterations = 0;           ///< Lloyd iterations with an update step
  std::size_t reseeded = 0;             ///< empty clusters re-seeded (over all iterations)
  bool converged = false;               ///< stopped by stability/tolerance, not by the cap
};

namespace detail {

/// Σ_c (x[c] − y[c])² in double.
template <class T>
double kmeans_sq_dist(const T* x, const T* y, std::size_t d) noexcept {
  double s = 0.0;
  for (std::size_t c = 0; c < d; ++c) {
    const double t = static_cast<double>(x[c]) - static_cast<double>(y[c]);
    s += t * t;
  }
  return s;
}

}  // namespace detail

/// \brief k-means++ seeding and Lloyd iterations over the rows of `points`; see the file comment.
template <attention_scalar T>
[[nodiscard]] kmeans_result<T> kmeans(const std::type_identity_t<matrix_cref<T>>& points,
                                      const kmeans_options& options) {
  const auto n = static_cast<std::size_t>(points.rows());
  const auto d = static_cast<std::size_t>(points.cols());
  require_config(options.clusters >= 1, "kmeans: clusters must be >= 1");
  require_config(options.max_iterations >= 1, "kmeans: max_iterations must be >= 1");
  require_config(options.tolerance >= 0.0 && std::isfinite(options.tolerance),
                 "kmeans: tolerance must be finite and >= 0");
  require_non_empty("points", n);
  require_non_empty("points.cols()", d);
  require_at_most("points.rows()", n, std::min<std::size_t>(max_sequence_length, UINT32_MAX));
  require_at_most("points.cols()", d, max_dimension);
  if (options.clusters > n) {
    std::ostringstream os;
    os << "invalid argument: kmeans: clusters is " << options.clusters
       << ", expected <= the number of points (" << n << ")";
    throw invalid_argument(os.str());
  }
  const std::ptrdiff_t ld = static_cast<std::ptrdiff_t>(points.outerStride());
  if (options.check_finite) require_finite("points", points.data(), n, d, ld);
  const std::size_t M = options.clusters;
  const auto row = [&](std::size_t i) {
    return points.data() + static_cast<std::ptrdiff_t>(i) * ld;
  };
  const auto idx = [](std::size_t x) { return static_cast<Eigen::Index>(x); };
  // Chunks of ≥ 2^18 flops (and ≥ 256 points), so small problems stay on one thread.
  const std::size_t grain = std::max<std::size_t>(256, (std::size_t{1} << 18) / (M * d));
  const std::size_t grain_d = std::max<std::size_t>(256, (std::size_t{1} << 18) / d);

  kmeans_result<T> r;
  r.centroids.resize(idx(M), idx(d));
  // ---- k-means++ seeding --------------------------------------------------------------------
  rng gen(options.seed);
  std::vector<double> d2(n, std::numeric_limits<double>::infinity());
  std::size_t pick = static_cast<std::size_t>(gen.below(n));
  for (std::size_t k = 0;; ++k) {
    std::copy(row(pick), row(pick) + d, &r.centroids(idx(k), 0));
    if (k + 1 == M) break;
    const T* c = row(pick);
    parallel_ranges(n, grain_d, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        d2[i] = std::min(d2[i], detail::kmeans_sq_dist(row(i), c, d));
    });
    double total = 0.0;
    for (double v : d2) total += v;
    if (total > 0.0) {
      const double target = gen.uniform01() * total;
      double cum = 0.0;
      pick = n;
      std::size_t last_positive = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (d2[i] <= 0.0) continue;
        last_positive = i;
        cum += d2[i];
        if (cum > target) {
          pick = i;
          break;
        }
      }
      if (pick == n) pick = last_positive;  // rounding left the target just above the sum
    } else {
      pick = static_cast<std::size_t>(gen.below(n));
    }
  }

  // ---- Lloyd iterations ---------------------------------------------------------------------
  r.assignment.assign(n, 0);
  r.sizes.assign(M, 0);
  std::vector<double> pd(n, 0.0);  // squared distance of each point to its assigned centroid
  std::vector<double> sums(M * d);
  double previous = std::numeric_limits<double>::infinity();
  for (std::size_t it = 0; it < options.max_iterations; ++it) {
    // (1) assignment
    std::size_t changed = 0;
    {
      std::vector<std::uint32_t> next(n);
      parallel_ranges(n, grain, [&](std::size_t b, std::size_t e) {
        T* dist = detail::thread_scratch<T, 6>(M);
        for (std::size_t i = b; i < e; ++i) {
          kernels::row_squared_distances(r.centroids.data(), M, d, d, row(i), dist);
          std::size_t best = 0;
          for (std::size_t m = 1; m < M; ++m)
            if (dist[m] < dist[best]) best = m;
          next[i] = static_cast<std::uint32_t>(best);
        }
      });
      for (std::size_t i = 0; i < n; ++i) changed += (next[i] != r.assignment[i]) ? 1 : 0;
      r.assignment.swap(next);
    }
    if (it > 0 && changed == 0) {
      r.converged = true;
      break;
    }
    std::fill(r.sizes.begin(), r.sizes.end(), std::size_t{0});
    for (std::uint32_t a : r.assignment) ++r.sizes[a];
    // (2) re-seed empty clusters with the farthest point of a cluster that keeps >= 2 points
    bool any_empty = false;
    for (std::size_t m = 0; m < M; ++m) any_empty = any_empty || r.sizes[m] == 0;
    if (any_empty) {
      parallel_ranges(n, grain_d, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i)
          pd[i] = detail::kmeans_sq_dist(row(i), &r.centroids(idx(r.assignment[i]), 0), d);
      });
      for (std::size_t m = 0; m < M; ++m) {
        if (r.sizes[m] != 0) continue;
        std::size_t far = n;
        for (std::size_t i = 0; i < n; ++i) {
          if (r.sizes[r.assignment[i]] < 2) continue;
          if (far == n || pd[i] > pd[far]) far = i;
        }
        // far < n: an empty cluster and M <= n imply some cluster holds >= 2 points.
        --r.sizes[r.assignment[far]];
        r.assignment[far] = static_cast<std::uint32_t>(m);
        r.sizes[m] = 1;
        pd[far] = 0.0;
        ++r.reseeded;
      }
    }
    // (3) update: centroid = mean of its points (double sums, fixed order)
    std::fill(sums.begin(), sums.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double* s = &sums[r.assignment[i] * d];
      const T* x = row(i);
      for (std::size_t c = 0; c < d; ++c) s[c] += static_cast<double>(x[c]);
    }
    for (std::size_t m = 0; m < M; ++m) {
      const double inv = 1.0 / static_cast<double>(r.sizes[m]);
      for (std::size_t c = 0; c < d; ++c)
        r.centroids(idx(m), idx(c)) = static_cast<T>(sums[m * d + c] * inv);
    }
    // (4) inertia of (centroids, assignment)
    parallel_ranges(n, grain_d, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        pd[i] = detail::kmeans_sq_dist(row(i), &r.centroids(idx(r.assignment[i]), 0), d);
    });
    double inertia = 0.0;
    for (double v : pd) inertia += v;
    r.inertia = inertia;
    r.inertia_history.push_back(inertia);
    r.iterations = it + 1;
    if (it > 0 && previous - inertia <= options.tolerance * previous) {
      r.converged = true;
      break;
    }
    previous = inertia;
  }
  return r;
}

}  // namespace ruvector::attention
