#pragma once
/// \file hyperbolic.hpp
/// \brief Entry header of the hyperbolic family: attention between points of the Poincaré ball
/// (distance or Lorentzian scores; tangent-space, Einstein-midpoint or Fréchet-mean aggregation).

#include "ruvector/attention/hyperbolic/hyperbolic_attention.hpp"
