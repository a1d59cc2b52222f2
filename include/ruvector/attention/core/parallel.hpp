#pragma once
/// \file core/parallel.hpp
/// \brief `parallel_for`: OpenMP when the translation unit is compiled with `-fopenmp`, a plain
/// loop otherwise. No `<execution>` (with libtbb-dev installed it forces `-ltbb` on every user).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/validate.hpp"

#if RUVECTOR_ATTENTION_HAS_OPENMP
#include <omp.h>
#endif

namespace ruvector::attention {

namespace detail {
inline std::atomic<int>& thread_setting() noexcept {
  static std::atomic<int> n{0};  // 0 = use the runtime's default
  return n;
}
}  // namespace detail

/// \brief Sets the number of threads `parallel_for` uses; 0 restores the default (all cores,
/// or `OMP_NUM_THREADS`). Has no effect without OpenMP.
inline void set_num_threads(int n) {
  require_argument(n >= 0, "set_num_threads: thread count must be >= 0");
  detail::thread_setting().store(n, std::memory_order_relaxed);
}

/// \brief The number of threads `parallel_for` will use (1 without OpenMP).
[[nodiscard]] inline int num_threads() noexcept {
#if RUVECTOR_ATTENTION_HAS_OPENMP
  const int n = detail::thread_setting().load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}

/// \brief Calls `f(i)` for every `i` in `[begin, end)`, possibly concurrently. Iterations must be
/// independent. The first exception thrown by any iteration is rethrown on the calling thread.
template <class F>
void parallel_for(std::size_t begin, std::size_t end, F&& f) {
  if (end <= begin) return;
#if RUVECTOR_ATTENTION_HAS_OPENMP
  const int threads = std::min<long long>(num_threads(), static_cast<long long>(end - begin));
  if (threads > 1 && !omp_in_parallel()) {
    std::exception_ptr failure;
    std::mutex failure_mutex;
    const auto count = static_cast<long long>(end - begin);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (long long k = 0; k < count; ++k) {
      try {
        f(begin + static_cast<std::size_t>(k));
      } catch (...) {
        const std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
  if (!omp_in_parallel()) {
    // Serial, but inside a one-thread parallel region whose nthreads ICV is 1: Eigen parallelises
    // its own GEMMs whenever omp_get_max_threads() > 1 outside a team, which would turn a "one
    // thread" request into many small synchronised GEMMs on every core. omp_set_num_threads here
    // only changes the ICV of this region's implicit task, not the caller's setting.
    std::exception_ptr failure;
#pragma omp parallel num_threads(1)
    {
      omp_set_num_threads(1);
      try {
        for (std::size_t i = begin; i < end; ++i) f(i);
      } catch (...) {
        failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
#endif
  for (std::size_t i = begin; i < end; ++i) f(i);
}

/// \brief Calls `f(begin, end)` over contiguous chunks of [0, n) of at least `grain` items (at most
/// 4 per thread), in parallel when there is more than one chunk; one chunk runs inline. For loops
/// whose iterations are too cheap to schedule one by one.
template <class F>
void parallel_ranges(std::size_t n, std::size_t grain, F&& f) {
  const std::size_t by_grain = (n + grain - 1) / std::max<std::size_t>(grain, 1);
  const std::size_t chunks =
      std::min<std::size_t>(by_grain, 4 * static_cast<std::size_t>(num_threads()));
  if (chunks <= 1) {
    f(std::size_t{0}, n);
    return;
  }
  parallel_for(0, chunks, [&](std::size_t c) { f(n * c / chunks, n * (c + 1) / chunks); });
}

}  // namespace ruvector::attention
