#pragma once
/// \file graph/csr_graph.hpp
/// \brief `csr_graph`: an immutable directed multigraph in compressed sparse row form, grouped by
/// *target* node, with optional per-edge feature rows.
///
/// Conventions (shared by every graph mechanism in the library):
/// - An edge `{source, target}` means "`target` aggregates over `source`": node `i` attends over
///   its *incoming* edges `j -> i` (message passing from source to target, as in PyG's
///   `flow="source_to_target"`).
/// - Edges are kept exactly as given: multi-edges stay separate slots (a neighbour listed twice
///   is attended to twice) and self-loops `i -> i` are ordinary edges. Nothing is deduplicated.
/// - CSR layout: `offsets()` has `N + 1` entries; the in-edges of node `i` occupy slots
///   `[offsets()[i], offsets()[i + 1])` of `sources()` / `edge_ids()`. Within a node the slots keep
///   the order of the input edge list (the sort by target is stable). `edge_ids()[s]` is the index
///   of slot `s`'s edge in the input list, i.e. the row of `edge_features()` holding its features.
/// - Edge features are stored once, as a `row_matrix<double>` copy `[E, f]` in input-edge order
///   (row `e` = edge `e`), whatever scalar type they were given in; mechanisms cast them to their
///   own `T`. They must be finite.
/// - `with_self_loops()` appends a loop `i -> i` for every node that has none, after the original
///   edges (ids `E, E + 1, ...` in increasing node order). The feature row of an added loop is the
///   mean of the node's incoming edge-feature rows (multi-edges counted with multiplicity), or
///   zeros for a node without incoming edges (PyG's `fill_value="mean"`); `self_loop_fill::zeros`
///   gives zeros everywhere.
/// - `hop_distances(root)` is a breadth-first search that follows edges in *both* directions
///   (the undirected hop count); unreachable nodes get `SIZE_MAX`. `k_hop_in_neighbors(i, k)`
///   follows edges only *against* their direction (nodes that can reach `i` by a directed walk of
///   1..k edges).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"

namespace ruvector::attention {

/// \brief A directed edge: `target` aggregates over `source`.
struct edge {
  std::size_t source = 0;  ///< The node sending the message (a key/value node).
  std::size_t target = 0;  ///< The node receiving it (the query node).
  friend constexpr bool operator==(const edge&, const edge&) noexcept = default;
};

/// \brief Feature rows given to the self-loops that `csr_graph::with_self_loops` adds.
enum class self_loop_fill {
  mean,   ///< Mean of the node's incoming edge-feature rows (zeros when it has none).
  zeros,  ///< All zeros.
};

/// \brief Immutable directed multigraph, CSR grouped by target, with optional edge features.
class csr_graph {
 public:
  /// An empty graph (0 nodes, 0 edges).
  csr_graph() : offsets_(1, 0) {}

  /// \brief Builds the CSR of `num_nodes` nodes from an edge list (multi-edges and self-loops
  /// kept). Throws `invalid_argument` naming the edge index and the bad node when an endpoint is
  /// `>= num_nodes`.
  [[nodiscard]] static csr_graph from_edges(std::size_t num_nodes, std::span<const edge> edges) {
    csr_graph g;
    g.num_nodes_ = num_nodes;
    g.edges_.assign(edges.begin(), edges.end());
    g.validate_edges();
    g.build();
    return g;
  }

  /// \brief As above, with edge features `[E, f]` (row `e` = edge `e`). Throws
  /// `dimension_mismatch` unless `edge_features.rows() == edges.size()`, `non_finite_input`
  /// naming the first NaN/Inf feature.
  template <attention_scalar T>
  [[nodiscard]] static csr_graph from_edges(std::size_t num_nodes, std::span<const edge> edges,
                                            const matrix_cref<T>& edge_features) {
    require_dimension("csr_graph::from_edges: edge_features.rows() (one row per edge)",
                      static_cast<std::size_t>(edge_features.rows()), edges.size());
    require_finite("csr_graph::from_edges: edge_features", edge_features.data(),
                   static_cast<std::size_t>(edge_features.rows()),
                   static_cast<std::size_t>(edge_features.cols()), edge_features.outerStride());
    csr_graph g = from_edges(num_nodes, edges);
    g.features_ = edge_features.template cast<double>();
    g.edge_dim_ = static_cast<std::size_t>(edge_features.cols());
    g.has_features_ = true;
    return g;
  }

  /// Number of nodes `N`.
  [[nodiscard]] std::size_t num_nodes() const noexcept { return num_nodes_; }
  /// Number of edges `E` (multi-edges and self-loops counted).
  [[nodiscard]] std::size_t num_edges() const noexcept { return edges_.size(); }
  /// CSR row offsets, size `N + 1`; node `i`'s in-edges are slots `[offsets[i], offsets[i+1])`.
  [[nodiscard]] std::span<const std::size_t> offsets() const noexcept { return offsets_; }
  /// Source node of every CSR slot, size `E`, grouped by target.
  [[nodiscard]] std::span<const std::size_t> sources() const noexcept { return sources_; }
  /// Input-edge index of every CSR slot (the row of `edge_features()` for that slot).
  [[nodiscard]] std::span<const std::size_t> edge_ids() const noexcept { return edge_ids_; }
  /// The edge list in input order (added self-loops last).
  [[nodiscard]] std::span<const edge> edges() const noexcept { return edges_; }

  /// Sources of the edges entering `node` (with multiplicity, input order). Throws
  /// `invalid_argument` if `node >= num_nodes()`.
  [[nodiscard]] std::span<const std::size_t> in_neighbors(std::size_t node) const {
    check_node("csr_graph::in_neighbors", node);
    return std::span<const std::size_t>(sources_).subspan(offsets_[node],
                                                          offsets_[node + 1] - offsets_[node]);
  }
  /// Input-edge indices of the edges entering `node`, aligned with `in_neighbors(node)`.
  [[nodiscard]] std::span<const std::size_t> in_edge_ids(std::size_t node) const {
    check_node("csr_graph::in_edge_ids", node);
    return std::span<const std::size_t>(edge_ids_).subspan(offsets_[node],
                                                           offsets_[node + 1] - offsets_[node]);
  }
  /// Number of edges entering `node`.
  [[nodiscard]] std::size_t in_degree(std::size_t node) const {
    check_node("csr_graph::in_degree", node);
    return offsets_[node + 1] - offsets_[node];
  }

  /// True when the graph was built with edge features.
  [[nodiscard]] bool has_edge_features() const noexcept { return has_features_; }
  /// Width `f` of the edge features (0 without features).
  [[nodiscard]] std::size_t edge_dim() const noexcept { return edge_dim_; }
  /// Edge features `[E, f]` in input-edge order (an empty matrix without features).
  [[nodiscard]] const row_matrix<double>& edge_features() const noexcept { return features_; }

  /// \brief A copy with a self-loop `i -> i` added for every node that has none (existing loops
  /// and multi-edges kept). Added loops get edge ids `E, E+1, ...` in increasing node order; their
  /// feature rows follow `fill` (see the file comment).
  [[nodiscard]] csr_graph with_self_loops(self_loop_fill fill = self_loop_fill::mean) const {
    std::vector<char> has_loop(num_nodes_, 0);
    for (const edge& e : edges_) {
      if (e.source == e.target) has_loop[e.target] = 1;
    }
    csr_graph g;
    g.num_nodes_ = num_nodes_;
    g.edges_ = edges_;
    std::vector<std::size_t> added;
    for (std::size_t i = 0; i < num_nodes_; ++i) {
      if (!has_loop[i]) {
        added.push_back(i);
        g.edges_.push_back(edge{i, i});
      }
    }
    g.build();
    if (has_features_) {
      g.has_features_ = true;
      g.edge_dim_ = edge_dim_;
      const auto old_e = static_cast<Eigen::Index>(edges_.size());
      g.features_.resize(static_cast<Eigen::Index>(g.edges_.size()),
                         static_cast<Eigen::Index>(edge_dim_));
      g.features_.topRows(old_e) = features_;
      for (std::size_t k = 0; k < added.size(); ++k) {
        const std::size_t node = added[k];
        auto row = g.features_.row(old_e + static_cast<Eigen::Index>(k));
        row.setZero();
        if (fill == self_loop_fill::mean) {
          const std::size_t begin = offsets_[node];
          const std::size_t end = offsets_[node + 1];
          for (std::size_t s = begin; s < end; ++s) {
            row += features_.row(static_cast<Eigen::Index>(edge_ids_[s]));
          }
          if (end > begin) row /= static_cast<double>(end - begin);
        }
      }
    }
    return g;
  }

  /// \brief Breadth-first hop counts from `root`, following edges in both directions;
  /// `SIZE_MAX` for unreachable nodes. Throws `invalid_argument` if `root >= num_nodes()`.
  [[nodiscard]] std::vector<std::size_t> hop_distances(std::size_t root) const {
    check_node("csr_graph::hop_distances", root);
    // Undirected adjacency: in-edges from the CSR plus out-edges built here (O(N + E)).
    std::vector<std::size_t> out_offsets(num_nodes_ + 1, 0);
    for (const edge& e : edges_) ++out_offsets[e.source + 1];
    for (std::size_t i = 0; i < num_nodes_; ++i) out_offsets[i + 1] += out_offsets[i];
    std::vector<std::size_t> out_targets(edges_.size());
    {
      std::vector<std::size_t> cursor(out_offsets.begin(), out_offsets.end() - 1);
      for (const edge& e : edges_) out_targets[cursor[e.source]++] = e.target;
    }
    constexpr std::size_t unreachable = std::numeric_limits<std::size_t>::max();
    std::vector<std::size_t> dist(num_nodes_, unreachable);
    std::vector<std::size_t> queue;
    queue.reserve(num_nodes_);
    dist[root] = 0;
    queue.push_back(root);
    for (std::size_t head = 0; head < queue.size(); ++head) {
      const std::size_t u = queue[head];
      const auto visit = [&](std::size_t v) {
        if (dist[v] == unreachable) {
          dist[v] = dist[u] + 1;
          queue.push_back(v);
        }
      };
      for (std::size_t s = offsets_[u]; s < offsets_[u + 1]; ++s) visit(sources_[s]);
      for (std::size_t s = out_offsets[u]; s < out_offsets[u + 1]; ++s) visit(out_targets[s]);
    }
    return dist;
  }

  /// \brief The distinct nodes `j` from which a directed walk of 1..`k` edges reaches `node`
  /// (edges followed against their direction), in increasing index order. `node` itself is
  /// included only if it lies on a directed cycle of length <= k (e.g. has a self-loop).
  /// `k == 0` gives an empty set. Throws `invalid_argument` if `node >= num_nodes()`.
  [[nodiscard]] std::vector<std::size_t> k_hop_in_neighbors(std::size_t node, std::size_t k) const {
    check_node("csr_graph::k_hop_in_neighbors", node);
    std::vector<char> seen(num_nodes_, 0);
    std::vector<std::size_t> frontier{node};
    std::vector<std::size_t> next;
    std::vector<std::size_t> result;
    // BFS levels 1..k over in-edges; `seen` marks nodes reached by a walk of length >= 1.
    for (std::size_t level = 0; level < k && !frontier.empty(); ++level) {
      next.clear();
      for (const std::size_t u : frontier) {
        for (std::size_t s = offsets_[u]; s < offsets_[u + 1]; ++s) {
          const std::size_t v = sources_[s];
          if (!seen[v]) {
            seen[v] = 1;
            result.push_back(v);
            next.push_back(v);
          }
        }
      }
      frontier.swap(next);
    }
    std::sort(result.begin(), result.end());
    return result;
  }

 private:
  void check_node(const char* where, std::size_t node) const {
    if (node >= num_nodes_) {
      std::ostringstream os;
      os << "invalid argument: " << where << ": node " << node << " is out of range (num_nodes is "
         << num_nodes_ << ")";
      throw invalid_argument(os.str());
    }
  }

  void validate_edges() const {
    for (std::size_t e = 0; e < edges_.size(); ++e) {
      const edge& ed = edges_[e];
      const bool bad_source = ed.source >= num_nodes_;
      if (bad_source || ed.target >= num_nodes_) {
        std::ostringstream os;
        os << "invalid argument: csr_graph::from_edges: edges[" << e << "]."
           << (bad_source ? "source" : "target") << " = " << (bad_source ? ed.source : ed.target)
           << " is out of range, expected < num_nodes = " << num_nodes_;
        throw invalid_argument(os.str());
      }
    }
  }

  // Stable counting sort of the edge list by target.
  void build() {
    offsets_.assign(num_nodes_ + 1, 0);
    for (const edge& e : edges_) ++offsets_[e.target + 1];
    for (std::size_t i = 0; i < num_nodes_; ++i) offsets_[i + 1] += offsets_[i];
    sources_.resize(edges_.size());
    edge_ids_.resize(edges_.size());
    std::vector<std::size_t> cursor(offsets_.begin(), offsets_.end() - 1);
    for (std::size_t e = 0; e < edges_.size(); ++e) {
      const std::size_t slot = cursor[edges_[e].target]++;
      sources_[slot] = edges_[e].source;
      edge_ids_[slot] = e;
    }
  }

  std::size_t num_nodes_ = 0;
  std::vector<edge> edges_;
  std::vector<std::size_t> offsets_;
  std::vector<std::size_t> sources_;
  std::vector<std::size_t> edge_ids_;
  row_matrix<double> features_;
  std::size_t edge_dim_ = 0;
  bool has_features_ = false;
};

}  // namespace ruvector::attention
