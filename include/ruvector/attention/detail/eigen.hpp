#pragma once
/// \file detail/eigen.hpp
/// \brief Includes Eigen/Core inside the same warning guard as xsimd: GCC 12.2 reports
/// -W(maybe-)uninitialized inside its own AVX-512 intrinsics (`__m512 __Y = __Y;`, GCC bug 105593)
/// when Eigen's AVX-512 GEMM kernels are instantiated. Covering Eigen's template definitions keeps
/// users who build with -Werror and -march=native unaffected.

#include "ruvector/attention/config.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <Eigen/Core>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
