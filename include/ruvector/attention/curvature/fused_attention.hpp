#pragma once
/// \file curvature/fused_attention.hpp
/// \brief Mixed-curvature attention over the product space E^e × H^h × S^s with a fused
/// Euclidean + hyperbolic + spherical kernel (theory 2; the seeds' `MixedCurvatureFusedAttention`).
///
/// Vectors are stored `[euclidean | hyperbolic | spherical]` (curvature/components.hpp). For head
/// h with weights (w_e, w_h, w_s) ≥ 0 and temperature τ > 0 the logit of key k for query q is
///
///     logit_h(q, k) = [ w_e·s_E·⟨q_E, k_E⟩ + w_h·sim_H(q_H, k_H) − w_s·d_S(q_S, k_S) ] / τ
///
/// - Euclidean: s_E = `euclidean_scale`, 1/√e by default (scaled dot product, Vaswani et al. 2017).
/// - Hyperbolic (Poincaré ball of curvature −c, c = −curvature_h > 0; Ganea, Bécigneul & Hofmann
///   2018, "Hyperbolic Neural Networks"):
///     `distance`: sim_H = −d_c(x, y),
///       d_c(x, y) = (1/√c)·arcosh(1 + 2c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²))),
///       with ‖x − y‖² evaluated as ‖x‖² + ‖y‖² − 2⟨x, y⟩ clamped at 0 (so only the dot product
///       depends on both points) and arcosh(1 + z) = log1p(z + √(z(z + 2))) (accurate for small z).
///     `tangent`: sim_H = ⟨log₀x, log₀y⟩ with log₀y = (2/(√c·λ₀))·artanh(√c‖y‖)·y/‖y‖ and the
///       conformal factor λ₀ = 2, i.e. log₀y = α(y)·y with α(y) = artanh(√c‖y‖)/(√c‖y‖) (α(0) = 1).
///       log₀ is a radial rescaling, so ⟨log₀x, log₀y⟩ = α(x)·α(y)·⟨x, y⟩ exactly: the kernel uses
///       the same stored ball point in both modes and one stored scalar α per key.
/// - Spherical (sphere of radius R = 1/√c_s in R^s): d_S(x, y) = R·∠(x, y) =
///   R·arccos(clamp(⟨x̂, ŷ⟩, −1, 1)) with x̂ = x/‖x‖ — the geodesic distance after projecting both
///   points onto the sphere (radial projection; the angle does not depend on R).
///
/// weights_h = softmax over the keys of logit_h (max-subtracted, masked keys weight 0, all keys
/// masked → all-zero weights and a zero output, DESIGN.md §4); out_h = Σ_j weights_hj·v_j. The
/// vector API `compute` returns the **mean over heads** of out_h, evaluated as
/// Σ_j (1/H·Σ_h weights_hj)·v_j (one pass over the values whatever H); `compute_heads` returns
/// every out_h.
///
/// Differences from the Rust original (intended): per-head weights are configurable and every
/// head is used (not head 0 only); the key-side terms are prepared once per key set and reused
/// across queries; the Euclidean term is scaled by 1/√e; the spherical term is the geodesic
/// distance, not a cosine.
///
/// Numerical conventions:
/// - Ball projection: the hyperbolic parts of queries and keys are mapped into the closed ball of
///   radius r_max = (1 − `fused_ball_eps`)/√c, `fused_ball_eps` = 1e-5, by x ↦ x·r_max/‖x‖ when
///   ‖x‖ > r_max (computed in double, then rounded to T). The key terms ‖k_H‖², 1/(1 − c‖k_H‖²)
///   and α(k_H) are computed in double from the stored (rounded) point and stored as T, so near
///   the boundary they match the point the dot products see.
/// - Sphere: the spherical parts are divided by their norm (in double, then rounded to T). A zero
///   spherical part has no direction: it throws `invalid_argument` naming the query or the key row.
/// - Temperature: softmax is evaluated as exp((x_j − max x)·(1/τ)) with x the un-tempered mixture,
///   so a tiny τ (huge logits) cannot overflow: the result tends to the arg-max key. `logits()`
///   returns x/τ as is (it may overflow to ±inf for extreme τ).
/// - Accuracy: the fused form trades a second pass over the pair for cancellation. ‖x − y‖² is
///   exact up to ~ε_T·(‖x‖² + ‖y‖²) (ε_T = machine epsilon of T), so for two *nearly coincident*
///   points the absolute error of d_c grows like √ε_T·(1 − c‖x‖²)^(−1)/√c (largest near the
///   boundary). Likewise a dot-product error δ in ⟨x̂, ŷ⟩ moves the angle by δ/sin∠, i.e. by
///   √(2δ) for (anti)parallel points (~3e-4 rad in float, ~2e-8 in double). Well-separated pairs
///   are accurate to a few ε_T; use T = double when close pairs matter.
/// - Storage: `compute(q, keys, values)` prepares the keys into a thread-local key set each call
///   (its storage is kept per thread and reused, like the library's other scratch buffers).
/// - Validation: sizes, config ranges, a zero spherical part, and (with `check_finite`, default
///   on) NaN/±Inf in the query and keys (checked when the keys are prepared) and in the values
///   (checked lazily: only when the output is not finite). A finite input whose logits overflow
///   throws `non_finite_input` saying so.
///
/// The fused kernel has two stages, kept separate so that stage 2 can be fed with dot products
/// computed elsewhere (e.g. on quantised keys):
///   stage 1 `kernels::segment_row_dots`: one register-blocked pass over each stored key row gives
///     the three segment dot products ⟨q_E, k_E⟩, ⟨q_H, k_H⟩, ⟨q̂_S, k̂_S⟩ (three arrays of n);
///   stage 2 `kernels::curvature_similarities` turns them, with the precomputed key terms, into the
///     per-component similarities (vectorised log1p/sqrt/acos, once per key), and
///     `kernels::mix_curvature_components` forms each head's logits as a cheap pass over n.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief How the hyperbolic component compares two ball points.
enum class hyperbolic_similarity {
  distance,  ///< −d_c(q_H, k_H) (Poincaré geodesic distance)
  tangent    ///< ⟨log₀q_H, log₀k_H⟩ (inner product in the tangent space at the origin)
};

/// \brief Relative margin of the ball projection: hyperbolic parts are kept within radius
/// (1 − fused_ball_eps)/√c.
inline constexpr double fused_ball_eps = 1e-5;

/// \brief Configuration of `mixed_curvature_fused_attention` (validated by its constructor).
struct fused_curvature_config {
  /// Sizes of the [euclidean | hyperbolic | spherical] parts; total must be > 0.
  component_dims dims{};
  /// Curvature of the Poincaré ball, < 0 (the ball has curvature −c_h with c_h = −curvature_h).
  double curvature_h = -1.0;
  /// Curvature of the sphere, > 0 (radius 1/√curvature_s).
  double curvature_s = 1.0;
  /// Number of heads H ≥ 1.
  std::size_t num_heads = 1;
  /// Per-head (w_e, w_h, w_s), each finite and ≥ 0; empty = {0.5, 0.35, 0.15} for every head.
  std::vector<std::array<double, 3>> head_weights{};
  /// Softmax temperature τ > 0 (1/τ must be finite in T).
  double temperature = 1.0;
  /// Scale s_E of the Euclidean dot product, ≥ 0; 0 selects 1/√e.
  double euclidean_scale = 0.0;
  /// Similarity used for the hyperbolic part.
  hyperbolic_similarity hyperbolic = hyperbolic_similarity::distance;
  /// Throw `non_finite_input` on NaN/±Inf inputs (query, keys, values).
  bool check_finite = true;
};

/// \brief Query-side scalars of the hyperbolic part, the counterpart of the stored key terms.
template <class T>
struct fused_query_terms {
  T h_norm2 = T(0);      ///< ‖q_H‖² of the projected query
  T h_conformal = T(1);  ///< 1/(1 − c‖q_H‖²)
  T h_tangent = T(1);    ///< α(q_H) = artanh(√c‖q_H‖)/(√c‖q_H‖), 1 at the origin
};

/// \brief Key-side scalars of the hyperbolic part, one entry per key.
template <class T>
struct fused_key_terms {
  std::span<const T> h_norm2;      ///< ‖k_H‖²
  std::span<const T> h_conformal;  ///< 1/(1 − c‖k_H‖²)
  std::span<const T> h_tangent;    ///< α(k_H)
};

/// \brief Constants of stage 2 (`kernels::curvature_similarities`).
template <class T>
struct curvature_similarity_params {
  T c = T(1);                ///< c_h = −curvature_h > 0
  T sphere_radius = T(1);    ///< R = 1/√c_s
  T euclidean_scale = T(1);  ///< s_E
  hyperbolic_similarity hyperbolic = hyperbolic_similarity::distance;
  bool has_hyperbolic = true;  ///< h > 0 (otherwise sim_H = 0)
  bool has_spherical = true;   ///< s > 0 (otherwise sim_S = 0)
};

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace kernels {

namespace detail {

/// Σ_c q[c]·row_r[c] over columns [begin, begin + len) for R rows at once (R FMA chains per loaded
/// query batch, like `row_dots`), written to out[0..R).
template <std::size_t R, class T, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void segment_dots_block(const T* const* rows, const T* q,
                                                         std::size_t begin, std::size_t len,
                                                         T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const std::size_t vlen = len - len % W;
  B acc[R];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) acc[r] = B(T(0));
  for (std::size_t c = begin; c < begin + vlen; c += W) {
    const B qb = B::load_unaligned(q + c);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r)
      acc[r] = xsimd::fma(qb, B::load_unaligned(rows[r] + c), acc[r]);
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    T s = kernels::detail::hsum(acc[r]);
    for (std::size_t c = begin + vlen; c < begin + len; ++c) s += q[c] * rows[r][c];
    out[r] = s;
  }
}

}  // namespace detail

/// \brief Stage 1 of the fused kernel: for each of the n key rows (`ldk` apart, laid out
/// `[E | H | S]` per `dims`) one pass over the row gives the three segment dot products
///   dot_e[j] = ⟨q_E, k_E⟩,  dot_h[j] = ⟨q_H, k_H⟩,  dot_s[j] = ⟨q_S, k_S⟩.
/// Rows are register-blocked 8 at a time; an empty segment gives 0.
template <class T, class Arch = default_arch>
void segment_row_dots(const T* k, std::size_t n, std::size_t ldk, const component_dims& dims,
                      const T* q, T* dot_e, T* dot_h, T* dot_s) noexcept {
  constexpr std::size_t R = 8;
  const std::size_t e = dims.euclidean, h = dims.hyperbolic, s = dims.spherical;
  const std::size_t ho = dims.hyperbolic_offset(), so = dims.spherical_offset();
  std::size_t j = 0;
  for (; j + R <= n; j += R) {
    const T* rows[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) rows[r] = k + (j + r) * ldk;
    // The three segments are contiguous in each row, so the rows are streamed once, in order.
    detail::segment_dots_block<R, T, Arch>(rows, q, 0, e, dot_e + j);
    detail::segment_dots_block<R, T, Arch>(rows, q, ho, h, dot_h + j);
    detail::segment_dots_block<R, T, Arch>(rows, q, so, s, dot_s + j);
  }
  for (; j < n; ++j) {
    const T* row = k + j * ldk;
    dot_e[j] = dot<T, Arch>(q, row, e);
    dot_h[j] = dot<T, Arch>(q + ho, row + ho, h);
    dot_s[j] = dot<T, Arch>(q + so, row + so, s);
  }
}

namespace detail {

// Broadcast constants of stage 2 for one query.
template <class T, class Arch>
struct curvature_constants {
  using B = xsimd::batch<T, Arch>;
  B scale_e, q_norm2, two_c_qconf, neg_inv_sqrt_c, q_tangent, neg_radius;
  curvature_constants(const curvature_similarity_params<T>& p,
                      const fused_query_terms<T>& qt) noexcept
      : scale_e(p.euclidean_scale),
        q_norm2(qt.h_norm2),
        two_c_qconf(T(2) * p.c * qt.h_conformal),
        neg_inv_sqrt_c(-T(1) / std::sqrt(p.c)),
        q_tangent(qt.h_tangent),
        neg_radius(-p.sphere_radius) {}
};

// One batch of stage 2 (see curvature_similarities).
template <class T, class Arch>
RUVECTOR_ATTENTION_ALWAYS_INLINE void curvature_similarity_batch(
    const curvature_similarity_params<T>& p, const curvature_constants<T, Arch>& k,
    xsimd::batch<T, Arch>& e, xsimd::batch<T, Arch>& h, xsimd::batch<T, Arch>& s,
    const xsimd::batch<T, Arch>& kn2, const xsimd::batch<T, Arch>& kconf,
    const xsimd::batch<T, Arch>& ktan) noexcept {
  using B = xsimd::batch<T, Arch>;
  e = k.scale_e * e;
  if (!p.has_hyperbolic) {
    h = B(T(0));
  } else if (p.hyperbolic == hyperbolic_similarity::distance) {
    // ‖x − y‖² = ‖x‖² + ‖y‖² − 2⟨x, y⟩ ≥ 0;  z = 2c‖x − y‖²·conf_x·conf_y;
    // d = arcosh(1 + z)/√c = log1p(z + √(z(z + 2)))/√c.
    const B diff2 = xsimd::max(xsimd::fnma(B(T(2)), h, k.q_norm2 + kn2), B(T(0)));
    const B z = k.two_c_qconf * diff2 * kconf;
    const B d = xsimd::log1p(z + xsimd::sqrt(z * (z + B(T(2)))));
    h = k.neg_inv_sqrt_c * d;
  } else {
    // ⟨log₀x, log₀y⟩ = α(x)·α(y)·⟨x, y⟩.
    h = k.q_tangent * ktan * h;
  }
  if (!p.has_spherical) {
    s = B(T(0));
  } else {
    const B cosang = xsimd::min(xsimd::max(s, B(T(-1))), B(T(1)));
    s = k.neg_radius * xsimd::acos(cosang);
  }
}

}  // namespace detail

/// \brief Stage 2a of the fused kernel, in place: turns the segment dots of `segment_row_dots`
/// (computed with the prepared query: projected q_H, unit q_S, against prepared keys) into the
/// per-component similarities
///   e[j] ← s_E·e[j],   h[j] ← −d_c(q_H, k_H) or α(q_H)·α(k_H)·h[j],   s[j] ← −R·arccos(s[j])
/// using the query terms `qt` and the key terms `key_h_norm2/conformal/tangent` (n each). A
/// missing component (has_hyperbolic / has_spherical false) gives 0.
template <class T, class Arch = default_arch>
void curvature_similarities(std::size_t n, const curvature_similarity_params<T>& p,
                            const fused_query_terms<T>& qt, const T* key_h_norm2,
                            const T* key_h_conformal, const T* key_h_tangent, T* e, T* h,
                            T* s) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const detail::curvature_constants<T, Arch> k(p, qt);
  std::size_t j = 0;
  for (; j + W <= n; j += W) {
    B be = B::load_unaligned(e + j), bh = B::load_unaligned(h + j), bs = B::load_unaligned(s + j);
    detail::curvature_similarity_batch<T, Arch>(
        p, k, be, bh, bs, B::load_unaligned(key_h_norm2 + j),
        B::load_unaligned(key_h_conformal + j), B::load_unaligned(key_h_tangent + j));
    be.store_unaligned(e + j);
    bh.store_unaligned(h + j);
    bs.store_unaligned(s + j);
  }
  if (j < n) {
    // Padding lanes hold harmless values (dots 0, the origin, conformal term 1).
    const std::size_t m = n - j;
    B be = kernels::detail::load_partial<T, Arch>(e + j, m, T(0));
    B bh = kernels::detail::load_partial<T, Arch>(h + j, m, T(0));
    B bs = kernels::detail::load_partial<T, Arch>(s + j, m, T(0));
    detail::curvature_similarity_batch<T, Arch>(
        p, k, be, bh, bs, kernels::detail::load_partial<T, Arch>(key_h_norm2 + j, m, T(0)),
        kernels::detail::load_partial<T, Arch>(key_h_conformal + j, m, T(1)),
        kernels::detail::load_partial<T, Arch>(key_h_tangent + j, m, T(1)));
    kernels::detail::store_partial(be, e + j, m);
    kernels::detail::store_partial(bh, h + j, m);
    kernels::detail::store_partial(bs, s + j, m);
  }
}

/// \brief Stage 2b: out[j] = w_e·e[j] + w_h·h[j] + w_s·s[j] (one head's un-tempered logits from
/// the component similarities).
template <class T, class Arch = default_arch>
void mix_curvature_components(std::size_t n, T w_e, T w_h, T w_s, const T* e, const T* h,
                              const T* s, T* out) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B be(w_e), bh(w_h), bs(w_s);
  std::size_t j = 0;
  for (; j + W <= n; j += W) {
    const B x = xsimd::fma(bs, B::load_unaligned(s + j),
                           xsimd::fma(bh, B::load_unaligned(h + j), be * B::load_unaligned(e + j)));
    x.store_unaligned(out + j);
  }
  for (; j < n; ++j) out[j] = w_s * s[j] + (w_h * h[j] + w_e * e[j]);
}

/// \brief In-place softmax of x/τ evaluated as exp((x_j − max x)·inv_tau) / Σ, so no exponent
/// overflows for any τ. Entries equal to −inf (masked) get weight 0; if every entry is −inf (or
/// n = 0) the result is all zeros and the function returns false. `inv_tau` must be finite > 0
/// and x must not hold NaN or +inf.
template <class T, class Arch = default_arch>
bool tempered_softmax(T* x, std::size_t n, T inv_tau) noexcept {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const T m = max<T, Arch>(x, n);
  if (!(m > -std::numeric_limits<T>::infinity())) {
    for (std::size_t j = 0; j < n; ++j) x[j] = T(0);
    return false;
  }
  const B bm(m), bt(inv_tau);
  B acc0(T(0)), acc1(T(0));
  std::size_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    const B e0 = xsimd::exp((B::load_unaligned(x + j) - bm) * bt);
    const B e1 = xsimd::exp((B::load_unaligned(x + j + W) - bm) * bt);
    e0.store_unaligned(x + j);
    e1.store_unaligned(x + j + W);
    acc0 += e0;
    acc1 += e1;
  }
  for (; j + W <= n; j += W) {
    const B e0 = xsimd::exp((B::load_unaligned(x + j) - bm) * bt);
    e0.store_unaligned(x + j);
    acc0 += e0;
  }
  if (j < n) {
    // Padding lanes hold −inf and contribute exp(−inf) = 0.
    const B e0 = xsimd::exp(
        (kernels::detail::load_partial<T, Arch>(x + j, n - j, -std::numeric_limits<T>::infinity()) -
         bm) *
        bt);
    kernels::detail::store_partial(e0, x + j, n - j);
    acc1 += e0;
  }
  const T l = kernels::detail::hsum(acc0 + acc1);  // ≥ 1: the maximum contributes exp(0)
  scale<T, Arch>(T(1) / l, x, n);
  return true;
}

}  // namespace kernels

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END

template <attention_scalar T>
class mixed_curvature_fused_attention;

/// \brief Keys prepared for `mixed_curvature_fused_attention`: reusable across queries (and
/// across mechanisms with the same dims and curvature_h), immutable, safe to share across threads.
///
/// Layout: n rows of `stride()` values (64-byte aligned start, the row stride rounded up to a
/// multiple of 64 bytes, padding zero), each `[k_E | proj(k_H) | k_S/‖k_S‖]`; plus the key terms
/// ‖k_H‖², 1/(1 − c‖k_H‖²) and α(k_H) as three arrays of n (computed in double from the stored
/// point, stored as T).
template <attention_scalar T>
class mixed_curvature_key_set {
 public:
  using value_type = T;

  /// An empty key set (size() == 0); obtain real ones from `prepare_keys`.
  mixed_curvature_key_set() = default;

  /// Number of keys n.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// True when no key is held.
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  /// The component sizes the keys were prepared for.
  [[nodiscard]] const component_dims& dims() const noexcept { return dims_; }
  /// The ball curvature the keys were prepared for (< 0).
  [[nodiscard]] double curvature_h() const noexcept { return curvature_h_; }
  /// Distance between consecutive rows, in elements (≥ dims().total()).
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
  /// Pointer to the first prepared row.
  [[nodiscard]] const T* data() const noexcept { return rows_.data(); }
  /// Prepared row j (dims().total() values). Throws `invalid_argument` if j >= size().
  [[nodiscard]] std::span<const T> row(std::size_t j) const {
    if (j >= n_) {
      std::ostringstream os;
      os << "invalid argument: key row " << j << " requested, the key set holds " << n_;
      throw invalid_argument(os.str());
    }
    return {rows_.data() + j * stride_, dims_.total()};
  }
  /// The key terms ‖k_H‖², 1/(1 − c‖k_H‖²), α(k_H) (n each).
  [[nodiscard]] fused_key_terms<T> key_terms() const noexcept {
    return {std::span<const T>(h_norm2_.data(), n_), std::span<const T>(h_conformal_.data(), n_),
            std::span<const T>(h_tangent_.data(), n_)};
  }

 private:
  friend class mixed_curvature_fused_attention<T>;

  std::size_t n_ = 0;
  std::size_t stride_ = 0;
  component_dims dims_{};
  double curvature_h_ = -1.0;
  std::vector<T, Eigen::aligned_allocator<T>> rows_;
  std::vector<T> h_norm2_, h_conformal_, h_tangent_;
};

/// \brief Mixed-curvature attention E^e × H^h × S^s with the fused kernel; see the file comment.
/// Immutable after construction and safe to share across threads (scratch is thread-local).
/// \tparam T float or double.
template <attention_scalar T>
class mixed_curvature_fused_attention {
 public:
  using value_type = T;

  /// Validates `config`; throws `invalid_config` naming the offending field.
  explicit mixed_curvature_fused_attention(fused_curvature_config config)
      : config_(std::move(config)) {
    const auto& c = config_;
    const auto fail = [](const char* field, const char* expected, double got) {
      std::ostringstream os;
      os << "fused_curvature_config." << field << " must be " << expected << " (got " << got << ")";
      require_config(false, os.str());
    };
    const std::size_t d = c.dims.total();
    if (d == 0) fail("dims.total()", "> 0", 0.0);
    require_at_most("fused_curvature_config.dims.total()", d, max_dimension);
    if (!(std::isfinite(c.curvature_h) && c.curvature_h < 0.0) ||
        !(static_cast<T>(-c.curvature_h) > T(0)) ||
        !std::isfinite(static_cast<T>(-c.curvature_h)) ||
        !std::isfinite(static_cast<T>(1.0 / std::sqrt(-c.curvature_h))))
      fail("curvature_h", "finite and < 0 (representable in T)", c.curvature_h);
    if (!(std::isfinite(c.curvature_s) && c.curvature_s > 0.0) ||
        !std::isfinite(static_cast<T>(1.0 / std::sqrt(c.curvature_s))))
      fail("curvature_s", "finite and > 0 (1/sqrt representable in T)", c.curvature_s);
    if (c.num_heads == 0 || c.num_heads > max_heads)
      fail("num_heads", "in [1, 65536]", static_cast<double>(c.num_heads));
    if (!c.head_weights.empty() && c.head_weights.size() != c.num_heads) {
      std::ostringstream os;
      os << "fused_curvature_config.head_weights must be empty or hold num_heads = " << c.num_heads
         << " entries (got " << c.head_weights.size() << ")";
      require_config(false, os.str());
    }
    for (std::size_t h = 0; h < c.head_weights.size(); ++h) {
      for (std::size_t i = 0; i < 3; ++i) {
        const double w = c.head_weights[h][i];
        if (!(std::isfinite(w) && w >= 0.0 && std::isfinite(static_cast<T>(w)))) {
          std::ostringstream os;
          os << "fused_curvature_config.head_weights[" << h << "][" << i
             << "] must be finite and >= 0 (got " << w << ")";
          require_config(false, os.str());
        }
      }
    }
    if (!(std::isfinite(c.temperature) && c.temperature > 0.0) ||
        !(static_cast<T>(c.temperature) > T(0)) ||
        !std::isfinite(static_cast<T>(1.0 / c.temperature)))
      fail("temperature", "finite and > 0 with 1/temperature finite in T", c.temperature);
    if (!(std::isfinite(c.euclidean_scale) && c.euclidean_scale >= 0.0) ||
        !std::isfinite(static_cast<T>(c.euclidean_scale)))
      fail("euclidean_scale", "finite and >= 0 (0 = 1/sqrt(e))", c.euclidean_scale);

    c_h_ = -c.curvature_h;
    params_.c = static_cast<T>(c_h_);
    params_.sphere_radius = static_cast<T>(1.0 / std::sqrt(c.curvature_s));
    const double se = c.euclidean_scale > 0.0 ? c.euclidean_scale
                      : c.dims.euclidean > 0
                          ? 1.0 / std::sqrt(static_cast<double>(c.dims.euclidean))
                          : 1.0;
    params_.euclidean_scale = static_cast<T>(se);
    params_.hyperbolic = c.hyperbolic;
    params_.has_hyperbolic = c.dims.hyperbolic > 0;
    params_.has_spherical = c.dims.spherical > 0;
    inv_tau_ = static_cast<T>(1.0 / c.temperature);
    weights_.resize(c.num_heads);
    for (std::size_t h = 0; h < c.num_heads; ++h) {
      const std::array<double, 3> w =
          c.head_weights.empty() ? default_head_weights : c.head_weights[h];
      weights_[h] = {static_cast<T>(w[0]), static_cast<T>(w[1]), static_cast<T>(w[2])};
    }
    heads_identical_ = std::all_of(weights_.begin(), weights_.end(),
                                   [&](const std::array<T, 3>& w) { return w == weights_[0]; });
  }

  /// (w_e, w_h, w_s) used for every head when `head_weights` is empty.
  static constexpr std::array<double, 3> default_head_weights{0.5, 0.35, 0.15};
  /// Largest accepted `num_heads`.
  static constexpr std::size_t max_heads = std::size_t{1} << 16;

  /// The validated configuration.
  [[nodiscard]] const fused_curvature_config& config() const noexcept { return config_; }
  /// The constants of stage 2 (c, R, s_E, mode) as T.
  [[nodiscard]] const curvature_similarity_params<T>& similarity_params() const noexcept {
    return params_;
  }
  /// (w_e, w_h, w_s) of head h as T (h < num_heads, unchecked).
  [[nodiscard]] const std::array<T, 3>& head_weights(std::size_t h) const noexcept {
    return weights_[h];
  }

  /// \brief Prepares keys (rows = keys, width dims.total()) once for any number of queries:
  /// projects k_H into the ball, normalises k_S, computes the key terms. Throws
  /// `dimension_mismatch`, `invalid_argument` (no keys, zero spherical part of a key) or
  /// `non_finite_input`.
  [[nodiscard]] mixed_curvature_key_set<T> prepare_keys(const matrix_cref<T>& keys) const {
    mixed_curvature_key_set<T> ks;
    prepare_keys_into(keys, ks);
    return ks;
  }

  /// \brief As `prepare_keys`, reusing the storage of `key_set` (no allocation when it already
  /// holds at least as many values). On an exception `key_set` is left empty.
  void prepare_keys_into(const matrix_cref<T>& keys, mixed_curvature_key_set<T>& key_set) const {
    const auto& dims = config_.dims;
    const std::size_t d = dims.total();
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), d);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    if (config_.check_finite) {
      // Vectorised scan per row; the scalar pass that names the element runs only on failure.
      for (std::size_t j = 0; j < n; ++j) {
        if (!kernels::all_finite(keys.data() + static_cast<std::ptrdiff_t>(j) * keys.outerStride(),
                                 d))
          require_finite("keys", keys.data(), n, d, keys.outerStride());
      }
    }

    auto& ks = key_set;
    constexpr std::size_t line = 64 / sizeof(T);
    const std::size_t stride = (d + line - 1) / line * line;
    ks.n_ = 0;  // empty until complete
    if (ks.rows_.size() < n * stride) ks.rows_.resize(n * stride);
    ks.h_norm2_.resize(n);
    ks.h_conformal_.resize(n);
    ks.h_tangent_.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      const T* src = keys.data() + static_cast<std::ptrdiff_t>(j) * keys.outerStride();
      T* dst = ks.rows_.data() + j * stride;
      const hyperbolic_terms t = prepare_row(src, dst, "keys", j, true);
      std::fill(dst + d, dst + stride, T(0));
      ks.h_norm2_[j] = static_cast<T>(t.norm2);
      ks.h_conformal_[j] = static_cast<T>(t.conformal);
      ks.h_tangent_[j] = static_cast<T>(t.tangent);
    }
    ks.stride_ = stride;
    ks.dims_ = dims;
    ks.curvature_h_ = config_.curvature_h;
    ks.n_ = n;
  }

  /// \brief Writes the prepared query `[q_E | proj(q_H) | q_S/‖q_S‖]` into `row` (size
  /// dims.total()) and returns its hyperbolic terms — the query side of stage 1 and stage 2.
  /// Throws `dimension_mismatch`, `non_finite_input` or `invalid_argument` (zero spherical part).
  fused_query_terms<T> prepare_query(std::span<const T> query, std::span<T> row) const {
    const std::size_t d = config_.dims.total();
    require_dimension("query.size()", query.size(), d);
    require_dimension("row.size()", row.size(), d);
    if (config_.check_finite) require_finite<T>("query", query);
    const hyperbolic_terms t = prepare_row(query.data(), row.data(), "query", 0, false);
    return {static_cast<T>(t.norm2), static_cast<T>(t.conformal), static_cast<T>(t.tangent)};
  }

  /// \brief Mean over heads of the attention outputs for one query; keys are prepared per call
  /// into a thread-local key set (use `prepare_keys` + the key-set overload to reuse them).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    check_value_rows(values, static_cast<std::size_t>(keys.rows()));
    auto& ks = per_call_keys();
    prepare_keys_into(keys, ks);
    return compute(query, ks, values);
  }

  /// \brief As `compute`, with a key mask (`true` = visible). All masked → zeros.
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> mask) const {
    require_dimension("mask.size()", mask.size(), static_cast<std::size_t>(keys.rows()));
    check_value_rows(values, static_cast<std::size_t>(keys.rows()));
    auto& ks = per_call_keys();
    prepare_keys_into(keys, ks);
    return compute_with_mask(query, ks, values, mask);
  }

  /// \brief Mean over heads of the attention outputs for one query against a prepared key set.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query,
                                       const mixed_curvature_key_set<T>& key_set,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, key_set, values, {}, out.data(), nullptr);
    return out;
  }

  /// \brief As the key-set `compute`, with a key mask (`true` = visible).
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const mixed_curvature_key_set<T>& key_set,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> mask) const {
    require_dimension("mask.size()", mask.size(), key_set.size());
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    run(query, key_set, values, mask, out.data(), nullptr);
    return out;
  }

  /// \brief Every head's output: row h of the [num_heads, dv] result is out_h. `mask` (empty =
  /// all visible) holds `true` for visible keys.
  [[nodiscard]] row_matrix<T> compute_heads(std::span<const T> query,
                                            const mixed_curvature_key_set<T>& key_set,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> mask = {}) const {
    if (!mask.empty()) require_dimension("mask.size()", mask.size(), key_set.size());
    row_matrix<T> out(static_cast<Eigen::Index>(config_.num_heads), values.cols());
    run(query, key_set, values, mask, nullptr, &out);
    return out;
  }

  /// \brief Head `head`'s logits logit_h(q, k_j) = x_j/τ for every key (no mask; may overflow to
  /// ±inf for an extreme τ — the attention itself never does). `out.size()` must be n.
  void logits(std::span<const T> query, const mixed_curvature_key_set<T>& key_set, std::size_t head,
              std::span<T> out) const {
    if (head >= config_.num_heads) {
      std::ostringstream os;
      os << "invalid argument: head is " << head
         << ", expected < num_heads = " << config_.num_heads;
      throw invalid_argument(os.str());
    }
    check_key_set(key_set);
    require_dimension("out.size() (must equal the number of keys)", out.size(), key_set.size());
    const std::size_t n = key_set.size();
    scratch_layout L(config_.dims.total(), n);
    T* buf = scratch(L.total);
    similarities(query, key_set, buf, L);
    const auto& w = weights_[head];
    kernels::mix_curvature_components<T>(n, w[0], w[1], w[2], buf + L.e, buf + L.h, buf + L.s,
                                         out.data());
    kernels::scale<T>(inv_tau_, out.data(), n);
  }

  /// \brief Finishes an attention call from externally computed segment dots (stage 2 onward):
  /// `dot_e/dot_h/dot_s` (n each, overwritten with the component similarities) must be the dot
  /// products of the prepared query (`prepare_query`, whose terms are `qt`) with prepared keys
  /// whose terms are `keys`. Writes the mean over heads into `out` (size values.cols()).
  void compute_from_dots(const fused_query_terms<T>& qt, std::span<T> dot_e, std::span<T> dot_h,
                         std::span<T> dot_s, const fused_key_terms<T>& keys,
                         const matrix_cref<T>& values, std::span<const bool> mask,
                         std::span<T> out) const {
    const std::size_t n = dot_e.size();
    require_non_empty("dot_e", n);
    require_dimension("dot_h.size()", dot_h.size(), n);
    require_dimension("dot_s.size()", dot_s.size(), n);
    require_dimension("keys.h_norm2.size()", keys.h_norm2.size(), n);
    require_dimension("keys.h_conformal.size()", keys.h_conformal.size(), n);
    require_dimension("keys.h_tangent.size()", keys.h_tangent.size(), n);
    check_value_rows(values, n);
    if (!mask.empty()) require_dimension("mask.size()", mask.size(), n);
    require_dimension("out.size() (must equal values.cols())", out.size(),
                      static_cast<std::size_t>(values.cols()));
    kernels::curvature_similarities<T>(n, params_, qt, keys.h_norm2.data(), keys.h_conformal.data(),
                                       keys.h_tangent.data(), dot_e.data(), dot_h.data(),
                                       dot_s.data());
    scratch_layout L(0, n);
    T* buf = scratch(L.total);
    attend(dot_e.data(), dot_h.data(), dot_s.data(), n, values, mask, buf + L.x, buf + L.wbar,
           out.data(), nullptr);
    if (config_.check_finite && !kernels::all_finite(out.data(), out.size())) {
      require_finite("values", values.data(), n, static_cast<std::size_t>(values.cols()),
                     values.outerStride());
      throw non_finite_input(
          "non-finite input: an attention logit or output is not finite although the values "
          "are finite (non-finite dots or key terms, or an overflow)");
    }
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief Seeds-shaped adapter with a `std::vector<bool>` mask.
  [[nodiscard]] std::vector<T> compute_with_mask(const std::vector<T>& query,
                                                 const std::vector<std::vector<T>>& keys,
                                                 const std::vector<std::vector<T>>& values,
                                                 const std::vector<bool>& mask) const {
    const std::unique_ptr<bool[]> m(new bool[mask.size()]);
    std::copy(mask.begin(), mask.end(), m.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(m.get(), mask.size()));
  }

 private:
  struct hyperbolic_terms {
    double norm2, conformal, tangent;
  };

  // Offsets (in elements, each a multiple of 16 so every piece stays 64-byte aligned) of the
  // per-call scratch: prepared query, the three similarity arrays, one head's logits, the
  // head-mean weights.
  struct scratch_layout {
    std::size_t q = 0, e, h, s, x, wbar, total;
    scratch_layout(std::size_t d, std::size_t n) noexcept {
      const std::size_t nr = round(n);
      e = q + round(d);
      h = e + nr;
      s = h + nr;
      x = s + nr;
      wbar = x + nr;
      total = wbar + nr;
    }
    static std::size_t round(std::size_t v) noexcept { return (v + 15) / 16 * 16; }
  };

  // Per-thread scratch of this mechanism family (its own buffer, so callers of
  // compute_from_dots may keep their dots in the shared detail::thread_scratch slots).
  static T* scratch(std::size_t n) {
    thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
  }

  // The key set of the per-call (raw keys) path: thread-local so its storage is reused.
  static mixed_curvature_key_set<T>& per_call_keys() {
    thread_local mixed_curvature_key_set<T> ks;
    return ks;
  }

  // Σ x_i² in double with 8 independent partial sums (no serial dependency chain).
  static double squared_norm(const T* x, std::size_t n) noexcept {
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (std::size_t r = 0; r < 8; ++r)
        a[r] += static_cast<double>(x[i + r]) * static_cast<double>(x[i + r]);
    double sum = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    return sum;
  }

  // Copies one vector into storage layout: E as is, H projected into the ball, S normalised.
  // Returns the hyperbolic terms of the stored (rounded) H part, computed in double.
  hyperbolic_terms prepare_row(const T* src, T* dst, const char* what, std::size_t index,
                               bool is_key) const {
    const auto& dims = config_.dims;
    const std::size_t e = dims.euclidean, h = dims.hyperbolic, s = dims.spherical;
    std::copy(src, src + e, dst);

    const T* sh = src + dims.hyperbolic_offset();
    T* dh = dst + dims.hyperbolic_offset();
    const double n2 = squared_norm(sh, h);
    const double sqrt_c = std::sqrt(c_h_);
    const double r_max = (1.0 - fused_ball_eps) / sqrt_c;
    const double norm = std::sqrt(n2);
    double stored2 = n2;
    if (norm > r_max) {
      const double f = r_max / norm;
      for (std::size_t i = 0; i < h; ++i) dh[i] = static_cast<T>(f * static_cast<double>(sh[i]));
      stored2 = squared_norm(dh, h);  // the terms describe the stored (rounded) point
    } else {
      std::copy(sh, sh + h, dh);
    }
    const double u = sqrt_c * std::sqrt(stored2);  // < 1 by the projection
    hyperbolic_terms t{stored2, 1.0 / (1.0 - c_h_ * stored2), u > 0.0 ? std::atanh(u) / u : 1.0};

    const T* ss = src + dims.spherical_offset();
    T* ds = dst + dims.spherical_offset();
    const double s2 = squared_norm(ss, s);
    if (s > 0 && !(s2 > 0.0)) {
      std::ostringstream os;
      os << "invalid argument: " << what;
      if (is_key) os << "[" << index << "]";
      os << " has a zero spherical part (elements [" << dims.spherical_offset() << ", "
         << dims.total() << ")): the point on the sphere is undefined";
      throw invalid_argument(os.str());
    }
    const double inv = s > 0 ? 1.0 / std::sqrt(s2) : 0.0;
    for (std::size_t i = 0; i < s; ++i) ds[i] = static_cast<T>(inv * static_cast<double>(ss[i]));
    return t;
  }

  void check_key_set(const mixed_curvature_key_set<T>& ks) const {
    if (ks.empty()) throw invalid_argument("invalid argument: key_set is empty");
    if (ks.dims() != config_.dims) {
      std::ostringstream os;
      os << "dimension mismatch: key_set.dims() is (" << ks.dims().euclidean << ", "
         << ks.dims().hyperbolic << ", " << ks.dims().spherical << "), expected ("
         << config_.dims.euclidean << ", " << config_.dims.hyperbolic << ", "
         << config_.dims.spherical << ")";
      throw dimension_mismatch(os.str());
    }
    if (ks.curvature_h() != config_.curvature_h) {
      std::ostringstream os;
      os << "invalid argument: key_set was prepared for curvature_h = " << ks.curvature_h()
         << ", expected " << config_.curvature_h;
      throw invalid_argument(os.str());
    }
  }

  static void check_value_rows(const matrix_cref<T>& values, std::size_t n) {
    require_dimension("values.rows() (must equal the number of keys)",
                      static_cast<std::size_t>(values.rows()), n);
  }

  // Validates and runs stages 1 and 2a into buf (layout L): per-component similarities.
  void similarities(std::span<const T> query, const mixed_curvature_key_set<T>& ks, T* buf,
                    const scratch_layout& L) const {
    const std::size_t d = config_.dims.total(), n = ks.size();
    const fused_query_terms<T> qt = prepare_query(query, std::span<T>(buf + L.q, d));
    kernels::segment_row_dots<T>(ks.data(), n, ks.stride(), config_.dims, buf + L.q, buf + L.e,
                                 buf + L.h, buf + L.s);
    kernels::curvature_similarities<T>(n, params_, qt, ks.h_norm2_.data(), ks.h_conformal_.data(),
                                       ks.h_tangent_.data(), buf + L.e, buf + L.h, buf + L.s);
  }

  // Head h's weights into x (n): mixture, mask, tempered softmax.
  void head_weights_into(std::size_t head, const T* e, const T* h, const T* s, std::size_t n,
                         std::span<const bool> mask, T* x) const noexcept {
    const auto& w = weights_[head];
    kernels::mix_curvature_components<T>(n, w[0], w[1], w[2], e, h, s, x);
    if (!mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!mask[j]) x[j] = -std::numeric_limits<T>::infinity();
    }
    kernels::tempered_softmax<T>(x, n, inv_tau_);
  }

  // From similarities to outputs: `out` (mean over heads, dv) and/or `heads` ([H, dv]).
  void attend(const T* e, const T* h, const T* s, std::size_t n, const matrix_cref<T>& values,
              std::span<const bool> mask, T* x, T* wbar, T* out, row_matrix<T>* heads) const {
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const std::size_t ldv = static_cast<std::size_t>(values.outerStride());
    const std::size_t H = config_.num_heads;
    if (heads != nullptr) {
      for (std::size_t hd = 0; hd < H; ++hd) {
        if (hd == 0 || !heads_identical_) head_weights_into(hd, e, h, s, n, mask, x);
        kernels::weighted_row_sum(x, n, values.data(), dv, ldv, T(0),
                                  heads->data() + hd * static_cast<std::size_t>(heads->cols()));
      }
      return;
    }
    if (heads_identical_) {  // the mean of identical heads is any one of them
      head_weights_into(0, e, h, s, n, mask, x);
      kernels::weighted_row_sum(x, n, values.data(), dv, ldv, T(0), out);
      return;
    }
    // mean_h Σ_j w_hj v_j = Σ_j (mean_h w_hj) v_j: one pass over the values.
    std::fill(wbar, wbar + n, T(0));
    const T inv_h = T(1) / static_cast<T>(H);
    for (std::size_t hd = 0; hd < H; ++hd) {
      head_weights_into(hd, e, h, s, n, mask, x);
      kernels::axpy(inv_h, x, wbar, n);
    }
    kernels::weighted_row_sum(wbar, n, values.data(), dv, ldv, T(0), out);
  }

  // The validated path behind compute / compute_with_mask / compute_heads.
  void run(std::span<const T> query, const mixed_curvature_key_set<T>& ks,
           const matrix_cref<T>& values, std::span<const bool> mask, T* out,
           row_matrix<T>* heads) const {
    check_key_set(ks);
    check_value_rows(values, ks.size());
    const std::size_t n = ks.size();
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    scratch_layout L(config_.dims.total(), n);
    T* buf = scratch(L.total);
    similarities(query, ks, buf, L);
    attend(buf + L.e, buf + L.h, buf + L.s, n, values, mask, buf + L.x, buf + L.wbar, out, heads);
    if (config_.check_finite) {
      const bool ok = heads == nullptr ? kernels::all_finite(out, dv)
                                       : kernels::all_finite(heads->data(), heads->size());
      if (!ok) {
        require_finite<T>("query", query);
        require_finite("values", values.data(), n, dv, values.outerStride());
        throw non_finite_input(
            "non-finite input: an attention logit or output overflowed although the query, keys "
            "and values are finite (reduce the input magnitude, the weights or the "
            "euclidean_scale)");
      }
    }
  }

  fused_curvature_config config_;
  double c_h_ = 1.0;
  curvature_similarity_params<T> params_{};
  T inv_tau_ = T(1);
  std::vector<std::array<T, 3>> weights_;
  bool heads_identical_ = true;
};

}  // namespace ruvector::attention
