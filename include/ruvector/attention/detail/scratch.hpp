#pragma once
/// \file detail/scratch.hpp
/// \brief Per-thread scratch buffers, so hot paths do not allocate on every call and mechanism
/// objects stay immutable (and shareable across threads).

#include <cstddef>
#include <vector>

#include "ruvector/attention/detail/eigen.hpp"

namespace ruvector::attention::detail {

/// Returns a pointer to at least `n` values of thread-local scratch, aligned like Eigen's own
/// storage (so Eigen kernels take the same code path, and round the same way, on every call).
/// `Slot` distinguishes buffers that must be live at the same time; contents are unspecified.
template <class T, int Slot = 0>
[[nodiscard]] T* thread_scratch(std::size_t n) {
  thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace ruvector::attention::detail
