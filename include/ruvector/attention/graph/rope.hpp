#pragma once
/// \file graph/rope.hpp
/// \brief Rotary position embeddings (RoPE; Su et al. 2021, "RoFormer: Enhanced Transformer with
/// Rotary Position Embedding") with positions taken from a graph, and attention over them (the
/// seeds' `GraphRoPE`).
///
/// **Rotation.** A vector x ∈ R^d (d even) is split into d/2 coordinate pairs; pair i is rotated
/// by the angle φ_i(p) = (p/s)·θ_i, θ_i = base^(−2i/d), i = 0 .. d/2 − 1:
///
///     (x'_a, x'_b) = (x_a cos φ_i − x_b sin φ_i,  x_a sin φ_i + x_b cos φ_i)
///
/// where (a, b) = (2i, 2i + 1) for `rope_pairing::interleaved` (RoFormer, the default) and
/// (i, i + d/2) for `rope_pairing::half` (the GPT-NeoX/LLaMA "rotate-half" layout the Rust crate
/// used). s is `scaling_factor` (position interpolation: s > 1 compresses positions). R(p) is
/// orthogonal, R(p)ᵀ = R(−p) and R(p)R(r) = R(p + r), so
///
///     ⟨R(p)q, R(r)k⟩ = ⟨q, R(r − p)k⟩
///
/// depends on the positions only through r − p (the relative-position property).
///
/// **Attention** (`graph_rope_attention`): s_j = scale·⟨R(p_q)q, R(p_j)k_j⟩ (scale = 1/√d by
/// default), w = softmax(s), out = Σ_j w_j v_j. The score is evaluated as
/// ⟨k_j, R(p_j)ᵀ R(p_q) q⟩ = Σ_m k_j[m]·(C[m]·q̃[m] + S[m]·q̃⊥[m]) with q̃ = R(p_q)q, so the keys
/// are never rotated or copied: one fused pass per key over k_j and the cached cos/sin row of p_j.
///
/// **Graph positions.** Positions are real numbers. They can be given per node, or come from the
/// (undirected) hop distance to a root node (`csr_graph::hop_distances`) through the bucketing
///
///     bucket(δ) = min(M − 1, δ)                          for δ ≤ E
///     bucket(δ) = min(M − 1, E + ⌈log₂(δ / E)⌉)          for δ > E
///
/// with E = `exact_distances` (default 8) and M = `max_position` (default 512): hop counts up to E
/// are kept exactly, beyond that each doubling of the distance adds one position (δ ∈ (E, 2E] →
/// E + 1, (2E, 4E] → E + 2, ...), and every bucket is clamped to M − 1. The map is monotone
/// non-decreasing and never skips a value below its clamp. Unreachable nodes (δ = SIZE_MAX) get
/// min(M − 1, E + ⌈log₂(SIZE_MAX/E)⌉), the largest bucket any distance gets (69 for E = 8 on a
/// 64-bit platform); mask them if they should not be attended to.
///
/// Differences from the Rust crate (all deliberate):
/// - The seeds' bucketing was 8 + min(⌈log₂ δ⌉, M − 8) for δ > 8, which jumps from 8 to 12 at
///   δ = 9 (positions 9–11 are never used) and clamps at M rather than at the table's last row
///   M − 1. Here the log part starts right after the exact range.
/// - Odd dimensions are rejected (`invalid_config`); the seeds left the last coordinate at 0.
/// - Positions are not clamped when rotating: the seeds clamped every position to M − 1 (the
///   size of their table), so all keys past it became indistinguishable. Here the cached table
///   only accelerates integer positions in [0, M); any other real position is computed on the
///   fly with the same double-precision formula, so both paths give bit-identical results.
/// - `compute_with_mask` keeps every key's position; the seeds filtered the keys first and then
///   renumbered them 0..n'−1, so masking a key shifted the positions of the keys after it.
///
/// Numerical conventions: θ_i and the angles (p/s)·θ_i and their cos/sin are evaluated in double
/// (sin/cos by xsimd's vectorised `sincos`, within 1 ulp of std::sin/cos) and rounded to T once
/// (the cache stores those rounded values: 2·M·d·sizeof(T) bytes, e.g. 1 MiB for d = 256, M = 512,
/// float; `cache_table = false` disables it). The rotation itself and the scores are computed in T;
/// a rotation preserves norms to a few ε_T. Positions must be finite
/// (`non_finite_input`).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/attention_args.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/graph/csr_graph.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/simd.hpp"
#include "ruvector/attention/kernels/softmax.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"

RUVECTOR_ATTENTION_KERNEL_WARNINGS_BEGIN

namespace ruvector::attention {

/// \brief Which coordinates form the rotated pairs.
enum class rope_pairing {
  interleaved,  ///< (x_{2i}, x_{2i+1}) — RoFormer (Su et al. 2021), the default
  half,         ///< (x_i, x_{i+d/2}) — GPT-NeoX / LLaMA "rotate half", the Rust crate's layout
};

/// \brief Configuration of `graph_rope` (the seeds' `RoPEConfig`, plus the bucketing).
struct graph_rope_config {
  std::size_t dim = 256;        ///< d: vector dimension; must be even and > 0
  double base = 10000.0;        ///< θ_i = base^(−2i/d); finite and > 1
  double scaling_factor = 1.0;  ///< s: angles use p/s; finite and > 0
  rope_pairing pairing = rope_pairing::interleaved;
  std::size_t exact_distances = 8;  ///< E: hop distances ≤ E are kept exactly; ≥ 1
  std::size_t max_position = 512;  ///< M: buckets are clamped to M − 1; rows of the cos/sin cache
  bool cache_table = true;         ///< cache cos/sin of the integer positions 0 .. M − 1
};

template <attention_scalar T>
class graph_rope_attention;

namespace detail {

/// Σ_m k[m]·(c[m]·a[m] + s[m]·b[m]): the RoPE score ⟨k, R(r)ᵀ q̃⟩ with a = q̃, b = q̃⊥ and (c, s)
/// the expanded cos/sin row of position r. Two accumulators per step.
template <class T, class Arch = kernels::default_arch>
[[nodiscard]] T rope_rotated_dot(const T* k, const T* c, const T* s, const T* a, const T* b,
                                 std::size_t d) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t m = 0;
  T result = T(0);
  if (d >= W) {
    B acc0(T(0)), acc1(T(0));
    for (; m + 2 * W <= d; m += 2 * W) {
      const B w0 = xsimd::fma(B::load_unaligned(c + m), B::load_unaligned(a + m),
                              B::load_unaligned(s + m) * B::load_unaligned(b + m));
      const B w1 = xsimd::fma(B::load_unaligned(c + m + W), B::load_unaligned(a + m + W),
                              B::load_unaligned(s + m + W) * B::load_unaligned(b + m + W));
      acc0 = xsimd::fma(B::load_unaligned(k + m), w0, acc0);
      acc1 = xsimd::fma(B::load_unaligned(k + m + W), w1, acc1);
    }
    for (; m + W <= d; m += W) {
      const B w0 = xsimd::fma(B::load_unaligned(c + m), B::load_unaligned(a + m),
                              B::load_unaligned(s + m) * B::load_unaligned(b + m));
      acc0 = xsimd::fma(B::load_unaligned(k + m), w0, acc0);
    }
    result = kernels::detail::hsum(acc0 + acc1);
  }
  for (; m < d; ++m) result += k[m] * (c[m] * a[m] + s[m] * b[m]);
  return result;
}

/// out[m] = c[m]·x[m] + sign·s[m]·xp[m] (element-wise; out may be exactly x).
template <class T, class Arch = kernels::default_arch>
void rope_combine(const T* x, const T* xp, const T* c, const T* s, T sign, T* out,
                  std::size_t d) noexcept {
  using B = kernels::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B sb(sign);
  std::size_t m = 0;
  for (; m + W <= d; m += W) {
    xsimd::fma(B::load_unaligned(c + m), B::load_unaligned(x + m),
               sb * B::load_unaligned(s + m) * B::load_unaligned(xp + m))
        .store_unaligned(out + m);
  }
  for (; m < d; ++m) out[m] = c[m] * x[m] + sign * s[m] * xp[m];
}

}  // namespace detail

/// \brief Rotary position embedding with graph-derived positions; see the file comment.
/// Immutable after construction and safe to share across threads.
template <attention_scalar T>
class graph_rope {
 public:
  using value_type = T;

  /// Builds the frequencies (and the cos/sin cache unless `cache_table` is false). Throws
  /// `invalid_config` on an odd or zero dim, base ≤ 1, scaling_factor ≤ 0, exact_distances = 0
  /// or max_position = 0; `input_too_large` when the cache would exceed 2^28 values.
  explicit graph_rope(const graph_rope_config& config) : config_(validated(config)) {
    const std::size_t d = config_.dim;
    const std::size_t h = d / 2;
    theta_.resize(h);
    for (std::size_t i = 0; i < h; ++i)
      theta_[i] = std::pow(config_.base, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    if (config_.cache_table) {
      const std::size_t rows = config_.max_position;
      cos_.resize(rows * d);
      sin_.resize(rows * d);
      for (std::size_t p = 0; p < rows; ++p)
        fill_row(static_cast<double>(p), cos_.data() + p * d, sin_.data() + p * d);
    }
  }

  /// Convenience: `graph_rope(dim)` with the other fields at their defaults.
  explicit graph_rope(std::size_t dim) : graph_rope(graph_rope_config{.dim = dim}) {}

  [[nodiscard]] const graph_rope_config& config() const noexcept { return config_; }
  [[nodiscard]] std::size_t dim() const noexcept { return config_.dim; }
  /// θ_i = base^(−2i/d), i < d/2 (double).
  [[nodiscard]] std::span<const double> frequencies() const noexcept { return theta_; }

  /// \brief out = R(position)·x. `out` may be exactly `x` (in-place), but must not otherwise
  /// overlap it. Throws `dimension_mismatch` on sizes ≠ dim, `non_finite_input` on a non-finite
  /// position.
  void rotate(std::span<const T> x, double position, std::span<T> out) const {
    require_dimension("graph_rope::rotate: x.size()", x.size(), dim());
    require_dimension("graph_rope::rotate: out.size()", out.size(), dim());
    if (!std::isfinite(position))
      detail::throw_non_finite("graph_rope::rotate: position", 0, position);
    rotate_unchecked(x.data(), position, out.data(), T(-1));
  }

  /// \brief R(position)·x as a new vector.
  [[nodiscard]] std::vector<T> rotate(std::span<const T> x, double position) const {
    std::vector<T> out(dim());
    rotate(x, position, out);
    return out;
  }

  /// \brief Row i of the result is R(positions[i])·x.row(i). Throws `dimension_mismatch` unless
  /// x.cols() == dim and positions.size() == x.rows(); `non_finite_input` naming the first
  /// non-finite position.
  [[nodiscard]] row_matrix<T> rotate_rows(const matrix_cref<T>& x,
                                          std::span<const double> positions) const {
    const auto n = static_cast<std::size_t>(x.rows());
    require_dimension("graph_rope::rotate_rows: x.cols()", static_cast<std::size_t>(x.cols()),
                      dim());
    require_dimension("graph_rope::rotate_rows: positions.size() (must equal x.rows())",
                      positions.size(), n);
    require_finite("graph_rope::rotate_rows: positions", positions);
    row_matrix<T> out(x.rows(), x.cols());
    for (std::size_t i = 0; i < n; ++i) {
      const auto r = static_cast<Eigen::Index>(i);
      rotate_unchecked(x.row(r).data(), positions[i], out.row(r).data(), T(-1));
    }
    return out;
  }

  /// \brief The position of a hop distance δ (see the file comment): δ for δ ≤ E, else
  /// E + ⌈log₂(δ/E)⌉, clamped to max_position − 1.
  [[nodiscard]] std::size_t bucket(std::size_t distance) const noexcept {
    const std::size_t e = config_.exact_distances;
    std::size_t b = distance;
    if (distance > e) {
      // ⌈log₂(δ/E)⌉ = ⌈log₂⌈δ/E⌉⌉ = bit_width(⌈δ/E⌉ − 1) for ⌈δ/E⌉ ≥ 2.
      const std::size_t ratio = (distance - 1) / e + 1;
      b = e + static_cast<std::size_t>(std::bit_width(ratio - 1));
    }
    return std::min(b, config_.max_position - 1);
  }

  /// \brief bucket(distances[i]) for every i, as positions.
  [[nodiscard]] std::vector<double> bucket_positions(std::span<const std::size_t> distances) const {
    std::vector<double> out(distances.size());
    for (std::size_t i = 0; i < distances.size(); ++i)
      out[i] = static_cast<double>(bucket(distances[i]));
    return out;
  }

  /// \brief Positions of every node of `graph`: the bucketed undirected hop distance from `root`
  /// (`csr_graph::hop_distances`; unreachable nodes get bucket(SIZE_MAX)). Throws
  /// `invalid_argument` if root ≥ graph.num_nodes().
  [[nodiscard]] std::vector<double> positions_from_root(const csr_graph& graph,
                                                        std::size_t root) const {
    return bucket_positions(graph.hop_distances(root));
  }

 private:
  friend class graph_rope_attention<T>;

  /// Pointers to the expanded cos/sin rows (length d) of `position`: the cached row for
  /// integer positions in [0, max_position), otherwise computed into `c_buf`/`s_buf`.
  void angle_rows(double position, T* c_buf, T* s_buf, const T*& c, const T*& s) const noexcept {
    if (!cos_.empty() && position >= 0.0 && position < static_cast<double>(config_.max_position) &&
        position == std::floor(position)) {
      const std::size_t p = static_cast<std::size_t>(position) * dim();
      c = cos_.data() + p;
      s = sin_.data() + p;
      return;
    }
    fill_row(position, c_buf, s_buf);
    c = c_buf;
    s = s_buf;
  }

  /// xp = x⊥, the pair partner of every coordinate with the sign that makes
  /// R(p)x = C⊙x − S⊙x⊥ and R(p)ᵀx = C⊙x + S⊙x⊥: for a pair (a, b), x⊥_a = x_b and x⊥_b = −x_a.
  void perpendicular(const T* x, T* xp) const noexcept {
    const std::size_t d = dim();
    if (config_.pairing == rope_pairing::interleaved) {
      for (std::size_t m = 0; m < d; m += 2) {
        xp[m] = x[m + 1];
        xp[m + 1] = -x[m];
      }
    } else {
      const std::size_t h = d / 2;
      for (std::size_t i = 0; i < h; ++i) {
        xp[i] = x[i + h];
        xp[i + h] = -x[i];
      }
    }
  }

  /// out = R(sign·position)·x without validation (sign = −1: R(p); sign = +1: R(p)ᵀ).
  /// `out` may be exactly `x`. Uses thread scratch slots 5–7.
  void rotate_unchecked(const T* x, double position, T* out, T sign) const {
    const std::size_t d = dim();
    T* xp = detail::thread_scratch<T, 5>(d);
    T* cb = detail::thread_scratch<T, 6>(d);
    T* sb = detail::thread_scratch<T, 7>(d);
    const T* c = nullptr;
    const T* s = nullptr;
    angle_rows(position, cb, sb, c, s);
    perpendicular(x, xp);
    detail::rope_combine(x, xp, c, s, sign, out, d);
  }

  static const graph_rope_config& validated(const graph_rope_config& c) {
    require_config(c.dim > 0 && c.dim % 2 == 0, "graph_rope: dim must be even and > 0");
    require_at_most("graph_rope: dim", c.dim, max_dimension);
    require_config(std::isfinite(c.base) && c.base > 1.0,
                   "graph_rope: base must be finite and > 1");
    require_config(std::isfinite(c.scaling_factor) && c.scaling_factor > 0.0,
                   "graph_rope: scaling_factor must be finite and > 0");
    require_config(c.exact_distances > 0, "graph_rope: exact_distances must be > 0");
    require_config(c.max_position > 0, "graph_rope: max_position must be > 0");
    if (c.cache_table) {
      require_at_most("graph_rope: max_position (with cache_table)", c.max_position,
                      (std::size_t{1} << 28) / c.dim);
    }
    return c;
  }

  /// Expanded cos/sin of position p: both coordinates of pair i get cos/sin((p/s)·θ_i), evaluated
  /// in double with xsimd's vectorised sincos (≤ 1 ulp) W angles at a time, then rounded to T.
  void fill_row(double p, T* c, T* s) const noexcept {
    using B = kernels::batch<double>;
    constexpr std::size_t W = B::size;
    const std::size_t d = dim();
    const std::size_t h = d / 2;
    const double scaled = p / config_.scaling_factor;
    const bool interleaved = config_.pairing == rope_pairing::interleaved;
    double angle[W];
    double sin_v[W];
    double cos_v[W];
    for (std::size_t i0 = 0; i0 < h; i0 += W) {
      const std::size_t lanes = std::min(W, h - i0);
      for (std::size_t l = 0; l < W; ++l) angle[l] = l < lanes ? scaled * theta_[i0 + l] : 0.0;
      const auto sc = xsimd::sincos(B::load_unaligned(angle));
      sc.first.store_unaligned(sin_v);
      sc.second.store_unaligned(cos_v);
      for (std::size_t l = 0; l < lanes; ++l) {
        const std::size_t i = i0 + l;
        const T ci = static_cast<T>(cos_v[l]);
        const T si = static_cast<T>(sin_v[l]);
        const std::size_t a = interleaved ? 2 * i : i;
        const std::size_t b = interleaved ? 2 * i + 1 : i + h;
        c[a] = ci;
        c[b] = ci;
        s[a] = si;
        s[b] = si;
      }
    }
  }

  graph_rope_config config_;
  std::vector<double> theta_;
  std::vector<T> cos_;  // [max_position, d] expanded rows (empty without the cache)
  std::vector<T> sin_;
};

/// \brief Scaled dot-product attention over rotary-embedded queries and keys (the seeds'
/// `GraphRoPE` attention): s_j = scale·⟨R(p_q)q, R(p_j)k_j⟩, w = softmax(s), out = Σ w_j v_j.
/// Models `attention_mechanism` and `masked_attention_mechanism`.
///
/// Positions: `compute`/`compute_with_mask` use the seeds' sequence positions (query at 0, key j
/// at j); `compute_at` takes explicit positions; `compute_from_root` uses the bucketed hop
/// distances from a root node of a `csr_graph` (keys/values are then one row per node).
/// Conventions as in `scaled_dot_product_attention`: max-subtracted softmax, a query whose keys
/// are all masked outputs zeros, `check_finite` diagnoses NaN/Inf inputs after a non-finite score.
template <attention_scalar T>
class graph_rope_attention {
 public:
  using value_type = T;

  /// \param rope the rotation; \param scale logit scale (default 1/√dim; finite, > 0).
  explicit graph_rope_attention(const graph_rope_config& rope,
                                std::optional<double> scale = std::nullopt,
                                bool check_finite = true)
      : rope_(rope),
        scale_(static_cast<T>(scale ? *scale : 1.0 / std::sqrt(static_cast<double>(rope.dim)))),
        check_finite_(check_finite) {
    require_config(!scale || (std::isfinite(*scale) && *scale > 0.0),
                   "graph_rope_attention: scale must be finite and > 0");
  }

  /// Convenience: default RoPE settings of dimension `dim`.
  explicit graph_rope_attention(std::size_t dim)
      : graph_rope_attention(graph_rope_config{.dim = dim}) {}

  [[nodiscard]] const graph_rope<T>& rope() const noexcept { return rope_; }
  [[nodiscard]] std::size_t dim() const noexcept { return rope_.dim(); }
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// \brief Writes the output (size values.cols()) and optionally the weights (size n) of one
  /// query at `query_position` over keys at `key_positions`; returns the log-sum-exp of the
  /// visible scores. `key_mask` (empty = all visible) holds `true` for visible keys.
  T compute_at_into(double query_position, std::span<const T> query,
                    std::span<const double> key_positions, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}, std::span<T> weights = {}) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t d = dim();
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_dimension("query.size()", query.size(), d);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), d);
    require_dimension("key_positions.size() (must equal keys.rows())", key_positions.size(), n);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (!weights.empty()) require_dimension("weights.size()", weights.size(), n);
    if (!std::isfinite(query_position))
      detail::throw_non_finite("query_position", 0, query_position);
    require_finite("key_positions", key_positions);

    // q̃ = R(p_q)q and its perpendicular q̃⊥ (slots 1, 2); scores in slot 0 (or `weights`).
    T* qr = detail::thread_scratch<T, 1>(d);
    T* qp = detail::thread_scratch<T, 2>(d);
    rope_.rotate_unchecked(query.data(), query_position, qr, T(-1));
    rope_.perpendicular(qr, qp);
    T* s = weights.empty() ? detail::thread_scratch<T, 0>(n) : weights.data();
    T* cb = detail::thread_scratch<T, 3>(d);
    T* sb = detail::thread_scratch<T, 4>(d);
    const auto ldk = static_cast<std::size_t>(keys.outerStride());
    for (std::size_t j = 0; j < n; ++j) {
      const T* c = nullptr;
      const T* sn = nullptr;
      rope_.angle_rows(key_positions[j], cb, sb, c, sn);
      // ⟨R(p_q)q, R(p_j)k_j⟩ = ⟨k_j, R(p_j)ᵀq̃⟩ = Σ k_j·(C⊙q̃ + S⊙q̃⊥)
      s[j] = scale_ * detail::rope_rotated_dot(keys.data() + j * ldk, c, sn, qr, qp, d);
    }
    if (check_finite_ && !kernels::all_finite(s, n))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    if (!key_mask.empty()) {
      for (std::size_t j = 0; j < n; ++j)
        if (!key_mask[j]) s[j] = -std::numeric_limits<T>::infinity();
    }
    const T lse = kernels::softmax(s, n);
    kernels::weighted_row_sum(s, n, values.data(), dv,
                              static_cast<std::size_t>(values.outerStride()), T(0), out.data());
    if (check_finite_ && !kernels::all_finite(out.data(), dv))
      detail::diagnose_vector_inputs<T>(query, keys, values);
    return lse;
  }

  /// \brief Attention output of one query at `query_position` over keys at `key_positions`.
  [[nodiscard]] std::vector<T> compute_at(double query_position, std::span<const T> query,
                                          std::span<const double> key_positions,
                                          const matrix_cref<T>& keys, const matrix_cref<T>& values,
                                          std::span<const bool> key_mask = {}) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_at_into(query_position, query, key_positions, keys, values, out, key_mask);
    return out;
  }

  /// \brief Output, weights and log-sum-exp of `compute_at` in one call.
  [[nodiscard]] attention_output<T> compute_at_with_weights(
      double query_position, std::span<const T> query, std::span<const double> key_positions,
      const matrix_cref<T>& keys, const matrix_cref<T>& values,
      std::span<const bool> key_mask = {}) const {
    attention_output<T> r{std::vector<T>(static_cast<std::size_t>(values.cols())),
                          std::vector<T>(static_cast<std::size_t>(keys.rows())), T(0)};
    r.lse = compute_at_into(query_position, query, key_positions, keys, values, r.output, key_mask,
                            r.weights);
    return r;
  }

  /// \brief Graph positions: keys/values hold one row per node of `graph`; every node (and the
  /// query, which is node `query_node`) is placed at the bucketed hop distance from `root`. With
  /// root = query_node the query sits at 0 and each key at its own distance to the query.
  [[nodiscard]] std::vector<T> compute_from_root(const csr_graph& graph, std::size_t root,
                                                 std::size_t query_node, std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask = {}) const {
    require_dimension("keys.rows() (must equal graph.num_nodes())",
                      static_cast<std::size_t>(keys.rows()), graph.num_nodes());
    if (query_node >= graph.num_nodes()) {
      std::ostringstream os;
      os << "invalid argument: query_node " << query_node << " is out of range (num_nodes is "
         << graph.num_nodes() << ")";
      throw invalid_argument(os.str());
    }
    const std::vector<double> positions = rope_.positions_from_root(graph, root);
    return compute_at(positions[query_node], query, positions, keys, values, key_mask);
  }

  /// \brief The seeds' `compute`: query at position 0, key j at position j.
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    const std::vector<double> positions = sequence_positions(static_cast<std::size_t>(keys.rows()));
    return compute_at(0.0, query, positions, keys, values);
  }

  /// \brief `compute` with a key mask (`true` = visible); hidden keys keep their positions.
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    const std::vector<double> positions = sequence_positions(static_cast<std::size_t>(keys.rows()));
    return compute_at(0.0, query, positions, keys, values, key_mask);
  }

  /// \brief Seeds-shaped adapter: keys and values as vectors of vectors (copied once).
  [[nodiscard]] std::vector<T> compute(const std::vector<T>& query,
                                       const std::vector<std::vector<T>>& keys,
                                       const std::vector<std::vector<T>>& values) const {
    return compute(std::span<const T>(query), to_matrix(keys, "keys"), to_matrix(values, "values"));
  }

  /// \brief Many queries against one key set: rotates Q and K once (`rotate_rows`), then runs the
  /// tensor-API `sdpa` (Eigen GEMM blocks, `parallel_for`). Row i of the result is the output of
  /// query i. `key_mask` (empty = all visible) is shared by every query.
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            std::span<const double> query_positions,
                                            const matrix_cref<T>& keys,
                                            std::span<const double> key_positions,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> key_mask = {}) const {
    const auto lq = static_cast<std::size_t>(queries.rows());
    const auto n = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim());
    require_dimension("query_positions.size() (must equal queries.rows())", query_positions.size(),
                      lq);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim());
    require_dimension("key_positions.size() (must equal keys.rows())", key_positions.size(), n);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (lq == 0) return row_matrix<T>(0, static_cast<Eigen::Index>(dv));
    const row_matrix<T> qr = rope_.rotate_rows(queries, query_positions);
    const row_matrix<T> kr = rope_.rotate_rows(keys, key_positions);
    row_matrix<T> out(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(dv));
    const std::size_t d = dim();
    sdpa_options<T> options;
    options.scale = scale_;
    options.check_finite = check_finite_;
    const std::unique_ptr<bool[]> mask(new bool[key_mask.empty() ? 1 : n]);
    if (!key_mask.empty()) {
      std::copy(key_mask.begin(), key_mask.end(), mask.get());
      options.mask.key_mask = tensor_view<const bool, 2>(mask.get(), {1, n});
    }
    const auto ldv = static_cast<std::ptrdiff_t>(values.outerStride());
    sdpa<T>(tensor_view<const T, 4>(qr.data(), {1, 1, lq, d}),
            tensor_view<const T, 4>(kr.data(), {1, 1, n, d}),
            tensor_view<const T, 4>(values.data(), {1, 1, n, dv},
                                    {static_cast<std::ptrdiff_t>(n) * ldv,
                                     static_cast<std::ptrdiff_t>(n) * ldv, ldv, 1}),
            tensor_view<T, 4>(out.data(), {1, 1, lq, dv}), options);
    return out;
  }

 private:
  static std::vector<double> sequence_positions(std::size_t n) {
    std::vector<double> p(n);
    for (std::size_t j = 0; j < n; ++j) p[j] = static_cast<double>(j);
    return p;
  }

  graph_rope<T> rope_;
  T scale_;
  bool check_finite_;
};

}  // namespace ruvector::attention

RUVECTOR_ATTENTION_KERNEL_WARNINGS_END
