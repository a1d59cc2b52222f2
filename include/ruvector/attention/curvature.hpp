#pragma once
/// \file curvature.hpp
/// \brief Entry header of the mixed-curvature family (theory 2): the fused E+H+S attention kernel,
/// the tangent-space mapper and the bit-packed component quantiser.

#include "ruvector/attention/curvature/component_quantizer.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "ruvector/attention/curvature/fused_attention.hpp"
#include "ruvector/attention/curvature/quantized_attention.hpp"
#include "ruvector/attention/curvature/tangent_space.hpp"
