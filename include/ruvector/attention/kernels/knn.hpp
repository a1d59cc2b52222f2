#pragma once
/// \file knn.hpp
/// \brief Exact k-nearest-neighbour lists of a point set (brute force, squared Euclidean).
///
/// For every row i of an n × d point set: the k rows j ≠ i with the smallest ‖x_i − x_j‖², in
/// ascending distance (ties broken by the smaller index, so the result is deterministic). Distances
/// come from `kernels::row_squared_distances` (formed from differences, never by expansion), so
/// they are exact up to rounding and never negative. Cost O(n²·d), rows in parallel.
///
/// Used by the topology (coherence over a kNN graph of the keys) and pde (sparse kNN Laplacian)
/// families. Duplicate points are neighbours at distance 0.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/gemv.hpp"

namespace ruvector::attention {

/// \brief k nearest neighbours of each of n points: row i's list is
/// `indices[i*k .. i*k+k)` / `squared_distances[i*k .. i*k+k)`, nearest first.
template <attention_scalar T>
struct knn_lists {
  std::size_t n = 0;                   ///< number of points
  std::size_t k = 0;                   ///< neighbours per point (≤ n − 1)
  std::vector<std::uint32_t> indices;  ///< n·k neighbour indices
  std::vector<T> squared_distances;    ///< n·k squared Euclidean distances, ascending per row

  /// \brief Neighbour `m` (0 = nearest) of point `i`.
  [[nodiscard]] std::uint32_t neighbor(std::size_t i, std::size_t m) const noexcept {
    return indices[i * k + m];
  }
  /// \brief Squared distance from point `i` to its neighbour `m`.
  [[nodiscard]] T squared_distance(std::size_t i, std::size_t m) const noexcept {
    return squared_distances[i * k + m];
  }
};

/// \brief Exact kNN of the rows of `points` (self excluded). Throws `invalid_argument` when
/// k = 0 or k ≥ n, `non_finite_input` for NaN/Inf coordinates, `input_too_large` when n ≥ 2³².
template <attention_scalar T>
[[nodiscard]] knn_lists<T> exact_knn(const matrix_cref<T>& points, std::size_t k) {
  const auto n = static_cast<std::size_t>(points.rows());
  const auto d = static_cast<std::size_t>(points.cols());
  require_non_empty("points", n);
  require_non_empty("point dimension", d);
  require_at_most("number of points", n, std::size_t{0xFFFFFFFFu});
  require_argument(k >= 1 && k < n, "exact_knn: k must satisfy 1 <= k < number of points");
  require_finite("points", points.data(), n, d, points.outerStride());

  knn_lists<T> out;
  out.n = n;
  out.k = k;
  out.indices.resize(n * k);
  out.squared_distances.resize(n * k);
  const auto ld = static_cast<std::size_t>(points.outerStride());
  parallel_for(0, n, [&](std::size_t i) {
    thread_local std::vector<T> dist;
    thread_local std::vector<std::uint32_t> order;
    dist.resize(n);
    order.resize(n - 1);
    kernels::row_squared_distances(points.data(), n, d, ld, points.data() + i * ld, dist.data());
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) order[m++] = static_cast<std::uint32_t>(j);
    const auto closer = [&](std::uint32_t a, std::uint32_t b) {
      return dist[a] < dist[b] || (dist[a] == dist[b] && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      closer);
    for (std::size_t r = 0; r < k; ++r) {
      out.indices[i * k + r] = order[r];
      out.squared_distances[i * k + r] = dist[order[r]];
    }
  });
  return out;
}

}  // namespace ruvector::attention
