#pragma once
/// \file graph.hpp
/// \brief Entry header of the graph family: CSR graphs with edge features, edge-featured graph
/// attention (GAT and GATv2), graph RoPE with hop-distance positions, and dual-space
/// (Euclidean + hyperbolic) attention.

#include "ruvector/attention/graph/csr_graph.hpp"
#include "ruvector/attention/graph/dual_space.hpp"
#include "ruvector/attention/graph/edge_featured.hpp"
#include "ruvector/attention/graph/rope.hpp"
