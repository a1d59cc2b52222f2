#pragma once
/// \file info_bottleneck.hpp
/// \brief Entry header of the information-bottleneck family (theory 5): KL and Jensen–Shannon
/// divergences, the variational information bottleneck layer with β schedules and analytic
/// gradients, and attention-weight compression.

#include "ruvector/attention/info_bottleneck/bottleneck.hpp"
#include "ruvector/attention/info_bottleneck/compression.hpp"
#include "ruvector/attention/info_bottleneck/kl_divergence.hpp"
