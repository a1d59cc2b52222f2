#pragma once
/// \file geometry/poincare.hpp
/// \brief The Poincaré ball 𝔻ⁿ_c of constant curvature −c (c > 0) as a
/// `constant_curvature_manifold`, with the gyrovector operations of Ganea, Bécigneul & Hofmann
/// 2018, "Hyperbolic Neural Networks" (NeurIPS), §2, and Ungar 2008, "Analytic Hyperbolic
/// Geometry and Albert Einstein's Special Theory of Relativity".
///
/// Points are x ∈ Rⁿ with c‖x‖² < 1; tangent vectors at x are all of Rⁿ. With β_x = 1 − c‖x‖²:
///
///     λ_x        = 2 / (1 − c‖x‖²) = 2/β_x                       (conformal factor)
///     ⟨u, v⟩_x   = λ_x² ⟨u, v⟩                                    (Riemannian metric)
///     x ⊕ y      = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)
///     r ⊗ x      = (1/√c) tanh(r artanh(√c‖x‖)) x/‖x‖             (r ⊗ 0 = 0)
///     gyr[u,v]w  = ⊖(u ⊕ v) ⊕ (u ⊕ (v ⊕ w))
///     d(x, y)    = (2/√c) artanh(√c ‖(−x) ⊕ y‖)
///     exp_x(v)   = x ⊕ (tanh(√c λ_x ‖v‖/2) v/(√c‖v‖))               (exp_x(0) = x)
///     log_x(y)   = (2/(√c λ_x)) artanh(√c‖(−x) ⊕ y‖) ((−x) ⊕ y)/‖(−x) ⊕ y‖
///     exp_0(v)   = tanh(√c‖v‖) v/(√c‖v‖),   log_0(y) = artanh(√c‖y‖) y/(√c‖y‖)
///     P_{x→y}(v) = (λ_x/λ_y) gyr[y, −x] v                         (parallel transport)
///
/// This is the full conformal factor 2/(1 − c‖x‖²) of Ganea et al. (the Rust crate this library
/// replaces used half of it, which breaks exp_x ∘ log_x = id away from the origin).
///
/// Evaluation (all algebraically identical to the formulas above, chosen so that close points and
/// points near the boundary keep their digits; none allocates):
/// - ‖x − y‖² and ‖x + y‖² are formed from the element-wise difference/sum in one fused pass with
///   ‖x‖² and ‖y‖², never as ‖x‖² + ‖y‖² ± 2⟨x, y⟩ (which cancels catastrophically).
/// - The Möbius denominator is 1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖² = β_x β_y + c‖x + y‖² (a sum of
///   non-negative terms).
/// - d(x, y) = (1/√c) arcosh(1 + δ) with δ = 2c‖x − y‖²/(β_x β_y), evaluated as
///   (1/√c) log1p(δ + √δ·√(δ + 2)), accurate for δ → 0 and free of overflow.
/// - log_x(y) = g(δ)·β_x/√(2β_xβ_y D) · (β_x (y − x) − c‖x − y‖² x) with D = β_xβ_y + c‖x − y‖² and
///   g(δ) = arcosh(1 + δ)/√δ (g(0) = √2): the same value as the formula above, without dividing by
///   a vanishing ‖(−x) ⊕ y‖.
/// - artanh(√c‖x‖) = ½ log1p(2r(1 + r)/β_x) with r = √c‖x‖, accurate at both ends.
/// - gyr[y, −x]w (parallel transport, `gyration`) uses Ungar's closed form rewritten in
///   Δ = y − x so that every correction term is O(‖Δ‖) (no cancellation for close points).
///
/// Numerical conventions:
/// - eps: the library keeps the points it produces in the closed ball of radius
///   max_norm = (1 − eps)/√c. Defaults: 1e-5 for float, 1e-10 for double. Near the boundary one
///   unit in the last place of a coordinate moves a distance by about λ_x·ulp(‖x‖); at
///   √c‖x‖ = 1 − eps that is ≈ 6e-3 for float (ulp 6e-8, λ ≈ 1e5) and ≈ 1e-6 for double
///   (ulp 1.1e-16, λ ≈ 1e10), the coarsest resolution still useful for attention scores. The
///   largest distance from the origin is then (1/√c) ln((2 − eps)/eps) ≈ 12.2/√c (float) and
///   ≈ 23.7/√c (double). eps must lie in [16·ε_T, 0.5) (ε_T = machine epsilon): below that,
///   max_norm is not distinguishable from the boundary in T.
/// - Outputs that are points (mobius_add, mobius_scalar_mul, exp, exp0, project) are projected
///   onto that closed ball when they land outside it (mobius_add and exp check the norm of the
///   computed point in one extra pass; the others know it in closed form).
/// - Inputs that are points must lie in the open ball c‖x‖² < 1 (they may lie beyond max_norm):
///   otherwise `invalid_argument`; a NaN/Inf coordinate throws `non_finite_input` naming it.
///   Both checks are on scalars the formulas need anyway, so the happy path costs nothing;
///   tangent vectors and gyration/transport arguments are checked the same way (a squared norm
///   or dot product that is not finite). Sizes must agree (`dimension_mismatch`); the size-0
///   ball (a single point) is accepted.
/// - Tangent vectors with finite coordinates whose squared norm overflows T are accepted by exp,
///   exp0 and project (their norm is formed with scaling on that rare path).
/// - Conditioning: results are accurate to a few ε_T·λ relative to the ball radius, which is the
///   resolution of the inputs themselves. The exception is inherent: exp_x(v) along a long
///   geodesic amplifies a relative error ε in v to ~ε·sinh(√c‖v‖_x)/√c in distance (geodesics
///   diverge exponentially), e.g. ~0.3/√c in float for √c‖v‖_x ≈ 16 near the boundary.
/// - `out` must not overlap the inputs (the manifold concept's rule); element-wise ops tolerate
///   `out` being exactly one of the inputs, but this is not guaranteed API.
/// - Besides the `manifold` API, `distances(x, ys, out)` evaluates d(x, ·) for every row of a
///   matrix (the attention-score loop).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

namespace detail {

// ---- fused kernels (no validation, noexcept) ---------------------------------------------------

/// ‖x‖², ‖y‖² and ‖x + a·y‖².
template <class T>
struct geo_pair_sums {
  T xx;
  T yy;
  T zz;
};

/// One pass over x and y: ‖x‖², ‖y‖², ‖x + a·y‖² (x + a·y formed element-wise, so a = −1 gives
/// ‖x − y‖² with full relative accuracy for close points). Two accumulator sets per step.
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] geo_pair_sums<T> geo_pair_norms(const T* x, const T* y, T a, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  geo_pair_sums<T> r{T(0), T(0), T(0)};
  if (n >= W) {
    const B ab(a);
    B xx0(T(0)), yy0(T(0)), zz0(T(0)), xx1(T(0)), yy1(T(0)), zz1(T(0));
    for (; i + 2 * W <= n; i += 2 * W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B x1 = B::load_unaligned(x + i + W);
      const B y1 = B::load_unaligned(y + i + W);
      const B z0 = xsimd::fma(ab, y0, x0);
      const B z1 = xsimd::fma(ab, y1, x1);
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      zz0 = xsimd::fma(z0, z0, zz0);
      xx1 = xsimd::fma(x1, x1, xx1);
      yy1 = xsimd::fma(y1, y1, yy1);
      zz1 = xsimd::fma(z1, z1, zz1);
    }
    for (; i + W <= n; i += W) {
      const B x0 = B::load_unaligned(x + i);
      const B y0 = B::load_unaligned(y + i);
      const B z0 = xsimd::fma(ab, y0, x0);
      xx0 = xsimd::fma(x0, x0, xx0);
      yy0 = xsimd::fma(y0, y0, yy0);
      zz0 = xsimd::fma(z0, z0, zz0);
    }
    r.xx = kernels::detail::hsum(xx0 + xx1);
    r.yy = kernels::detail::hsum(yy0 + yy1);
    r.zz = kernels::detail::hsum(zz0 + zz1);
  }
  for (; i < n; ++i) {
    const T z = x[i] + a * y[i];
    r.xx += x[i] * x[i];
    r.yy += y[i] * y[i];
    r.zz += z * z;
  }
  return r;
}

/// The scalars of Ungar's gyration gyr[y, −x]w in the variable Δ = y − x, where x = sx·x_raw.
template <class T>
struct geo_gyr_sums {
  T xx;  ///< ‖x‖²
  T yy;  ///< ‖y‖²
  T xw;  ///< ⟨x, w⟩
  T dw;  ///< ⟨Δ, w⟩
  T xd;  ///< ⟨x, Δ⟩
  T dd;  ///< ‖Δ‖²
};

/// One pass over y, x_raw and w computing `geo_gyr_sums` with x = sx·x_raw (sx = ±1).
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] geo_gyr_sums<T> geo_gyr_norms(const T* y, const T* x_raw, T sx, const T* w,
                                            std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  geo_gyr_sums<T> r{T(0), T(0), T(0), T(0), T(0), T(0)};
  if (n >= W) {
    const B sb(sx);
    B xx(T(0)), yy(T(0)), xw(T(0)), dw(T(0)), xd(T(0)), dd(T(0));
    for (; i + W <= n; i += W) {
      const B xb = sb * B::load_unaligned(x_raw + i);
      const B yb = B::load_unaligned(y + i);
      const B wb = B::load_unaligned(w + i);
      const B db = yb - xb;
      xx = xsimd::fma(xb, xb, xx);
      yy = xsimd::fma(yb, yb, yy);
      xw = xsimd::fma(xb, wb, xw);
      dw = xsimd::fma(db, wb, dw);
      xd = xsimd::fma(xb, db, xd);
      dd = xsimd::fma(db, db, dd);
    }
    r = {kernels::detail::hsum(xx), kernels::detail::hsum(yy), kernels::detail::hsum(xw),
         kernels::detail::hsum(dw), kernels::detail::hsum(xd), kernels::detail::hsum(dd)};
  }
  for (; i < n; ++i) {
    const T xi = sx * x_raw[i];
    const T di = y[i] - xi;
    r.xx += xi * xi;
    r.yy += y[i] * y[i];
    r.xw += xi * w[i];
    r.dw += di * w[i];
    r.xd += xi * di;
    r.dd += di * di;
  }
  return r;
}

/// out = a·x + b·y (element-wise; out may be exactly x or y).
template <class T, class Arch = kernels::default_arch>
void geo_axpby(T a, const T* x, T b, const T* y, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B ab(a), bb(b);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    xsimd::fma(ab, B::load_unaligned(x + i), bb * B::load_unaligned(y + i))
        .store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = a * x[i] + b * y[i];
}

/// out = a·x (element-wise; out may be exactly x).
template <class T, class Arch = kernels::default_arch>
void geo_scaled(T a, const T* x, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B ab(a);
  std::size_t i = 0;
  for (; i + W <= n; i += W) (ab * B::load_unaligned(x + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = a * x[i];
}

/// out = p·(y − x) + q·x, the difference formed first (element-wise; out may be exactly x or y).
template <class T, class Arch = kernels::default_arch>
void geo_diff_axpy(T p, const T* x, const T* y, T q, T* out, std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B pb(p), qb(q);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B xb = B::load_unaligned(x + i);
    xsimd::fma(pb, B::load_unaligned(y + i) - xb, qb * xb).store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = p * (y[i] - x[i]) + q * x[i];
}

/// out = k·(w + b·x + e·(y − x)) with x = sx·x_raw (element-wise; the gyration write pass).
template <class T, class Arch = kernels::default_arch>
void geo_gyr_combine(T k, const T* w, T b, const T* x_raw, T sx, T e, const T* y, T* out,
                     std::size_t n) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B kb(k), bb(b), eb(e), sb(sx);
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B xb = sb * B::load_unaligned(x_raw + i);
    const B t =
        xsimd::fma(eb, B::load_unaligned(y + i) - xb, xsimd::fma(bb, xb, B::load_unaligned(w + i)));
    (kb * t).store_unaligned(out + i);
  }
  for (; i < n; ++i) {
    const T xi = sx * x_raw[i];
    out[i] = k * (e * (y[i] - xi) + (b * xi + w[i]));
  }
}

// ---- scalar helpers ----------------------------------------------------------------------------

/// artanh(r) for r ∈ [0, 1) given beta = 1 − r² computed separately (more accurately than from
/// r): artanh(r) = ½ log1p(2r/(1 − r)) = ½ log1p(2r(1 + r)/β).
template <class T>
[[nodiscard]] inline T geo_artanh(T r, T beta) noexcept {
  return T(0.5) * std::log1p(T(2) * r * (T(1) + r) / beta);
}

/// arcosh(1 + δ) for δ ≥ 0, as log1p(δ + √δ·√(δ + 2)) (accurate for small δ, no overflow).
template <class T>
[[nodiscard]] inline T geo_arcosh1p(T delta) noexcept {
  return std::log1p(delta + std::sqrt(delta) * std::sqrt(delta + T(2)));
}

/// arcosh(1 + δ)/√δ for δ ≥ 0 (→ √2 as δ → 0).
template <class T>
[[nodiscard]] inline T geo_arcosh1p_over_sqrt(T delta) noexcept {
  if (!(delta > T(0))) return std::sqrt(T(2));
  return geo_arcosh1p(delta) / std::sqrt(delta);
}

/// A Euclidean norm as m·r, so that vectors with finite coordinates whose squared norm
/// overflows T (‖x‖ > ~1e19 in float) are still handled: m = 1, r = ‖x‖ normally, and
/// m = max|xᵢ|, r = ‖x/m‖ ∈ [1, √n] on the rare overflow path.
template <class T>
struct geo_norm_parts {
  T m;
  T r;
  /// ‖x‖ (+inf if it is not representable).
  [[nodiscard]] T value() const noexcept { return m * r; }
  /// a/‖x‖ without overflow (requires r > 0).
  [[nodiscard]] T divide(T a) const noexcept { return (a / r) / m; }
};

/// The parts of ‖x‖ given ss = Σ xᵢ² as computed (finite coordinates assumed).
template <class T>
[[nodiscard]] geo_norm_parts<T> geo_norm_from(const T* x, std::size_t n, T ss) noexcept {
  if (std::isfinite(ss)) return {T(1), std::sqrt(ss)};
  T m = T(0);
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  T s = T(0);
  for (std::size_t i = 0; i < n; ++i) {
    const T t = x[i] / m;
    s += t * t;
  }
  return {m, std::sqrt(s)};
}

// ---- error paths -------------------------------------------------------------------------------

/// "fn: arg", the `what` of an error message.
[[nodiscard]] inline std::string geo_what(std::string_view fn, std::string_view arg) {
  std::string s(fn);
  s.append(": ").append(arg);
  return s;
}

/// Throws `dimension_mismatch`: "fn: arg.size() is got, expected want".
[[noreturn]] inline void geo_throw_size(std::string_view fn, std::string_view arg, std::size_t got,
                                        std::size_t want) {
  std::ostringstream os;
  os << "dimension mismatch: " << fn << ": " << arg << ".size() is " << got << ", expected "
     << want;
  throw dimension_mismatch(os.str());
}

/// Throws `dimension_mismatch` unless got == want (the check is inline, the throw is not).
inline void geo_require_size(std::string_view fn, std::string_view arg, std::size_t got,
                             std::size_t want) {
  if (got != want) geo_throw_size(fn, arg, got, want);
}

/// A point failed the ball test: `non_finite_input` naming a NaN/Inf coordinate, otherwise
/// `invalid_argument` with the offending value of c‖x‖².
template <class T>
[[noreturn]] void geo_throw_not_in_ball(std::string_view fn, std::string_view arg,
                                        std::span<const T> x, T c_xx,
                                        std::string_view model = "Poincaré ball") {
  require_finite(geo_what(fn, arg), x);
  std::ostringstream os;
  os << "invalid argument: " << fn << ": " << arg << " is not inside the " << model
     << ": c·‖x‖² = " << c_xx << ", expected < 1";
  throw invalid_argument(os.str());
}

/// A vector produced a non-finite dot product: `non_finite_input` naming the coordinate, or
/// `invalid_argument` when all coordinates are finite but the squared norm overflows.
template <class T>
[[noreturn]] void geo_throw_non_finite(std::string_view fn, std::string_view arg,
                                       std::span<const T> v) {
  require_finite(geo_what(fn, arg), v);
  std::ostringstream os;
  os << "invalid argument: " << fn << ": " << arg
     << " is too large: its squared norm overflows the scalar type";
  throw invalid_argument(os.str());
}

/// Rethrows a library error with "fn: arg row i: " prepended, keeping its type (the error path
/// of batched operations, so a message names the offending row).
[[noreturn]] inline void geo_rethrow_for_row(const error& e, std::string_view fn,
                                             std::string_view arg, std::size_t row) {
  std::string msg(fn);
  msg.append(": ").append(arg).append(" row ").append(std::to_string(row)).append(": ");
  msg.append(e.what());
  if (dynamic_cast<const non_finite_input*>(&e) != nullptr) throw non_finite_input(msg);
  if (dynamic_cast<const dimension_mismatch*>(&e) != nullptr) throw dimension_mismatch(msg);
  if (dynamic_cast<const invalid_argument*>(&e) != nullptr) throw invalid_argument(msg);
  if (dynamic_cast<const input_too_large*>(&e) != nullptr) throw input_too_large(msg);
  if (dynamic_cast<const invalid_config*>(&e) != nullptr) throw invalid_config(msg);
  if (dynamic_cast<const io_error*>(&e) != nullptr) throw io_error(msg);
  throw error(msg);
}

}  // namespace detail

/// \brief The Poincaré ball of curvature −c (Ganea et al. 2018); see the file comment for every
/// formula and numerical convention.
/// \tparam T float or double.
///
/// An immutable description (c, eps): safe to share across threads. Every operation works in
/// ambient coordinates of any dimension n (the spans' size) and writes into a caller-provided
/// `out` of size n; none allocates.
template <attention_scalar T>
class poincare_ball {
 public:
  using value_type = T;

  /// Default boundary margin: points are kept within (1 − eps)/√c (see the file comment).
  static constexpr T default_eps = std::is_same_v<T, float> ? T(1e-5) : T(1e-10);
  /// Smallest accepted eps (16 machine epsilons).
  static constexpr T min_eps = T(16) * std::numeric_limits<T>::epsilon();

  /// Ball of curvature −c. Throws `invalid_argument` unless c is finite and > 0 and
  /// eps ∈ [min_eps, 0.5).
  explicit poincare_ball(T c = T(1), T eps = default_eps) : c_(c), eps_(eps) {
    if (!(std::isfinite(c) && c > T(0))) {
      std::ostringstream os;
      os << "invalid argument: poincare_ball: c must be finite and > 0 (curvature −c), got " << c;
      throw invalid_argument(os.str());
    }
    if (!(eps >= min_eps && eps < T(0.5))) {
      std::ostringstream os;
      os << "invalid argument: poincare_ball: eps must lie in [" << min_eps << ", 0.5), got "
         << eps;
      throw invalid_argument(os.str());
    }
    sqrt_c_ = std::sqrt(c);
    max_norm_ = (T(1) - eps) / sqrt_c_;
    max_norm_sq_ = max_norm_ * max_norm_;
  }

  /// c (> 0); the curvature is −c.
  [[nodiscard]] T c() const noexcept { return c_; }
  /// The sectional curvature −c.
  [[nodiscard]] T curvature() const noexcept { return -c_; }
  /// The boundary margin eps.
  [[nodiscard]] T eps() const noexcept { return eps_; }
  /// (1 − eps)/√c: the largest norm of a point the library produces.
  [[nodiscard]] T max_norm() const noexcept { return max_norm_; }

  /// λ_x = 2/(1 − c‖x‖²).
  [[nodiscard]] T conformal_factor(std::span<const T> x) const {
    const T xx = kernels::dot(x.data(), x.data(), x.size());
    return T(2) / point_beta("poincare_ball::conformal_factor", "x", x, xx);
  }

  /// out = x ⊕ y (Möbius addition), projected onto the ball of radius max_norm.
  void mobius_add(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::mobius_add";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto s = detail::geo_pair_norms(x.data(), y.data(), T(1), n);
    const T bx = point_beta(fn, "x", x, s.xx);
    const T by = point_beta(fn, "y", y, s.yy);
    // x ⊕ y = ((β_x + c‖x + y‖²) x + β_x y)/D,  D = β_x β_y + c‖x + y‖².
    const T czz = c_ * s.zz;
    const T inv = T(1) / (bx * by + czz);
    detail::geo_axpby((bx + czz) * inv, x.data(), bx * inv, y.data(), out.data(), n);
    project_in_place(out);
  }

  /// out = r ⊗ x (Möbius scalar multiplication), projected onto the ball of radius max_norm.
  void mobius_scalar_mul(T r, std::span<const T> x, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::mobius_scalar_mul";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    if (!std::isfinite(r)) detail::throw_non_finite(detail::geo_what(fn, "r"), 0, r);
    const T xx = kernels::dot(x.data(), x.data(), n);
    const T bx = point_beta(fn, "x", x, xx);
    const T nx = std::sqrt(xx);
    if (nx == T(0) || r == T(0)) {
      detail::geo_scaled(T(0), x.data(), out.data(), n);
      return;
    }
    const T z = sqrt_c_ * nx;
    T t = std::tanh(r * detail::geo_artanh(z, bx));
    t = std::clamp(t, -(T(1) - eps_), T(1) - eps_);
    detail::geo_scaled(t / z, x.data(), out.data(), n);
  }

  /// out = gyr[u, v]w = ⊖(u ⊕ v) ⊕ (u ⊕ (v ⊕ w)) (Ungar's closed form); u, v ball points, w any
  /// vector. A linear isometry of Rⁿ for fixed u, v.
  void gyration(std::span<const T> u, std::span<const T> v, std::span<const T> w,
                std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::gyration";
    const std::size_t n = u.size();
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "w", w.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    // gyr[u, v] = gyr[y, −x] with y = u, x = −v.
    gyr_core(fn, u, "u", v, "v", T(-1), w, "w", false, out);
  }

  /// d(x, y) = (2/√c) artanh(√c‖(−x) ⊕ y‖).
  [[nodiscard]] T distance(std::span<const T> x, std::span<const T> y) const {
    constexpr std::string_view fn = "poincare_ball::distance";
    detail::geo_require_size(fn, "y", y.size(), x.size());
    const auto s = detail::geo_pair_norms(x.data(), y.data(), T(-1), x.size());
    const T bx = point_beta(fn, "x", x, s.xx);
    const T by = point_beta(fn, "y", y, s.yy);
    return detail::geo_arcosh1p(T(2) * c_ * s.zz / (bx * by)) / sqrt_c_;
  }

  /// out[j] = d(x, ys.row(j)) for every row of `ys` (rows = points of the same dimension as x).
  void distances(std::span<const T> x, const matrix_cref<T>& ys, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::distances";
    const std::size_t n = x.size();
    const auto rows = static_cast<std::size_t>(ys.rows());
    detail::geo_require_size(fn, "ys.cols() (as ys rows)", static_cast<std::size_t>(ys.cols()), n);
    detail::geo_require_size(fn, "out", out.size(), rows);
    const T xx = kernels::dot(x.data(), x.data(), n);
    const T bx = point_beta(fn, "x", x, xx);
    for (std::size_t j = 0; j < rows; ++j) {
      const T* y = ys.data() + static_cast<std::ptrdiff_t>(j) * ys.outerStride();
      const auto s = detail::geo_pair_norms(x.data(), y, T(-1), n);
      const T by = T(1) - c_ * s.yy;
      if (!(by > T(0))) {
        detail::geo_throw_not_in_ball(fn, std::string("ys row ").append(std::to_string(j)),
                                      std::span<const T>(y, n), c_ * s.yy);
      }
      out[j] = detail::geo_arcosh1p(T(2) * c_ * s.zz / (bx * by)) / sqrt_c_;  // as `distance`
    }
  }

  /// d(0, x) = (2/√c) artanh(√c‖x‖).
  [[nodiscard]] T distance_from_origin(std::span<const T> x) const {
    const T xx = kernels::dot(x.data(), x.data(), x.size());
    const T bx = point_beta("poincare_ball::distance_from_origin", "x", x, xx);
    return T(2) * detail::geo_artanh(sqrt_c_ * std::sqrt(xx), bx) / sqrt_c_;
  }

  /// ⟨u, v⟩_x = λ_x² ⟨u, v⟩.
  [[nodiscard]] T inner(std::span<const T> x, std::span<const T> u, std::span<const T> v) const {
    constexpr std::string_view fn = "poincare_ball::inner";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "u", u.size(), n);
    detail::geo_require_size(fn, "v", v.size(), n);
    const T lambda = T(2) / point_beta(fn, "x", x, kernels::dot(x.data(), x.data(), n));
    const T uv = kernels::dot(u.data(), v.data(), n);
    if (!std::isfinite(uv)) {
      require_finite(detail::geo_what(fn, "u"), u);
      detail::geo_throw_non_finite(fn, "v", v);
    }
    return lambda * lambda * uv;
  }

  /// ‖u‖_x = λ_x ‖u‖.
  [[nodiscard]] T norm(std::span<const T> x, std::span<const T> u) const {
    constexpr std::string_view fn = "poincare_ball::norm";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "u", u.size(), n);
    const T lambda = T(2) / point_beta(fn, "x", x, kernels::dot(x.data(), x.data(), n));
    const T uu = kernels::dot(u.data(), u.data(), n);
    if (!std::isfinite(uu)) detail::geo_throw_non_finite(fn, "u", u);
    return lambda * std::sqrt(uu);
  }

  /// out = exp_x(v) = x ⊕ (tanh(√c λ_x‖v‖/2) v/(√c‖v‖)), projected onto the ball of radius
  /// max_norm.
  void exp(std::span<const T> x, std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::exp";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto s0 = detail::geo_pair_norms(x.data(), v.data(), T(0), n);
    const T bx = point_beta(fn, "x", x, s0.xx);
    if (!std::isfinite(s0.yy)) require_finite(detail::geo_what(fn, "v"), v);
    const auto nv = detail::geo_norm_from(v.data(), n, s0.yy);
    if (nv.r == T(0)) {
      detail::geo_scaled(T(1), x.data(), out.data(), n);
      project_in_place(out);
      return;
    }
    // u = s·v with ‖u‖ = tanh(θ)/√c, θ = √c λ_x ‖v‖/2 = √c‖v‖/β_x; 1 − c‖u‖² = 1/cosh²θ.
    const T theta = sqrt_c_ * nv.value() / bx;  // +inf when ‖v‖ overflows: t = 1
    const T t = std::tanh(theta);
    const T ch = std::cosh(theta);
    const T bu = T(1) / (ch * ch);  // 0 once cosh overflows: then x ⊕ u is on the boundary
    const T sv = nv.divide(t / sqrt_c_);
    // x ⊕ u with ‖x + u‖² formed element-wise (second pass).
    const T czz = c_ * detail::geo_pair_norms(x.data(), v.data(), sv, n).zz;
    const T inv = T(1) / (bx * bu + czz);
    detail::geo_axpby((bx + czz) * inv, x.data(), bx * sv * inv, v.data(), out.data(), n);
    project_in_place(out);
  }

  /// out = log_x(y) (see the file comment for the evaluated form).
  void log(std::span<const T> x, std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::log";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    const auto s = detail::geo_pair_norms(x.data(), y.data(), T(-1), n);
    const T bx = point_beta(fn, "x", x, s.xx);
    const T by = point_beta(fn, "y", y, s.yy);
    const T bxy = bx * by;
    const T cdd = c_ * s.zz;
    const T delta = T(2) * cdd / bxy;
    const T coef = detail::geo_arcosh1p_over_sqrt(delta) * bx / std::sqrt(T(2) * bxy * (bxy + cdd));
    // out = coef·(β_x (y − x) − c‖x − y‖² x)
    detail::geo_diff_axpy(coef * bx, x.data(), y.data(), -coef * cdd, out.data(), n);
  }

  /// out = exp_0(v) = tanh(√c‖v‖) v/(√c‖v‖), with tanh capped at 1 − eps (norm ≤ max_norm).
  void exp0(std::span<const T> v, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::exp0";
    const std::size_t n = v.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T vv = kernels::dot(v.data(), v.data(), n);
    if (!std::isfinite(vv)) require_finite(detail::geo_what(fn, "v"), v);
    const auto nv = detail::geo_norm_from(v.data(), n, vv);
    const T z = sqrt_c_ * nv.value();
    const T f = nv.r > T(0) ? nv.divide(std::min(std::tanh(z), T(1) - eps_) / sqrt_c_) : T(1);
    detail::geo_scaled(f, v.data(), out.data(), n);
  }

  /// out = log_0(y) = artanh(√c‖y‖) y/(√c‖y‖).
  void log0(std::span<const T> y, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::log0";
    const std::size_t n = y.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T yy = kernels::dot(y.data(), y.data(), n);
    const T by = point_beta(fn, "y", y, yy);
    const T z = sqrt_c_ * std::sqrt(yy);
    const T f = z > T(0) ? detail::geo_artanh(z, by) / z : T(1);
    detail::geo_scaled(f, y.data(), out.data(), n);
  }

  /// out = P_{x→y}(v) = (λ_x/λ_y) gyr[y, −x]v: parallel transport of v ∈ T_x along the geodesic
  /// to T_y (Ganea et al. 2018). Preserves ⟨·,·⟩_x → ⟨·,·⟩_y.
  void transport(std::span<const T> x, std::span<const T> y, std::span<const T> v,
                 std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::transport";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "y", y.size(), n);
    detail::geo_require_size(fn, "v", v.size(), n);
    detail::geo_require_size(fn, "out", out.size(), n);
    gyr_core(fn, y, "y", x, "x", T(1), v, "v", true, out);
  }

  /// out = x if ‖x‖ ≤ max_norm, else max_norm·x/‖x‖. Throws `non_finite_input` on NaN/Inf.
  void project(std::span<const T> x, std::span<T> out) const {
    constexpr std::string_view fn = "poincare_ball::project";
    const std::size_t n = x.size();
    detail::geo_require_size(fn, "out", out.size(), n);
    const T xx = kernels::dot(x.data(), x.data(), n);
    if (!std::isfinite(xx)) {
      require_finite(detail::geo_what(fn, "x"), x);
      detail::geo_scaled(detail::geo_norm_from(x.data(), n, xx).divide(max_norm_), x.data(),
                         out.data(), n);
      return;
    }
    detail::geo_scaled(xx > max_norm_sq_ ? max_norm_ / std::sqrt(xx) : T(1), x.data(), out.data(),
                       n);
  }

  /// out = 0, the origin.
  void origin(std::span<T> out) const noexcept {
    for (auto& v : out) v = T(0);
  }

  /// True when every coordinate is finite and c‖x‖² < 1 (the open ball; points beyond max_norm
  /// but inside the ball are accepted by every operation).
  [[nodiscard]] bool contains(std::span<const T> x) const noexcept {
    const T xx = kernels::dot(x.data(), x.data(), x.size());
    return T(1) - c_ * xx > T(0);  // false for NaN; Inf gives −Inf
  }

 private:
  /// β = 1 − c‖x‖² > 0, or the error naming `arg`.
  T point_beta(std::string_view fn, std::string_view arg, std::span<const T> x, T xx) const {
    const T b = T(1) - c_ * xx;
    if (!(b > T(0))) detail::geo_throw_not_in_ball(fn, arg, x, c_ * xx);
    return b;
  }

  /// Projects `out` onto the ball of radius max_norm. (1 − c‖x ⊕ y‖² = β_xβ_y/D is known
  /// analytically, but near the boundary the computed point can differ from the exact one by more
  /// than its distance to the boundary — exp over long geodesics is ill-conditioned — so the
  /// norm of the computed point itself is checked.)
  void project_in_place(std::span<T> out) const noexcept {
    const T oo = kernels::dot(out.data(), out.data(), out.size());
    if (oo > max_norm_sq_) kernels::scale(max_norm_ / std::sqrt(oo), out.data(), out.size());
  }

  /// out = k·gyr[y, −x]w with x = sx·x_raw, and k = λ_x/λ_y = β_y/β_x for `transport`, k = 1
  /// otherwise (gyration). Ungar's closed form
  ///   gyr[a, b]w = w + 2(A a + B b)/D,
  ///   A = −c²⟨a,w⟩‖b‖² + c⟨b,w⟩ + 2c²⟨a,b⟩⟨b,w⟩,  B = −c²⟨b,w⟩‖a‖² − c⟨a,w⟩,
  ///   D = 1 + 2c⟨a,b⟩ + c²‖a‖²‖b‖²,
  /// with a = y, b = −x and y = x + Δ becomes
  ///   A a + B b = P x + Q Δ,  P = cβ_x⟨Δ,w⟩ − c²⟨x,w⟩‖Δ‖²,
  ///   Q = −cβ_x⟨x,w⟩ − c²‖x‖²⟨Δ,w⟩ + 2c²⟨x,Δ⟩⟨x,w⟩,  D = β_xβ_y + c‖Δ‖²,
  /// where every term of P and Q is O(‖Δ‖).
  void gyr_core(std::string_view fn, std::span<const T> y, std::string_view y_name,
                std::span<const T> x_raw, std::string_view x_name, T sx, std::span<const T> w,
                std::string_view w_name, bool transport, std::span<T> out) const {
    const std::size_t n = y.size();
    const auto s = detail::geo_gyr_norms(y.data(), x_raw.data(), sx, w.data(), n);
    const T by = point_beta(fn, y_name, y, s.yy);
    const T bx = point_beta(fn, x_name, x_raw, s.xx);
    if (!std::isfinite(s.xw + s.dw)) detail::geo_throw_non_finite(fn, w_name, w);
    const T c2 = c_ * c_;
    const T p = c_ * bx * s.dw - c2 * s.xw * s.dd;
    const T q = -c_ * bx * s.xw - c2 * s.xx * s.dw + T(2) * c2 * s.xd * s.xw;
    const T two_over_d = T(2) / (bx * by + c_ * s.dd);
    const T k = transport ? by / bx : T(1);
    detail::geo_gyr_combine(k, w.data(), p * two_over_d, x_raw.data(), sx, q * two_over_d, y.data(),
                            out.data(), n);
  }

  T c_;
  T eps_;
  T sqrt_c_ = T(1);
  T max_norm_ = T(1);
  T max_norm_sq_ = T(1);
};

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
