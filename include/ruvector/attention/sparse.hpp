#pragma once
/// \file sparse.hpp
/// \brief Entry header of the sparse family: flash attention, exact partial merges and ring
/// attention, linear attention (elu+1 and FAVOR+).

#include "ruvector/attention/sparse/flash.hpp"
#include "ruvector/attention/sparse/linear.hpp"
#include "ruvector/attention/sparse/partial.hpp"
