#pragma once
/// \file info_bottleneck/compression.hpp
/// \brief Attention-weight compression in the information-bottleneck sense: trade the
/// information carried by an attention distribution (its divergence from uniform) against
/// sharpness, by temperature scaling (Hinton et al. 2015, "Distilling the Knowledge in a Neural
/// Network") and by top-mass truncation (the nucleus of Holtzman et al. 2020).
///
/// For weights w ≥ 0 (normalised by their sum, p = w / Σ w) of n keys:
///
///     tempered:   w'_i = softmax_i(log w_i / T) = p_i^{1/T} / Σ_j p_j^{1/T}      (T > 0)
///     top-mass:   K = the smallest set of keys, taken in decreasing p_i, with Σ_{i∈K} p_i ≥ m;
///                 w'_i = p_i / Σ_{j∈K} p_j for i ∈ K, 0 otherwise                  (0 < m ≤ 1)
///     cost:       H(w') = −Σ w'_i log w'_i  (nats, 0 log 0 = 0),
///                 KL(w' ‖ uniform_n) = ln n − H(w')  (the information w' carries about which
///                 key is attended; 0 for uniform, ln n for one-hot)
///
/// T = 1 is the identity (returned exactly as p, without an exp/log round trip); T > 1 flattens
/// towards the uniform distribution over the support of p (T → ∞); T < 1 sharpens towards a
/// one-hot at the arg-max (T → 0; tied maxima share the mass equally). Zero weights stay zero
/// for every T (log 0 = −inf). The tempered logits are shifted by log max_j w_j before the
/// max-subtracted softmax, so the maximum maps to exactly 0 and any T > 0 — however small — is
/// stable. H(w') is non-decreasing in T.
///
/// Top-mass ties are broken by the lower key index; m = 1 keeps the whole support (no
/// truncation, whatever rounding the cumulative sum picks up). `compress_attention` applies the
/// temperature first, then the truncation.
///
/// Errors: empty weights or a zero sum, a negative weight, T ≤ 0 (or non-finite), or m outside
/// (0, 1] → `invalid_argument`; NaN/Inf weights → `non_finite_input`; a weight matrix whose
/// result view has the wrong shape → `dimension_mismatch`.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <span>
#include <sstream>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/info_bottleneck/kl_divergence.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief Per-call options of `compress_attention`.
template <attention_scalar T>
struct compression_options {
  T temperature = T(1);  ///< T > 0; 1 = unchanged
  T top_mass = T(1);     ///< m ∈ (0, 1]; 1 = no truncation
};

/// \brief Compressed weights and their information cost.
template <attention_scalar T>
struct compression_result {
  std::vector<T> weights;  ///< w' (sums to 1; zeros for dropped keys)
  T entropy_in = T(0);     ///< H(p) of the sum-normalised input, nats
  T entropy = T(0);        ///< H(w'), nats
  T kl_to_uniform = T(0);  ///< ln n − H(w') = KL(w' ‖ uniform_n), nats
  T retained_mass = T(1);  ///< mass (before renormalisation) kept by the truncation
  std::size_t kept = 0;    ///< number of non-zero entries of w'
};

namespace detail {

inline void require_temperature(double t) {
  if (!(std::isfinite(t) && t > 0.0)) {
    std::ostringstream os;
    os << "invalid argument: temperature = " << t << ", expected a finite value > 0";
    throw invalid_argument(os.str());
  }
}

inline void require_top_mass(double m) {
  if (!(std::isfinite(m) && m > 0.0 && m <= 1.0)) {
    std::ostringstream os;
    os << "invalid argument: top_mass = " << m << ", expected a value in (0, 1]";
    throw invalid_argument(os.str());
  }
}

/// −Σ w log w (nats, double accumulation, 0 log 0 = 0) of an already normalised vector.
template <class T>
[[nodiscard]] double entropy_of(const T* w, std::size_t n) noexcept {
  double h = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(w[i]);
    if (v > 0.0) h -= v * std::log(v);
  }
  return h > 0.0 ? h : 0.0;
}

/// Sum-normalised copy (validated distribution with sum `s`) into w.
template <class T>
void normalise_into(std::span<const T> in, double s, std::vector<T>& w) {
  w.resize(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) w[i] = static_cast<T>(static_cast<double>(in[i]) / s);
}

/// In place: p ← softmax((log p − log max p) / T); p normalised, some p_i > 0.
template <class T>
void temper_inplace(std::vector<T>& p, T temperature) noexcept {
  if (temperature == T(1)) return;
  const T pmax = *std::max_element(p.begin(), p.end());
  const T lmax = std::log(pmax);
  for (auto& v : p)
    v = v > T(0) ? (std::log(v) - lmax) / temperature : -std::numeric_limits<T>::infinity();
  kernels::softmax(p.data(), p.size());
}

/// In place: keep the smallest top set holding mass ≥ m, renormalise; returns (kept mass).
template <class T>
double truncate_inplace(std::vector<T>& p, double m) {
  if (m >= 1.0) return 1.0;
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
  double cum = 0.0;
  std::size_t k = 0;
  while (k < order.size() && p[order[k]] > T(0)) {
    cum += static_cast<double>(p[order[k]]);
    ++k;
    if (cum >= m) break;
  }
  for (std::size_t r = k; r < order.size(); ++r) p[order[r]] = T(0);
  for (std::size_t r = 0; r < k; ++r)
    p[order[r]] = static_cast<T>(static_cast<double>(p[order[r]]) / cum);
  return cum;
}

template <class T>
void finish_result(compression_result<T>& r) {
  const std::size_t n = r.weights.size();
  r.entropy = static_cast<T>(entropy_of(r.weights.data(), n));
  const double kl = std::log(static_cast<double>(n)) - static_cast<double>(r.entropy);
  r.kl_to_uniform = static_cast<T>(kl > 0.0 ? kl : 0.0);
  r.kept = static_cast<std::size_t>(
      std::count_if(r.weights.begin(), r.weights.end(), [](T v) { return v > T(0); }));
}

}  // namespace detail

/// \brief Temperature + top-mass compression of one weight vector (temperature first).
template <attention_scalar T>
[[nodiscard]] compression_result<T> compress_attention(std::span<const T> weights,
                                                       const compression_options<T>& options) {
  require_non_empty("weights", weights.size());
  detail::require_temperature(static_cast<double>(options.temperature));
  detail::require_top_mass(static_cast<double>(options.top_mass));
  const double s = detail::require_distribution("weights", weights);
  compression_result<T> r;
  detail::normalise_into(weights, s, r.weights);
  r.entropy_in = static_cast<T>(detail::entropy_of(r.weights.data(), r.weights.size()));
  detail::temper_inplace(r.weights, options.temperature);
  r.retained_mass =
      static_cast<T>(detail::truncate_inplace(r.weights, static_cast<double>(options.top_mass)));
  detail::finish_result(r);
  return r;
}

/// \brief w' = softmax(log w / T) with its information cost (see the file comment).
template <attention_scalar T>
[[nodiscard]] compression_result<T> temper_weights(std::span<const T> weights, T temperature) {
  return compress_attention(weights, compression_options<T>{temperature, T(1)});
}

/// \brief Keeps the smallest top set of weights holding mass ≥ `mass`, renormalised.
template <attention_scalar T>
[[nodiscard]] compression_result<T> top_mass_truncate(std::span<const T> weights, T mass) {
  return compress_attention(weights, compression_options<T>{T(1), mass});
}

/// \brief Row-wise `compress_attention` of a weight matrix (rows = queries) into `out` (same
/// shape); returns the mean KL(w'_row ‖ uniform) over rows (nats).
template <attention_scalar T>
T compress_rows(const matrix_cref<T>& weights, matrix_ref<T> out,
                const compression_options<T>& options) {
  require_dimension("out.rows()", static_cast<std::size_t>(out.rows()),
                    static_cast<std::size_t>(weights.rows()));
  require_dimension("out.cols()", static_cast<std::size_t>(out.cols()),
                    static_cast<std::size_t>(weights.cols()));
  require_non_empty("weights.rows()", static_cast<std::size_t>(weights.rows()));
  require_non_empty("weights.cols()", static_cast<std::size_t>(weights.cols()));
  double kl = 0.0;
  for (Eigen::Index i = 0; i < weights.rows(); ++i) {
    const auto r = compress_attention(std::span<const T>(weights.data() + i * weights.outerStride(),
                                                         static_cast<std::size_t>(weights.cols())),
                                      options);
    std::copy(r.weights.begin(), r.weights.end(), &out(i, 0));
    kl += static_cast<double>(r.kl_to_uniform);
  }
  return static_cast<T>(kl / static_cast<double>(weights.rows()));
}

}  // namespace ruvector::attention
