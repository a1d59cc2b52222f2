#pragma once
/// \file curvature/component_quantizer.hpp
/// \brief Per-component symmetric absmax quantisation of mixed-curvature keys
/// `[euclidean | hyperbolic | spherical]` into **bit-packed** codes, with scoring on the packed
/// codes (no dequantisation of the key set).
///
/// ## Quantisation (symmetric absmax, one scale per key per component)
/// For a component c of key i with values x_0 … x_{m−1} and b = b_c bits (2 ≤ b ≤ 8):
///
///     L   = 2^(b−1) − 1                                 levels on each side of 0
///     s   = roundup_float(max_j |x_j| / L)              (s = 0 for an all-zero component)
///     c_j = clamp(round(x_j / s), −L, L)                 (c_j = 0 when s = 0)
///     x̂_j = s · c_j                                     the decoded value
///
/// Conventions:
/// - `max_j |x_j| / L` is computed in double and rounded **up** to the next `float` (the stored
///   scale type), so |x_j / s| ≤ L holds for every element; the clamp only guards the last bit
///   of the double quotient.
/// - `round` is round-half-away-from-zero (`std::round`) applied to the double quotient x_j / s.
///   Hence |x̂_j − x_j| ≤ s/2 (+ s·(|c_j| + 1)·2^−53 from rounding that quotient).
/// - The scale is a `float` for T = float and T = double. For T = double a component whose
///   max|x|/L exceeds FLT_MAX cannot be represented and `quantize` throws `input_too_large`;
///   tiny components (max|x|/L below the smallest float) get the smallest positive subnormal
///   float as their scale, so the bound above still holds.
/// - `dequantize_row` returns fl_T(s·c_j) (exact for double; one rounding for float).
///
/// ## Packed layout (what `packed_row` exposes; every count is measured, see `storage_bytes`)
/// - Code of value j: the offset-binary integer u_j = c_j + L ∈ [0, 2L] ⊂ [0, 2^b − 2], in
///   exactly b bits.
/// - A component of m values is one little-endian bit stream of B_c = ⌈m·b/8⌉ bytes: u_j occupies
///   stream bits [j·b, (j+1)·b), stream bit k is bit (k mod 8) (least significant first) of byte
///   ⌊k/8⌋; the unused high bits of the last byte are 0. So 8 codes of b bits fill exactly b
///   bytes (eight 5-bit codes → 5 bytes), and a component of size 0 takes 0 bytes.
/// - Key row i: `[E stream | H stream | S stream]` at byte offsets 0, B_E, B_E + B_H; rows are
///   `row_bytes() = B_E + B_H + B_S` bytes apart with no further padding (row i starts at byte
///   i·row_bytes()).
/// - After the last row: `packed_slack_bytes` (= 16) zero bytes, so a decoder may always load 8
///   or 16 bytes (unaligned) starting at the first byte of any group of 8 or 16 codes.
/// - Scales: one `float` per key per **non-empty** component, key-major in E, H, S order
///   (`scales[i·k + slot]`, k = number of non-empty components). Empty components store nothing.
///
/// So `storage_bytes() = n·(row_bytes() + 4·k) + 16`; for d = 512 split 256/192/64 at 8/5/5 bits
/// that is 428 bytes per key against 2048 for float keys (≈ 4.785×).
///
/// ## Scoring on the packed codes
///     ⟨q_c, k̂_c⟩ = s_c · Σ_j q_j · c_j
/// computed in T, then multiplied by s_c; no heap allocation, nothing dequantised in memory.
/// `component_dots_all` scores 4 keys at a time (one query load feeds 4 independent FMA chains);
/// each key keeps one accumulator, so `component_dots(q, i)` and `component_dots_all` agree bit
/// for bit.
/// - AVX-512BW / AVX2 builds: 16 (resp. 8) codes per step, unpacked in registers: one unaligned
///   16- (8-) byte load of the group's 2b (b) bytes broadcast to every 128-bit lane, a byte
///   shuffle that gives 32-bit lane k the two bytes holding bits [k·b, k·b + b), a per-lane
///   variable right shift by (k·b) mod 8, then mask and − L (int → T conversion), or — float on
///   AVX-512 with b ≤ 5 — one `vpermt2ps` lookup in a 32-entry table of (i mod 2^b) − L; 8-bit
///   components zero-extend bytes instead. The tail uses a masked query load, so lanes past the
///   component contribute exactly 0. Every code is converted to T exactly.
/// - Other targets: groups of 8 codes (one unaligned 64-bit load, then BMI2 `pdep` — or a 3-step
///   SWAR shift/mask sequence without BMI2 — spreads the eight b-bit fields into eight bytes) are
///   decoded into a stack buffer of at most 512 values, converted to T and reduced with the xsimd
///   `kernels::dot`.
/// `dequantize_row`, `error_bound` and `component_squared_norms` use the buffer path everywhere.
///
/// ## Error bound (`error_bound`)
/// For the exact key k and the value D returned by `component_dots`,
///
///     |D_c − ⟨q_c, k_c⟩| ≤ (s_c/2)·‖q_c‖₁ + 2·(m_c + 2)·u·s_c·Σ_j |q_j|·(|c_j| + 1)
///                          + (m_c + 2)·η                     (both extra terms 0 when s_c = 0)
///
/// with m_c the component size, u the unit roundoff of T (2^−24 for float, 2^−53 for double) and
/// η the smallest positive subnormal of T (the absolute error of an operation that underflows;
/// it only matters for keys or queries near the bottom of T's range).
/// The first term is the quantisation error (|k̂_j − k_j| ≤ s/2, attained when every |k̂_j − k_j|
/// is s/2 and q_j = sign(k̂_j − k_j)); the second covers the double-quotient rounding of the
/// codes, the dot product in T (any summation order with FMA: |fl(Σ) − Σ| ≤ γ_m·Σ|q_j c_j|,
/// γ_m = m·u/(1 − m·u) ≤ 2·m·u for m·u ≤ 1/2 — Higham, "Accuracy and Stability of Numerical
/// Algorithms", §3.1), the final multiplication by s_c and the rounding of the bound itself.
///
/// Objects are immutable after construction and safe to share across threads; every method is
/// `const` and single-threaded.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/curvature/components.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

#if defined(__BMI2__) && (defined(__x86_64__) || defined(_M_X64))
#define RUVECTOR_ATTENTION_HAS_PDEP 1
#else
#define RUVECTOR_ATTENTION_HAS_PDEP 0
#endif

// Vectorised unpack-and-dot: needs a byte shuffle and per-lane variable shifts, which xsimd 8.1
// does not expose, hence intrinsics for AVX-512BW and AVX2; other targets use the portable path.
#if defined(__AVX512BW__)
#define RUVECTOR_ATTENTION_QUANT_SIMD 512
#elif defined(__AVX2__)
#define RUVECTOR_ATTENTION_QUANT_SIMD 256
#else
#define RUVECTOR_ATTENTION_QUANT_SIMD 0
#endif

#if RUVECTOR_ATTENTION_HAS_PDEP || RUVECTOR_ATTENTION_QUANT_SIMD
#include <immintrin.h>
#endif

namespace ruvector::attention {

/// \brief Bits per code of each component; each must be in [2, 8] (`invalid_config` otherwise).
struct quantization_config {
  unsigned euclidean_bits = 8;
  unsigned hyperbolic_bits = 5;
  unsigned spherical_bits = 5;
  friend constexpr bool operator==(const quantization_config&,
                                   const quantization_config&) = default;
};

/// \brief Names one of the three components of a product-space vector (storage order).
enum class component_kind : unsigned char { euclidean = 0, hyperbolic = 1, spherical = 2 };

/// \brief One value per component, e.g. the three partial dot products of a query and a key.
template <attention_scalar T>
struct component_scores {
  T euclidean = T(0);
  T hyperbolic = T(0);
  T spherical = T(0);
};

/// \brief Smallest and largest accepted bits per code.
inline constexpr unsigned min_quantization_bits = 2;
inline constexpr unsigned max_quantization_bits = 8;
/// \brief Zero bytes kept after the last packed row, so the decoders' 8- and 16-byte loads at the
/// start of any group of codes stay in bounds.
inline constexpr std::size_t packed_slack_bytes = 16;

namespace detail {

/// Levels on each side of zero for b bits: L = 2^(b−1) − 1.
[[nodiscard]] constexpr int quant_levels(unsigned bits) noexcept { return (1 << (bits - 1)) - 1; }

/// Bytes of a packed stream of `count` codes of `bits` bits: ⌈count·bits/8⌉.
[[nodiscard]] constexpr std::size_t packed_stream_bytes(std::size_t count, unsigned bits) noexcept {
  return (count * bits + 7) / 8;
}

/// Little-endian unaligned 64-bit load.
[[nodiscard]] inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) {
    std::uint64_t r = 0;
    for (int k = 0; k < 8; ++k) r |= ((v >> (8 * k)) & 0xFFu) << (8 * (7 - k));
    v = r;
  }
  return v;
}

/// Little-endian unaligned 64-bit store.
inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::big) {
    std::uint64_t r = 0;
    for (int k = 0; k < 8; ++k) r |= ((v >> (8 * k)) & 0xFFu) << (8 * (7 - k));
    v = r;
  }
  std::memcpy(p, &v, sizeof v);
}

/// Masks that spread eight b-bit fields (the low 8·b bits of a word) into eight bytes.
struct spread_plan {
  unsigned bits = 8;
  std::uint64_t m4 = 0;    ///< low 4b bits
  std::uint64_t m2 = 0;    ///< low 2b bits of each 32-bit half
  std::uint64_t m1 = 0;    ///< low b bits of each 16-bit quarter
  std::uint64_t pdep = 0;  ///< low b bits of each byte

  [[nodiscard]] static constexpr spread_plan make(unsigned b) noexcept {
    spread_plan p;
    p.bits = b;
    const auto low = [](unsigned n) {
      return n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    };
    p.m4 = low(4 * b);
    p.m2 = low(2 * b) | (low(2 * b) << 32);
    p.m1 = low(b) * 0x0001000100010001ull;
    p.pdep = low(b) * 0x0101010101010101ull;
    return p;
  }
};

/// Portable SWAR spread: byte k of the result is field k (bits [k·b, (k+1)·b)) of `w`.
/// Three halving steps: 4|4 fields into the two 32-bit halves, 2|2 into 16-bit quarters, 1|1
/// into bytes (valid for 1 ≤ b ≤ 8).
[[nodiscard]] constexpr std::uint64_t spread_codes_swar(std::uint64_t w,
                                                        const spread_plan& p) noexcept {
  const unsigned b = p.bits;
  std::uint64_t x = (w & p.m4) | (((w >> (4 * b)) & p.m4) << 32);
  x = (x & p.m2) | (((x >> (2 * b)) & p.m2) << 16);
  x = (x & p.m1) | (((x >> b) & p.m1) << 8);
  return x;
}

/// Spread with BMI2 `pdep` when compiled for it, SWAR otherwise (same result).
[[nodiscard]] RUVECTOR_ATTENTION_ALWAYS_INLINE std::uint64_t spread_codes(
    std::uint64_t w, const spread_plan& p) noexcept {
#if RUVECTOR_ATTENTION_HAS_PDEP
  return _pdep_u64(w, p.pdep);
#else
  return spread_codes_swar(w, p);
#endif
}

/// Largest number of codes decoded into the stack buffer at once (a multiple of 8).
inline constexpr std::size_t decode_chunk = 512;

/// Decodes codes [8·first_group, 8·(first_group + groups)) of a stream of `bits`-bit codes into
/// `out` as signed values c = u − L (converted to T). May read up to 8 bytes past the start of
/// the last group (the caller guarantees they are in bounds). groups·8 ≤ decode_chunk.
template <class T>
void decode_groups(const std::uint8_t* stream, std::size_t first_group, std::size_t groups,
                   const spread_plan& plan, int levels,
                   T* RUVECTOR_ATTENTION_RESTRICT out) noexcept {
  const std::size_t count = groups * 8;
  const std::uint8_t* bytes = nullptr;
  alignas(64) std::uint8_t spread[decode_chunk];
  if (plan.bits == 8) {
    bytes = stream + first_group * 8;
  } else {
    const std::uint8_t* src = stream + first_group * plan.bits;
    for (std::size_t g = 0; g < groups; ++g) {
      store_le64(spread + 8 * g, spread_codes(load_le64(src + g * plan.bits), plan));
    }
    bytes = spread;
  }
  for (std::size_t j = 0; j < count; ++j) {
    out[j] = static_cast<T>(static_cast<int>(bytes[j]) - levels);
  }
}

/// Σ_j q[j]·c_j over the m codes of one component stream, in T, through a stack buffer of
/// decode_chunk values and kernels::dot (the portable path).
template <class T>
[[nodiscard]] T dot_codes_buffered(const T* q, const std::uint8_t* stream, std::size_t m,
                                   const spread_plan& plan, int levels) noexcept {
  alignas(64) T buf[decode_chunk];
  T acc = T(0);
  for (std::size_t start = 0; start < m; start += decode_chunk) {
    const std::size_t len = std::min(decode_chunk, m - start);
    decode_groups<T>(stream, start / 8, (len + 7) / 8, plan, levels, buf);
    acc += kernels::dot<T>(q + start, buf, len);
  }
  return acc;
}

#if RUVECTOR_ATTENTION_QUANT_SIMD

/// Byte-shuffle controls and shift counts that move field k (bits [k·b, k·b + b) of a window that
/// starts at a group boundary) into the low bits of 32-bit lane k, for k < 16 and b ≤ 8.
struct unpack_tables {
  alignas(64) std::uint8_t shuffle[9][64] = {};
  alignas(64) std::uint32_t shift[9][16] = {};
  alignas(64) std::int32_t tail_mask[9][8] = {};  ///< tail_mask[r]: −1 in lanes < r (AVX2)
  alignas(64) float code_table[9][32] = {};       ///< code_table[b][i] = (i mod 2^b) − L_b
};

[[nodiscard]] constexpr unpack_tables make_unpack_tables() noexcept {
  unpack_tables t;
  for (unsigned b = 1; b <= 8; ++b) {
    for (unsigned k = 0; k < 16; ++k) {
      const unsigned bit = k * b, lo = bit / 8, sh = bit % 8;
      t.shuffle[b][4 * k + 0] = static_cast<std::uint8_t>(lo);
      t.shuffle[b][4 * k + 1] = sh + b > 8 ? static_cast<std::uint8_t>(lo + 1) : 0x80;
      t.shuffle[b][4 * k + 2] = 0x80;  // pshufb: high bit set → zero byte
      t.shuffle[b][4 * k + 3] = 0x80;
      t.shift[b][k] = sh;
    }
  }
  for (unsigned r = 0; r <= 8; ++r)
    for (unsigned k = 0; k < 8; ++k) t.tail_mask[r][k] = k < r ? -1 : 0;
  for (unsigned b = 1; b <= 8; ++b) {
    const int levels = (1 << (b - 1)) - 1;
    for (int i = 0; i < 32; ++i)
      t.code_table[b][i] = static_cast<float>((i & ((1 << b) - 1)) - levels);
  }
  return t;
}

inline constexpr unpack_tables unpack = make_unpack_tables();

#endif

#if RUVECTOR_ATTENTION_QUANT_SIMD == 512

/// Fields of the 16-code group at `p` (b < 8) as uint32 lanes: broadcast the group's 2b bytes to
/// every 128-bit lane, shuffle the two bytes of field k into lane k, shift by (k·b) mod 8.
/// The caller masks.
RUVECTOR_ATTENTION_ALWAYS_INLINE __m512i fields16(const std::uint8_t* p, __m512i ctrl,
                                                  __m512i shifts) noexcept {
  const __m512i w = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_srlv_epi32(_mm512_shuffle_epi8(w, ctrl), shifts);
}

/// How a component's codes become lanes: zero-extended bytes (b = 8), a 32-entry table lookup
/// (b ≤ 5, float only) or shift-and-mask (any b < 8).
enum class unpack_mode { bytes, table, masked };

/// 16 codes of the group at `p` as floats c = u − L.
/// - bytes:  zero-extend, then u is made a float exactly by OR-ing it into the mantissa of 2^23
///           (bits(2^23 + u) = 0x4B000000 | u) and subtracting 2^23 + L.
/// - table:  `vpermt2ps` reads entry (field mod 32) of a 32-float table holding
///           ((i mod 2^b) − L) for i < 32, so the bits above the field need no mask.
/// - masked: (field & (2^b − 1)) | 0x4B000000 in one `vpternlogd`, then − (2^23 + L).
template <unpack_mode Mode>
RUVECTOR_ATTENTION_ALWAYS_INLINE __m512 codes16_ps(const std::uint8_t* p, __m512i ctrl,
                                                   __m512i shifts, __m512i mask, __m512i magic,
                                                   __m512 bias, __m512 tlo, __m512 thi) noexcept {
  if constexpr (Mode == unpack_mode::bytes) {
    const __m512i x = _mm512_or_si512(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), magic);
    return _mm512_sub_ps(_mm512_castsi512_ps(x), bias);
  } else if constexpr (Mode == unpack_mode::table) {
    return _mm512_permutex2var_ps(tlo, fields16(p, ctrl, shifts), thi);
  } else {
    const __m512i x = _mm512_ternarylogic_epi32(fields16(p, ctrl, shifts), mask, magic, 0xEA);
    return _mm512_sub_ps(_mm512_castsi512_ps(x), bias);
  }
}

/// 16 signed codes c = u − L of the group at `p` as int32 lanes.
template <unpack_mode Mode>
RUVECTOR_ATTENTION_ALWAYS_INLINE __m512i codes16_epi32(const std::uint8_t* p, __m512i ctrl,
                                                       __m512i shifts, __m512i mask,
                                                       __m512i lv) noexcept {
  __m512i x;
  if constexpr (Mode == unpack_mode::bytes) {
    x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    x = _mm512_and_si512(fields16(p, ctrl, shifts), mask);
  }
  return _mm512_sub_epi32(x, lv);
}

/// Σ of the 16 lanes, pairing (lane i, lane i + 8), then i + 4, i + 2, i + 1 — the order hsum4
/// uses, so one key scores the same alone or in a block of 4.
RUVECTOR_ATTENTION_ALWAYS_INLINE float hsum16(__m512 a) noexcept {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  v = _mm_add_ps(v, _mm_shuffle_ps(v, v, 0x4E));
  v = _mm_add_ps(v, _mm_shuffle_ps(v, v, 0xB1));
  return _mm_cvtss_f32(v);
}

/// out[r] = hsum16(a[r]) for r < 4 with shared shuffles (a 4 × 16 transpose-and-add).
RUVECTOR_ATTENTION_ALWAYS_INLINE void hsum4(const __m512* a, float* out) noexcept {
  // 128-bit lanes l0..l3: t01 = [a0.l0 + a0.l2, a0.l1 + a0.l3, a1.l0 + a1.l2, a1.l1 + a1.l3].
  const __m512 t01 =
      _mm512_add_ps(_mm512_shuffle_f32x4(a[0], a[1], 0x44), _mm512_shuffle_f32x4(a[0], a[1], 0xEE));
  const __m512 t23 =
      _mm512_add_ps(_mm512_shuffle_f32x4(a[2], a[3], 0x44), _mm512_shuffle_f32x4(a[2], a[3], 0xEE));
  // Lane r now holds key r's four partial sums (first half + second half of the 256-bit sums).
  __m512 u =
      _mm512_add_ps(_mm512_shuffle_f32x4(t01, t23, 0x88), _mm512_shuffle_f32x4(t01, t23, 0xDD));
  u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
  u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1));
  const __m512 first =
      _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), u);
  _mm_storeu_ps(out, _mm512_castps512_ps128(first));
}

/// out[r] = Σ_j q[j]·c_j of the m codes in the streams at stream0 + r·stride, r < R, on
/// AVX-512BW: 16 codes per step, one query load shared by the R keys, one accumulator per key.
template <class T, std::size_t R, unpack_mode Mode>
void dot_codes_avx512(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                      unsigned bits, int levels, T* out) noexcept {
  const __m512i ctrl = _mm512_load_si512(unpack.shuffle[bits]);
  const __m512i shifts = _mm512_load_si512(unpack.shift[bits]);
  const __m512i mask = _mm512_set1_epi32((1 << bits) - 1);
  const std::size_t step_bytes = 2 * bits;  // 16 codes
  const std::uint8_t* p[R];
#pragma GCC unroll 4
  for (std::size_t r = 0; r < R; ++r) p[r] = stream0 + r * stride;
  if constexpr (std::is_same_v<T, float>) {
    const __m512i magic = _mm512_set1_epi32(0x4B000000);
    const __m512 bias = _mm512_set1_ps(8388608.0f + static_cast<float>(levels));
    __m512 tlo = _mm512_setzero_ps(), thi = _mm512_setzero_ps();
    if constexpr (Mode == unpack_mode::table) {
      tlo = _mm512_load_ps(unpack.code_table[bits]);
      thi = _mm512_load_ps(unpack.code_table[bits] + 16);
    }
    __m512 acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (std::size_t j = 0; j < m; j += 16) {
      const std::size_t rem = m - j;
      const __m512 qv =
          rem >= 16 ? _mm512_loadu_ps(q + j)
                    : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << rem) - 1u), q + j);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m512 c = codes16_ps<Mode>(p[r], ctrl, shifts, mask, magic, bias, tlo, thi);
        acc[r] = _mm512_fmadd_ps(qv, c, acc[r]);
        p[r] += step_bytes;
      }
    }
    if constexpr (R == 4) {
      hsum4(acc, out);
    } else {
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) out[r] = hsum16(acc[r]);
    }
  } else {
    const __m512i lv = _mm512_set1_epi32(levels);
    __m512d acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm512_setzero_pd();
    for (std::size_t j = 0; j < m; j += 16) {
      const std::size_t rem = m - j;
      __m512d q0, q1;
      if (rem >= 16) {
        q0 = _mm512_loadu_pd(q + j);
        q1 = _mm512_loadu_pd(q + j + 8);
      } else {
        const unsigned k = (1u << rem) - 1u;
        q0 = _mm512_maskz_loadu_pd(static_cast<__mmask8>(k & 0xFFu), q + j);
        q1 = _mm512_maskz_loadu_pd(static_cast<__mmask8>(k >> 8), q + j + 8);
      }
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m512i c = codes16_epi32<Mode>(p[r], ctrl, shifts, mask, lv);
        acc[r] = _mm512_fmadd_pd(q0, _mm512_cvtepi32_pd(_mm512_castsi512_si256(c)), acc[r]);
        acc[r] = _mm512_fmadd_pd(q1, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(c, 1)), acc[r]);
        p[r] += step_bytes;
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) out[r] = _mm512_reduce_add_pd(acc[r]);
  }
}

/// Dispatches on the unpack mode (bytes for b = 8, table for float with b ≤ 5, masked otherwise).
template <class T, std::size_t R>
void dot_codes_simd(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                    unsigned bits, int levels, T* out) noexcept {
  if (bits == 8) {
    dot_codes_avx512<T, R, unpack_mode::bytes>(q, stream0, stride, m, bits, levels, out);
  } else if (std::is_same_v<T, float> && bits <= 5) {
    dot_codes_avx512<T, R, unpack_mode::table>(q, stream0, stride, m, bits, levels, out);
  } else {
    dot_codes_avx512<T, R, unpack_mode::masked>(q, stream0, stride, m, bits, levels, out);
  }
}

#elif RUVECTOR_ATTENTION_QUANT_SIMD == 256

/// 8 signed codes c = u − L of the group at `p` as int32 lanes (AVX2): zero-extended bytes for
/// b = 8; otherwise the group's b ≤ 8 bytes broadcast to both 128-bit lanes, a byte shuffle, a
/// per-lane shift by (k·b) mod 8 and a mask.
template <bool ByteCodes>
RUVECTOR_ATTENTION_ALWAYS_INLINE __m256i codes8_epi32(const std::uint8_t* p, __m256i ctrl,
                                                      __m256i shifts, __m256i mask,
                                                      __m256i lv) noexcept {
  const __m128i w = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  __m256i x;
  if constexpr (ByteCodes) {
    x = _mm256_cvtepu8_epi32(w);
  } else {
    x = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(w), ctrl), shifts), mask);
  }
  return _mm256_sub_epi32(x, lv);
}

RUVECTOR_ATTENTION_ALWAYS_INLINE __m256 fmadd256(__m256 a, __m256 b, __m256 c) noexcept {
#if defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return _mm256_add_ps(_mm256_mul_ps(a, b), c);
#endif
}
RUVECTOR_ATTENTION_ALWAYS_INLINE __m256d fmadd256(__m256d a, __m256d b, __m256d c) noexcept {
#if defined(__FMA__)
  return _mm256_fmadd_pd(a, b, c);
#else
  return _mm256_add_pd(_mm256_mul_pd(a, b), c);
#endif
}

RUVECTOR_ATTENTION_ALWAYS_INLINE float hsum256(__m256 a) noexcept {
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
  return _mm_cvtss_f32(v);
}
RUVECTOR_ATTENTION_ALWAYS_INLINE double hsum256(__m256d a) noexcept {
  __m128d v = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  v = _mm_add_sd(v, _mm_unpackhi_pd(v, v));
  return _mm_cvtsd_f64(v);
}

/// out[r] = Σ_j q[j]·c_j of the m codes in the streams at stream0 + r·stride, r < R, on AVX2:
/// 8 codes per step, one query load shared by the R keys, one accumulator per key.
template <class T, std::size_t R, bool ByteCodes>
void dot_codes_avx2(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                    unsigned bits, int levels, T* out) noexcept {
  const __m256i ctrl = _mm256_load_si256(reinterpret_cast<const __m256i*>(unpack.shuffle[bits]));
  const __m256i shifts = _mm256_load_si256(reinterpret_cast<const __m256i*>(unpack.shift[bits]));
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  const __m256i lv = _mm256_set1_epi32(levels);
  const std::uint8_t* p[R];
#pragma GCC unroll 4
  for (std::size_t r = 0; r < R; ++r) p[r] = stream0 + r * stride;
  if constexpr (std::is_same_v<T, float>) {
    __m256 acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (std::size_t j = 0; j < m; j += 8) {
      const std::size_t rem = m - j;
      const __m256 qv =
          rem >= 8 ? _mm256_loadu_ps(q + j)
                   : _mm256_maskload_ps(q + j, _mm256_load_si256(reinterpret_cast<const __m256i*>(
                                                   unpack.tail_mask[rem])));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m256i c = codes8_epi32<ByteCodes>(p[r], ctrl, shifts, mask, lv);
        acc[r] = fmadd256(qv, _mm256_cvtepi32_ps(c), acc[r]);
        p[r] += bits;
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
  } else {
    __m256d acc[R];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_pd();
    for (std::size_t j = 0; j < m; j += 8) {
      const std::size_t rem = m - j;
      __m256d q0, q1;
      if (rem >= 8) {
        q0 = _mm256_loadu_pd(q + j);
        q1 = _mm256_loadu_pd(q + j + 4);
      } else {
        const __m256i k =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(unpack.tail_mask[rem]));
        // 64-bit lane masks: the 32-bit masks of lanes 0..3 and 4..7, sign-extended.
        q0 = _mm256_maskload_pd(q + j, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(k)));
        q1 = _mm256_maskload_pd(q + j + 4, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(k, 1)));
      }
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const __m256i c = codes8_epi32<ByteCodes>(p[r], ctrl, shifts, mask, lv);
        acc[r] = fmadd256(q0, _mm256_cvtepi32_pd(_mm256_castsi256_si128(c)), acc[r]);
        acc[r] = fmadd256(q1, _mm256_cvtepi32_pd(_mm256_extracti128_si256(c, 1)), acc[r]);
        p[r] += bits;
      }
    }
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
  }
}

/// Dispatches on b = 8 (zero-extended bytes) versus shift-and-mask.
template <class T, std::size_t R>
void dot_codes_simd(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
                    unsigned bits, int levels, T* out) noexcept {
  if (bits == 8) {
    dot_codes_avx2<T, R, true>(q, stream0, stride, m, bits, levels, out);
  } else {
    dot_codes_avx2<T, R, false>(q, stream0, stride, m, bits, levels, out);
  }
}

#endif

/// Keys scored together by component_dots_all (one query load feeds R independent FMA chains).
inline constexpr std::size_t key_block = 4;

/// out[r] = Σ_j q[j]·c_j over the m codes of the component streams at stream0 + r·stride,
/// r < R, in T: the vectorised path when compiled for AVX2 / AVX-512BW, otherwise decode_chunk
/// codes at a time into a stack buffer and kernels::dot.
template <class T, std::size_t R>
void dot_codes(const T* q, const std::uint8_t* stream0, std::size_t stride, std::size_t m,
               const spread_plan& plan, int levels, T* out) noexcept {
#if RUVECTOR_ATTENTION_QUANT_SIMD
  dot_codes_simd<T, R>(q, stream0, stride, m, plan.bits, levels, out);
#else
  for (std::size_t r = 0; r < R; ++r)
    out[r] = dot_codes_buffered<T>(q, stream0 + r * stride, m, plan, levels);
#endif
}

}  // namespace detail

template <attention_scalar T>
class component_quantizer;

/// \brief A key set quantised by `component_quantizer<T>`: bit-packed codes and per-key,
/// per-component float scales (layout in the file comment), with scoring on the packed codes.
template <attention_scalar T>
class packed_keys {
 public:
  using value_type = T;
  using scale_type = float;

  /// An empty key set (0 keys, all-zero dims; holds only the slack bytes).
  packed_keys() : codes_(packed_slack_bytes, std::uint8_t{0}) {}

  /// Number of keys n.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Component sizes (the key width is dims().total()).
  [[nodiscard]] const component_dims& dims() const noexcept { return dims_; }
  /// Bits per code of each component.
  [[nodiscard]] const quantization_config& config() const noexcept { return config_; }
  /// Bytes between consecutive key rows: B_E + B_H + B_S.
  [[nodiscard]] std::size_t row_bytes() const noexcept { return row_bytes_; }
  /// Bytes of the packed stream of one component of one key, B_c = ⌈m_c·b_c/8⌉.
  [[nodiscard]] std::size_t component_bytes(component_kind c) const noexcept {
    return part(c).bytes;
  }

  /// Bytes actually held: the code buffer (n rows + slack) plus the scale array, measured from
  /// the containers' sizes.
  [[nodiscard]] std::size_t storage_bytes() const noexcept {
    return codes_.size() * sizeof(std::uint8_t) + scales_.size() * sizeof(scale_type);
  }
  /// Bytes of the same keys as float: n·d·sizeof(float).
  [[nodiscard]] std::size_t float_bytes() const noexcept {
    return n_ * dims_.total() * sizeof(float);
  }
  /// float_bytes() / storage_bytes().
  [[nodiscard]] double compression_ratio() const noexcept {
    return static_cast<double>(float_bytes()) / static_cast<double>(storage_bytes());
  }

  /// The packed bytes of key i (row_bytes() of them). Throws `invalid_argument` if i ≥ size().
  [[nodiscard]] std::span<const std::uint8_t> packed_row(std::size_t i) const {
    check_index(i);
    return {codes_.data() + i * row_bytes_, row_bytes_};
  }

  /// Scale s of component c of key i (0 for an empty or all-zero component).
  /// Throws `invalid_argument` if i ≥ size().
  [[nodiscard]] scale_type scale(std::size_t i, component_kind c) const {
    check_index(i);
    return scale_unchecked(i, c);
  }

  /// Writes the decoded key i (x̂_j = fl_T(s·c_j)) to `out` (size dims().total()).
  void dequantize_row(std::size_t i, std::span<T> out) const {
    check_index(i);
    require_dimension("dequantize_row: out.size()", out.size(), dims_.total());
    alignas(64) T buf[detail::decode_chunk];
    for (const auto c : kinds) {
      const part_info& p = part(c);
      const std::uint8_t* stream = row_ptr(i) + p.byte_offset;
      const T s = static_cast<T>(scale_unchecked(i, c));
      for (std::size_t start = 0; start < p.size; start += detail::decode_chunk) {
        const std::size_t len = std::min(detail::decode_chunk, p.size - start);
        detail::decode_groups<T>(stream, start / 8, (len + 7) / 8, p.plan, p.levels, buf);
        T* dst = out.data() + p.offset + start;
        for (std::size_t j = 0; j < len; ++j) dst[j] = s * buf[j];
      }
    }
  }

  /// {⟨q_E, k̂_E⟩, ⟨q_H, k̂_H⟩, ⟨q_S, k̂_S⟩} of key i, computed on the packed codes as
  /// s_c · Σ_j q_j·c_j. Throws `dimension_mismatch` (query size ≠ d), `non_finite_input`
  /// (NaN/Inf in the query) or `invalid_argument` (i ≥ size()).
  [[nodiscard]] component_scores<T> component_dots(std::span<const T> query, std::size_t i) const {
    check_query(query);
    check_index(i);
    return dots_unchecked(query.data(), i);
  }

  /// The component dots of `query` with every key: e[i], h[i], s[i] for i < size(). Each output
  /// must have size() elements, or be empty to skip that component. Same errors as
  /// `component_dots` (plus `dimension_mismatch` for an output of the wrong size).
  void component_dots_all(std::span<const T> query, std::span<T> e, std::span<T> h,
                          std::span<T> s) const {
    check_query(query);
    check_output("component_dots_all: e.size()", e.size());
    check_output("component_dots_all: h.size()", h.size());
    check_output("component_dots_all: s.size()", s.size());
    T* outs[3] = {e.empty() ? nullptr : e.data(), h.empty() ? nullptr : h.data(),
                  s.empty() ? nullptr : s.data()};
    const T* q = query.data();
    constexpr std::size_t R = detail::key_block;
    std::size_t i = 0;
    for (; i + R <= n_; i += R) score_block<R>(q, i, outs, i);
    for (; i < n_; ++i) score_block<1>(q, i, outs, i);
  }

  /// The documented bound on |component_dots(q, i)_c − ⟨q_c, k_c⟩| for the original key k:
  /// (s_c/2)·‖q_c‖₁ + 2·(m_c + 2)·u·s_c·Σ_j |q_j|·(|c_j| + 1) + (m_c + 2)·η, or 0 when s_c = 0
  /// (see the file comment).
  [[nodiscard]] component_scores<T> error_bound(std::span<const T> query, std::size_t i) const {
    check_query(query);
    check_index(i);
    constexpr double u = std::numeric_limits<T>::epsilon() / 2;
    constexpr double eta = std::numeric_limits<T>::denorm_min();
    double bound[3] = {0, 0, 0};
    alignas(64) T buf[detail::decode_chunk];
    for (std::size_t k = 0; k < 3; ++k) {
      const part_info& p = parts_[k];
      if (p.size == 0) continue;
      const double s = static_cast<double>(scale_unchecked(i, static_cast<component_kind>(k)));
      const std::uint8_t* stream = row_ptr(i) + p.byte_offset;
      const T* q = query.data() + p.offset;
      double l1 = 0, weighted = 0;
      for (std::size_t start = 0; start < p.size; start += detail::decode_chunk) {
        const std::size_t len = std::min(detail::decode_chunk, p.size - start);
        detail::decode_groups<T>(stream, start / 8, (len + 7) / 8, p.plan, p.levels, buf);
        for (std::size_t j = 0; j < len; ++j) {
          const double aq = std::abs(static_cast<double>(q[start + j]));
          l1 += aq;
          weighted += aq * (std::abs(static_cast<double>(buf[j])) + 1.0);
        }
      }
      if (s == 0) continue;  // all codes 0: the computed dot is exactly 0 = ⟨q, k⟩
      const double m2 = static_cast<double>(p.size) + 2.0;
      bound[k] = 0.5 * s * l1 + 2.0 * m2 * u * s * weighted + m2 * eta;
    }
    return {static_cast<T>(bound[0]), static_cast<T>(bound[1]), static_cast<T>(bound[2])};
  }

  /// {‖k̂_E‖², ‖k̂_H‖², ‖k̂_S‖²} of key i: s_c²·Σ_j c_j² (the integer sum is exact; one rounding
  /// in double, one to T). Not stored: O(d) per call. Throws `invalid_argument` if i ≥ size().
  [[nodiscard]] component_scores<T> component_squared_norms(std::size_t i) const {
    check_index(i);
    return norms_unchecked(i);
  }

  /// component_squared_norms(i) for every key into e, h, s (each of size() elements, or empty to
  /// skip that component).
  void component_squared_norms_all(std::span<T> e, std::span<T> h, std::span<T> s) const {
    check_output("component_squared_norms_all: e.size()", e.size());
    check_output("component_squared_norms_all: h.size()", h.size());
    check_output("component_squared_norms_all: s.size()", s.size());
    for (std::size_t i = 0; i < n_; ++i) {
      const component_scores<T> r = norms_unchecked(i);
      if (!e.empty()) e[i] = r.euclidean;
      if (!h.empty()) h[i] = r.hyperbolic;
      if (!s.empty()) s[i] = r.spherical;
    }
  }

 private:
  friend class component_quantizer<T>;

  static constexpr component_kind kinds[3] = {component_kind::euclidean, component_kind::hyperbolic,
                                              component_kind::spherical};

  struct part_info {
    std::size_t size = 0;         ///< values m_c
    std::size_t offset = 0;       ///< first column of the component in a key
    std::size_t bytes = 0;        ///< B_c
    std::size_t byte_offset = 0;  ///< first byte of the stream in a row
    std::size_t slot = 0;         ///< index among the non-empty components (scale slot)
    unsigned bits = 8;
    int levels = 127;
    detail::spread_plan plan = detail::spread_plan::make(8);
  };

  packed_keys(component_dims dims, quantization_config cfg, std::size_t n)
      : n_(n), dims_(dims), config_(cfg) {
    const std::size_t sizes[3] = {dims.euclidean, dims.hyperbolic, dims.spherical};
    const std::size_t offsets[3] = {0, dims.hyperbolic_offset(), dims.spherical_offset()};
    const unsigned bits[3] = {cfg.euclidean_bits, cfg.hyperbolic_bits, cfg.spherical_bits};
    std::size_t byte_offset = 0;
    active_ = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      part_info& p = parts_[k];
      p.size = sizes[k];
      p.offset = offsets[k];
      p.bits = bits[k];
      p.levels = detail::quant_levels(bits[k]);
      p.plan = detail::spread_plan::make(bits[k]);
      p.bytes = detail::packed_stream_bytes(sizes[k], bits[k]);
      p.byte_offset = byte_offset;
      byte_offset += p.bytes;
      p.slot = active_;
      if (p.size > 0) ++active_;
    }
    row_bytes_ = byte_offset;
    codes_.assign(n * row_bytes_ + packed_slack_bytes, std::uint8_t{0});
    scales_.assign(n * active_, 0.0f);
  }

  [[nodiscard]] const part_info& part(component_kind c) const noexcept {
    return parts_[static_cast<std::size_t>(c)];
  }
  [[nodiscard]] const std::uint8_t* row_ptr(std::size_t i) const noexcept {
    return codes_.data() + i * row_bytes_;
  }
  [[nodiscard]] scale_type scale_unchecked(std::size_t i, component_kind c) const noexcept {
    const part_info& p = part(c);
    return p.size == 0 ? 0.0f : scales_[i * active_ + p.slot];
  }

  [[nodiscard]] component_scores<T> dots_unchecked(const T* q, std::size_t i) const noexcept {
    T r[3] = {T(0), T(0), T(0)};
    T* outs[3] = {&r[0], &r[1], &r[2]};
    score_block<1>(q, i, outs, 0);
    return {r[0], r[1], r[2]};
  }

  // Component dots of keys first .. first + R − 1: out_k[base + r] = s_k · Σ_j q_j·c_j for every
  // non-null out_k (keys indexed from `first`, outputs from `base`).
  template <std::size_t R>
  void score_block(const T* q, std::size_t first, T* const* outs, std::size_t base) const noexcept {
    const std::uint8_t* row = row_ptr(first);
    for (std::size_t k = 0; k < 3; ++k) {
      const part_info& p = parts_[k];
      T* out = outs[k];
      if (out == nullptr) continue;
      if (p.size == 0) {
        for (std::size_t r = 0; r < R; ++r) out[base + r] = T(0);
        continue;
      }
      T dots[R];
      detail::dot_codes<T, R>(q + p.offset, row + p.byte_offset, row_bytes_, p.size, p.plan,
                              p.levels, dots);
      for (std::size_t r = 0; r < R; ++r) {
        out[base + r] = static_cast<T>(scales_[(first + r) * active_ + p.slot]) * dots[r];
      }
    }
  }

  [[nodiscard]] component_scores<T> norms_unchecked(std::size_t i) const noexcept {
    double r[3] = {0, 0, 0};
    alignas(64) T buf[detail::decode_chunk];
    for (std::size_t k = 0; k < 3; ++k) {
      const part_info& p = parts_[k];
      if (p.size == 0) continue;
      const std::uint8_t* stream = row_ptr(i) + p.byte_offset;
      std::int64_t sum = 0;  // ≤ 2^20 · 127² < 2^34: exact
      for (std::size_t start = 0; start < p.size; start += detail::decode_chunk) {
        const std::size_t len = std::min(detail::decode_chunk, p.size - start);
        detail::decode_groups<T>(stream, start / 8, (len + 7) / 8, p.plan, p.levels, buf);
        for (std::size_t j = 0; j < len; ++j) {
          const auto c = static_cast<std::int64_t>(buf[j]);
          sum += c * c;
        }
      }
      const double s = static_cast<double>(scales_[i * active_ + p.slot]);
      r[k] = (s * s) * static_cast<double>(sum);
    }
    return {static_cast<T>(r[0]), static_cast<T>(r[1]), static_cast<T>(r[2])};
  }

  void check_index(std::size_t i) const {
    if (i >= n_) {
      std::ostringstream os;
      os << "key index is " << i << ", expected < " << n_;
      require_argument(false, os.str());
    }
  }
  void check_query(std::span<const T> query) const {
    require_dimension("query.size()", query.size(), dims_.total());
    if (!kernels::all_finite(query.data(), query.size())) require_finite<T>("query", query);
  }
  void check_output(std::string_view what, std::size_t size) const {
    if (size != 0) require_dimension(what, size, n_);
  }

  std::size_t n_ = 0;
  component_dims dims_{};
  quantization_config config_{};
  part_info parts_[3]{};
  std::size_t active_ = 0;
  std::size_t row_bytes_ = 0;
  std::vector<std::uint8_t> codes_;
  std::vector<scale_type> scales_;
};

/// \brief Quantises key sets `[euclidean | hyperbolic | spherical]` (rows = keys,
/// dims.total() columns) into `packed_keys<T>`; see the file comment for the maths and layout.
template <attention_scalar T>
class component_quantizer {
 public:
  using value_type = T;

  /// Throws `invalid_config` if a bit width is outside [2, 8] or dims.total() = 0, and
  /// `input_too_large` if dims.total() > max_dimension.
  explicit component_quantizer(component_dims dims, quantization_config config = {})
      : dims_(dims), config_(config) {
    check_bits("euclidean_bits", config.euclidean_bits);
    check_bits("hyperbolic_bits", config.hyperbolic_bits);
    check_bits("spherical_bits", config.spherical_bits);
    require_config(dims.total() > 0, "component_dims.total() must be > 0");
    require_at_most("component_dims.total()", dims.total(), max_dimension);
  }

  /// Component sizes.
  [[nodiscard]] const component_dims& dims() const noexcept { return dims_; }
  /// Bits per code.
  [[nodiscard]] const quantization_config& config() const noexcept { return config_; }

  /// Quantises every row of `keys` (n × dims().total(); n = 0 gives an empty set).
  /// Throws `dimension_mismatch` (wrong column count), `input_too_large` (n > max_sequence_length,
  /// or — T = double only — a component whose max|x|/L exceeds FLT_MAX) and `non_finite_input`
  /// naming keys[row][col] of the first NaN/Inf.
  [[nodiscard]] packed_keys<T> quantize(const matrix_cref<T>& keys) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dims_.total());
    require_at_most("keys.rows()", n, max_sequence_length);
    require_finite<T>("keys", keys.data(), n, dims_.total(), keys.outerStride());

    packed_keys<T> out(dims_, config_, n);
    for (std::size_t i = 0; i < n; ++i) {
      const T* x = keys.data() + static_cast<std::ptrdiff_t>(i) * keys.outerStride();
      std::uint8_t* row = out.codes_.data() + i * out.row_bytes_;
      for (std::size_t k = 0; k < 3; ++k) {
        const auto& p = out.parts_[k];
        if (p.size == 0) continue;
        out.scales_[i * out.active_ + p.slot] =
            quantize_component(x + p.offset, p.size, p.bits, row + p.byte_offset, i, k);
      }
    }
    return out;
  }

 private:
  static void check_bits(std::string_view what, unsigned bits) {
    if (bits < min_quantization_bits || bits > max_quantization_bits) {
      std::ostringstream os;
      os << "quantization_config." << what << " is " << bits << ", expected a value in ["
         << min_quantization_bits << ", " << max_quantization_bits << "]";
      require_config(false, os.str());
    }
  }

  // Absmax scale rounded up to float, round-half-away codes, offset-binary little-endian packing
  // into the zero-initialised stream. Returns the scale.
  static float quantize_component(const T* x, std::size_t m, unsigned bits, std::uint8_t* stream,
                                  std::size_t row, std::size_t k) {
    const int levels = detail::quant_levels(bits);
    double amax = 0;
    for (std::size_t j = 0; j < m; ++j) amax = std::max(amax, std::abs(static_cast<double>(x[j])));
    if (amax == 0) {
      // All codes 0 → u = L in every field.
      for (std::size_t j = 0; j < m; ++j) put_code(stream, j, bits, static_cast<unsigned>(levels));
      return 0.0f;
    }
    const double sd = amax / static_cast<double>(levels);
    float s = static_cast<float>(sd);
    if (static_cast<double>(s) < sd) s = std::nextafter(s, std::numeric_limits<float>::infinity());
    if (!std::isfinite(s)) {
      static constexpr const char* names[3] = {"euclidean", "hyperbolic", "spherical"};
      std::ostringstream os;
      os << "input too large: keys[" << row << "] " << names[k]
         << " component has max |x| = " << amax << "; its scale max|x|/" << levels
         << " must not exceed FLT_MAX = " << std::numeric_limits<float>::max();
      throw input_too_large(os.str());
    }
    const double sdbl = static_cast<double>(s);
    for (std::size_t j = 0; j < m; ++j) {
      double c = std::round(static_cast<double>(x[j]) / sdbl);
      c = std::clamp(c, -static_cast<double>(levels), static_cast<double>(levels));
      put_code(stream, j, bits, static_cast<unsigned>(static_cast<int>(c) + levels));
    }
    return s;
  }

  // ORs the b-bit field u into stream bits [j·b, (j+1)·b) (spans at most two bytes).
  static void put_code(std::uint8_t* stream, std::size_t j, unsigned bits, unsigned u) noexcept {
    const std::size_t bit = j * bits;
    const std::size_t byte = bit / 8;
    const unsigned shift = static_cast<unsigned>(bit % 8);
    const unsigned v = u << shift;
    stream[byte] = static_cast<std::uint8_t>(stream[byte] | (v & 0xFFu));
    if (shift + bits > 8) stream[byte + 1] = static_cast<std::uint8_t>(stream[byte + 1] | (v >> 8));
  }

  component_dims dims_;
  quantization_config config_;
};

}  // namespace ruvector::attention
