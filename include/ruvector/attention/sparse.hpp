#pragma once
/// \file sparse.hpp
/// \brief Entry header of the sparse family: flash attention, exact partial merges and ring
/// attention, linear attention (elu+1 and FAVOR+), sparse masks with a real sparse kernel, and
/// local-global (Longformer) attention.

#include "ruvector/attention/sparse/flash.hpp"
#include "ruvector/attention/sparse/linear.hpp"
#include "ruvector/attention/sparse/local_global.hpp"
#include "ruvector/attention/sparse/masks.hpp"
#include "ruvector/attention/sparse/partial.hpp"
#include "ruvector/attention/sparse/sparse_attention.hpp"
