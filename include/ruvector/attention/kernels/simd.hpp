#pragma once
/// \file kernels/simd.hpp
/// \brief The xsimd foundation of the kernel layer: the compile-time architecture, batch aliases
/// and horizontal-reduction shims that work with xsimd 8.1 (Debian 12) and xsimd >= 9.
///
/// The architecture is `xsimd::default_arch`, i.e. the best instruction set enabled by the
/// compiler flags (`sse2` by default on x86-64, `fma3+avx2` with `-mavx2 -mfma`, `avx512bw` with
/// `-march=native` on AVX-512 machines). Header-only code cannot dispatch at run time (that needs
/// one translation unit per ISA), so build with the flags of the machine you deploy on.

#include "ruvector/attention/config.hpp"

// xsimd itself is included inside the guard so its out-of-line math templates are covered too.
RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN
#include <xsimd/xsimd.hpp>
RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

#include <algorithm>
#include <cstddef>
#include <limits>

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention::kernels {

/// \brief The SIMD architecture the kernels are compiled for.
using default_arch = xsimd::default_arch;

/// \brief A SIMD register of `T` for architecture `Arch`.
template <class T, class Arch = default_arch>
using batch = xsimd::batch<T, Arch>;

/// \brief The name of the compiled SIMD architecture (e.g. "avx512bw").
[[nodiscard]] inline const char* simd_arch_name() noexcept { return default_arch::name(); }

namespace detail {

// xsimd 8.1 spells the horizontal sum `hadd`; xsimd >= 9 renamed it `reduce_add`. A shim with a
// name of our own avoids ADL ambiguity with xsimd's own `reduce_*` in newer versions.
#if XSIMD_VERSION_MAJOR >= 9
template <class T, class A>
[[nodiscard]] inline T hsum(const xsimd::batch<T, A>& b) noexcept {
  return xsimd::reduce_add(b);
}
template <class T, class A>
[[nodiscard]] inline T hmax(const xsimd::batch<T, A>& b) noexcept {
  return xsimd::reduce_max(b);
}
#else
template <class T, class A>
[[nodiscard]] inline T hsum(const xsimd::batch<T, A>& b) noexcept {
  return xsimd::hadd(b);
}
template <class T, class A>
[[nodiscard]] inline T hmax(const xsimd::batch<T, A>& b) noexcept {
  alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
  b.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < xsimd::batch<T, A>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}
#endif

/// Loads `n < size` elements into a batch, filling the remaining lanes with `fill`.
template <class T, class A>
[[nodiscard]] inline xsimd::batch<T, A> load_partial(const T* p, std::size_t n, T fill) noexcept {
  alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
  for (std::size_t i = 0; i < xsimd::batch<T, A>::size; ++i) lanes[i] = i < n ? p[i] : fill;
  return xsimd::batch<T, A>::load_aligned(lanes);
}

/// Stores the first `n < size` lanes of `b` to `p`.
template <class T, class A>
inline void store_partial(const xsimd::batch<T, A>& b, T* p, std::size_t n) noexcept {
  alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
  b.store_aligned(lanes);
  for (std::size_t i = 0; i < n; ++i) p[i] = lanes[i];
}

}  // namespace detail
}  // namespace ruvector::attention::kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
