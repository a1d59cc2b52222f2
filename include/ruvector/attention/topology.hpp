#pragma once
/// \file topology.hpp
/// \brief Entry header of the topology family (theory 3): window-coherence metrics over a kNN
/// graph of the keys, the Stable / Cautious / Freeze policy with hysteresis, and gated attention
/// whose mode persists across calls.

#include "ruvector/attention/topology/coherence.hpp"
#include "ruvector/attention/topology/gated_attention.hpp"
#include "ruvector/attention/topology/policy.hpp"
