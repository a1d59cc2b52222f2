#pragma once
/// \file kernels/detail/reference/kernels.hpp
/// \brief Scalar double-precision references for every kernel in `kernels/`, used by the tests as
/// oracles. Deliberately naive: one loop, one accumulator, `std::exp`, no SIMD.

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace ruvector::attention::kernels::detail::reference {

template <class T>
double dot(const T* a, const T* b, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

template <class T>
double sum(const T* x, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

template <class T>
double max(const T* x, std::size_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) m = std::fmax(m, static_cast<double>(x[i]));
  return m;
}

/// y + alpha·x, returned as a new vector.
template <class T>
std::vector<double> axpy(double alpha, const T* x, const T* y, std::size_t n) {
  std::vector<double> r(n);
  for (std::size_t i = 0; i < n; ++i)
    r[i] = static_cast<double>(y[i]) + alpha * static_cast<double>(x[i]);
  return r;
}

template <class T>
std::vector<double> scale(double alpha, const T* x, std::size_t n) {
  std::vector<double> r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = alpha * static_cast<double>(x[i]);
  return r;
}

template <class T>
std::vector<double> exp(const T* x, std::size_t n) {
  std::vector<double> r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = std::exp(static_cast<double>(x[i]));
  return r;
}

/// log Σ exp(x); −inf when empty or all −inf.
template <class T>
double logsumexp(const T* x, std::size_t n) {
  const double m = max(x, n);
  if (!(m > -std::numeric_limits<double>::infinity())) return m;
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(s);
}

/// softmax(x); all zeros when empty or all −inf.
template <class T>
std::vector<double> softmax(const T* x, std::size_t n) {
  std::vector<double> r(n, 0.0);
  const double lse = logsumexp(x, n);
  if (!(lse > -std::numeric_limits<double>::infinity())) return r;
  for (std::size_t i = 0; i < n; ++i) r[i] = std::exp(static_cast<double>(x[i]) - lse);
  return r;
}

/// out_j = alpha · q·k_j.
template <class T>
std::vector<double> row_dots(const T* k, std::size_t n, std::size_t d, std::size_t ldk, const T* q,
                             double alpha) {
  std::vector<double> r(n);
  for (std::size_t j = 0; j < n; ++j) r[j] = alpha * dot(q, k + j * ldk, d);
  return r;
}

/// ‖q − k_j‖² (difference formed in double).
template <class T>
std::vector<double> row_squared_distances(const T* k, std::size_t n, std::size_t d, std::size_t ldk,
                                          const T* q) {
  std::vector<double> r(n);
  for (std::size_t j = 0; j < n; ++j) {
    double acc = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
      const double diff = static_cast<double>(q[c]) - static_cast<double>(k[j * ldk + c]);
      acc += diff * diff;
    }
    r[j] = acc;
  }
  return r;
}

/// beta·out + Σ_j w_j v_j.
template <class T>
std::vector<double> weighted_row_sum(const T* w, std::size_t n, const T* v, std::size_t dv,
                                     std::size_t ldv, double beta, const T* out) {
  std::vector<double> r(dv);
  for (std::size_t c = 0; c < dv; ++c) {
    double acc = beta == 0.0 ? 0.0 : beta * static_cast<double>(out[c]);
    for (std::size_t j = 0; j < n; ++j)
      acc += static_cast<double>(w[j]) * static_cast<double>(v[j * ldv + c]);
    r[c] = acc;
  }
  return r;
}

}  // namespace ruvector::attention::kernels::detail::reference
