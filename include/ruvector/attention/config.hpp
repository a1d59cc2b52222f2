#pragma once
/// \file config.hpp
/// \brief Compile-time configuration macros shared by every header.

#include <cstddef>

#if defined(_OPENMP)
/// Defined to 1 when the translation unit is compiled with OpenMP (`-fopenmp`).
#define RUVECTOR_ATTENTION_HAS_OPENMP 1
#else
#define RUVECTOR_ATTENTION_HAS_OPENMP 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RUVECTOR_ATTENTION_ALWAYS_INLINE inline __attribute__((always_inline))
#define RUVECTOR_ATTENTION_RESTRICT __restrict__
#else
#define RUVECTOR_ATTENTION_ALWAYS_INLINE inline
#define RUVECTOR_ATTENTION_RESTRICT
#endif

namespace ruvector::attention {

/// \brief Largest number of keys (or sequence length) a public entry point accepts.
/// Guards against accidental O(L^2) allocations from corrupted sizes; override by defining
/// RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH before including any header.
#ifndef RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH
#define RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH (std::size_t{1} << 26)
#endif
inline constexpr std::size_t max_sequence_length = RUVECTOR_ATTENTION_MAX_SEQUENCE_LENGTH;

/// \brief Largest vector dimension a public entry point accepts.
#ifndef RUVECTOR_ATTENTION_MAX_DIMENSION
#define RUVECTOR_ATTENTION_MAX_DIMENSION (std::size_t{1} << 20)
#endif
inline constexpr std::size_t max_dimension = RUVECTOR_ATTENTION_MAX_DIMENSION;

}  // namespace ruvector::attention

// GCC 12 reports -W(maybe-)uninitialized inside its own AVX-512 intrinsics (`__m512 __Y = __Y;`
// in avx512fintrin.h) when xsimd's exp/ldexp are inlined into our kernels. The warning is a false
// positive in a system header; silence exactly those two warnings around the kernel code so users
// compiling with -Werror are not affected.
#if defined(__GNUC__) && !defined(__clang__)
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN                                       \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_END _Pragma("GCC diagnostic pop")
#else
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#define RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
#endif
