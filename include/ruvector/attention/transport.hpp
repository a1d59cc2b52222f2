#pragma once
/// \file transport.hpp
/// \brief Entry header of the optimal-transport family (theory 1): log-domain Sinkhorn, Sinkhorn
/// attention (Sinkformers), sliced-Wasserstein attention over multi-vector sets, k-means and
/// centroid OT attention.

#include "ruvector/attention/transport/centroid_ot.hpp"
#include "ruvector/attention/transport/kmeans.hpp"
#include "ruvector/attention/transport/sinkhorn.hpp"
#include "ruvector/attention/transport/sinkhorn_attention.hpp"
#include "ruvector/attention/transport/sliced_wasserstein.hpp"
