#pragma once
// Independent double-precision brute force for mixed-curvature attention (E^e × H^h × S^s).
//
// Written from the formulas, not from the library: includes no library header, and uses
// different (more direct) evaluations than the library's fused kernel wherever possible:
//   - Poincaré distance (Ganea et al. 2018) with ‖x − y‖² summed directly over (x_i − y_i)²:
//       d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²)))
//   - tangent similarity via the explicit map log₀y = artanh(√c‖y‖)·y/(√c‖y‖) (log₀0 = 0),
//     then a plain inner product of the two tangent vectors;
//   - sphere angle via the well-conditioned 2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖) instead of arccos,
//     d_S = R·angle with R = 1/√c_s;
//   - softmax over visible keys with a max shift, per head; mean of the heads' outputs.
// The ball projection is the documented convention: x ↦ x·r/‖x‖ when ‖x‖ > r,
// r = (1 − eps)/√c; the caller passes the rounding of the stored point (identity for double,
// rounding to float for float) since the library documents that it stores the projected point
// in T.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ruvector_test::curvature_oracle {

using vec = std::vector<double>;

/// Everything the reference needs (all resolved: no defaults).
struct params {
  std::size_t e = 0, h = 0, s = 0;
  double c = 1.0;                                ///< ball curvature magnitude (> 0)
  double c_s = 1.0;                              ///< sphere curvature (> 0)
  std::vector<std::array<double, 3>> weights{};  ///< per head (w_e, w_h, w_s)
  double tau = 1.0;
  double euclidean_scale = 1.0;  ///< s_E (already resolved)
  bool tangent = false;  ///< hyperbolic similarity: tangent inner product (else −distance)
  double ball_eps = 1e-5;
  std::function<double(double)> round_stored = [](double x) { return x; };
};

inline double norm2(const vec& x) {
  double a = 0.0;
  for (double v : x) a += v * v;
  return a;
}

inline vec slice(const vec& x, std::size_t b, std::size_t n) {
  return vec(x.begin() + static_cast<std::ptrdiff_t>(b),
             x.begin() + static_cast<std::ptrdiff_t>(b + n));
}

/// Projection into the ball of radius (1 − eps)/√c, then the caller's rounding.
inline vec project_ball(const vec& x, const params& p) {
  const double r = (1.0 - p.ball_eps) / std::sqrt(p.c);
  const double nx = std::sqrt(norm2(x));
  vec y = x;
  if (nx > r)
    for (double& v : y) v = p.round_stored(v * (r / nx));
  return y;
}

inline double poincare_distance(const vec& x, const vec& y, double c) {
  double diff2 = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) diff2 += (x[i] - y[i]) * (x[i] - y[i]);
  const double arg = 1.0 + 2.0 * c * diff2 / ((1.0 - c * norm2(x)) * (1.0 - c * norm2(y)));
  return std::acosh(arg) / std::sqrt(c);
}

inline vec log0(const vec& y, double c) {
  const double ny = std::sqrt(norm2(y));
  vec out(y.size(), 0.0);
  if (ny == 0.0) return out;
  const double f = std::atanh(std::sqrt(c) * ny) / (std::sqrt(c) * ny);
  for (std::size_t i = 0; i < y.size(); ++i) out[i] = f * y[i];
  return out;
}

/// Geodesic distance on the sphere of radius R after radial projection of x and y.
inline double sphere_distance(const vec& x, const vec& y, double radius) {
  const double nx = std::sqrt(norm2(x)), ny = std::sqrt(norm2(y));
  if (nx == 0.0 || ny == 0.0) throw std::logic_error("oracle: zero spherical part");
  double dm = 0.0, dp = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double a = x[i] / nx, b = y[i] / ny;
    dm += (a - b) * (a - b);
    dp += (a + b) * (a + b);
  }
  return radius * 2.0 * std::atan2(std::sqrt(dm), std::sqrt(dp));
}

/// The three component similarities (s_E·⟨q_E,k_E⟩, sim_H, −d_S) of one query/key pair.
inline std::array<double, 3> components(const vec& q, const vec& k, const params& p) {
  std::array<double, 3> r{0.0, 0.0, 0.0};
  double de = 0.0;
  for (std::size_t i = 0; i < p.e; ++i) de += q[i] * k[i];
  r[0] = p.euclidean_scale * de;
  if (p.h > 0) {
    const vec qh = project_ball(slice(q, p.e, p.h), p);
    const vec kh = project_ball(slice(k, p.e, p.h), p);
    if (p.tangent) {
      const vec a = log0(qh, p.c), b = log0(kh, p.c);
      double t = 0.0;
      for (std::size_t i = 0; i < p.h; ++i) t += a[i] * b[i];
      r[1] = t;
    } else {
      r[1] = -poincare_distance(qh, kh, p.c);
    }
  }
  if (p.s > 0)
    r[2] = -sphere_distance(slice(q, p.e + p.h, p.s), slice(k, p.e + p.h, p.s),
                            1.0 / std::sqrt(p.c_s));
  return r;
}

/// Head `head`'s logits over all keys (no mask).
inline vec logits(const vec& q, const std::vector<vec>& keys, const params& p, std::size_t head) {
  const auto& w = p.weights.at(head);
  vec out(keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j) {
    const auto c = components(q, keys[j], p);
    out[j] = (w[0] * c[0] + w[1] * c[1] + w[2] * c[2]) / p.tau;
  }
  return out;
}

/// Softmax over the visible entries (mask empty = all visible); all hidden → zeros.
inline vec softmax(const vec& x, const std::vector<bool>& mask) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < x.size(); ++j)
    if (mask.empty() || mask[j]) m = std::max(m, x[j]);
  vec w(x.size(), 0.0);
  if (m == -std::numeric_limits<double>::infinity()) return w;
  double l = 0.0;
  for (std::size_t j = 0; j < x.size(); ++j)
    if (mask.empty() || mask[j]) l += std::exp(x[j] - m);
  for (std::size_t j = 0; j < x.size(); ++j)
    if (mask.empty() || mask[j]) w[j] = std::exp(x[j] - m) / l;
  return w;
}

/// Result of `reference`.
struct result {
  std::vector<vec> head_weights;  ///< [H][n]
  std::vector<vec> head_out;      ///< [H][dv]
  vec mean;                       ///< [dv]
};

/// Brute-force mixed-curvature attention; see the file comment.
inline result reference(const vec& q, const std::vector<vec>& keys, const std::vector<vec>& values,
                        const params& p, const std::vector<bool>& mask = {}) {
  if (keys.size() != values.size()) throw std::logic_error("oracle: keys/values count");
  const std::size_t H = p.weights.size();
  const std::size_t dv = values.empty() ? 0 : values[0].size();
  result r;
  r.mean.assign(dv, 0.0);
  for (std::size_t h = 0; h < H; ++h) {
    const vec w = softmax(logits(q, keys, p, h), mask);
    vec o(dv, 0.0);
    for (std::size_t j = 0; j < keys.size(); ++j)
      for (std::size_t c = 0; c < dv; ++c) o[c] += w[j] * values[j][c];
    for (std::size_t c = 0; c < dv; ++c) r.mean[c] += o[c] / static_cast<double>(H);
    r.head_weights.push_back(w);
    r.head_out.push_back(o);
  }
  return r;
}

}  // namespace ruvector_test::curvature_oracle
