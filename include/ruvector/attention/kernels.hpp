#pragma once
/// \file kernels.hpp
/// \brief Entry header of the xsimd kernel layer.

#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/knn.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
