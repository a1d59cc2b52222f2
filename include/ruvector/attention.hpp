#pragma once
/// \file attention.hpp
/// \brief Umbrella header of ruvector-attention: includes every family.
///
/// Prefer the family entry headers (`ruvector/attention/standard.hpp`, ...) in large code bases to
/// keep compile times down.

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core.hpp"
#include "ruvector/attention/curvature.hpp"
#include "ruvector/attention/fwd.hpp"
#include "ruvector/attention/geometry.hpp"
#include "ruvector/attention/graph.hpp"
#include "ruvector/attention/hyperbolic.hpp"
#include "ruvector/attention/info_bottleneck.hpp"
#include "ruvector/attention/info_geometry.hpp"
#include "ruvector/attention/io/json.hpp"
#include "ruvector/attention/kernels.hpp"
#include "ruvector/attention/moe.hpp"
#include "ruvector/attention/pde.hpp"
#include "ruvector/attention/sparse.hpp"
#include "ruvector/attention/standard.hpp"
#include "ruvector/attention/topology.hpp"
#include "ruvector/attention/transport.hpp"
#include "ruvector/attention/unified_report.hpp"
#include "ruvector/attention/version.hpp"
