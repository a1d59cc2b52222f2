#pragma once
/// \file core/mask.hpp
/// \brief Masks: boolean key masks, causal masking and additive biases.
///
/// Conventions (DESIGN.md §4):
/// - A key mask holds `true` for keys that may be attended and `false` for masked-out keys.
/// - Causal masking is bottom-right aligned: query `i` of `Lq` sees keys `j <= i + (Lk - Lq)`.
///   With `Lq > Lk` the first `Lq - Lk` queries see no key at all.
/// - An additive bias is added to the scaled logits; `-inf` entries act as a mask.
/// - A query row that sees no key outputs zeros and has all-zero weights (never NaN); its
///   log-sum-exp is `-inf`.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "ruvector/attention/core/tensor_view.hpp"

namespace ruvector::attention {

/// \brief Number of leading keys visible to query `i` under bottom-right aligned causal masking.
[[nodiscard]] constexpr std::size_t causal_visible_keys(std::size_t i, std::size_t lq,
                                                        std::size_t lk) noexcept {
  // Visible keys are j <= i + lk - lq, i.e. the first (i + 1 + lk - lq) keys, clamped to [0, lk].
  const std::size_t limit = i + 1 + lk;
  return limit <= lq ? 0 : std::min(limit - lq, lk);
}

/// \brief Dense `Lq x Lk` causal mask (row-major, `true` = visible), for tests and debugging.
[[nodiscard]] inline std::vector<bool> make_causal_mask(std::size_t lq, std::size_t lk) {
  std::vector<bool> m(lq * lk, false);
  for (std::size_t i = 0; i < lq; ++i) {
    const std::size_t n = causal_visible_keys(i, lq, lk);
    for (std::size_t j = 0; j < n; ++j) m[i * lk + j] = true;
  }
  return m;
}

/// \brief Key mask from per-batch valid lengths: key `j` of batch `b` is visible iff
/// `j < lengths[b]` (padding mask). Storage is `B x Lk`, row-major.
[[nodiscard]] inline std::unique_ptr<bool[]> make_length_mask(std::span<const std::size_t> lengths,
                                                              std::size_t lk) {
  auto m = std::make_unique<bool[]>(lengths.size() * lk);
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    for (std::size_t j = 0; j < lk; ++j) m[b * lk + j] = j < lengths[b];
  }
  return m;
}

/// \brief Everything that can hide keys from queries in one call of the tensor API.
template <class T>
struct mask_spec {
  /// `[B, Lk]` boolean key mask (`true` = attend); absent = every key visible.
  tensor_view<const bool, 2> key_mask{};
  /// Bottom-right aligned causal masking.
  bool causal = false;
  /// Additive bias `[B or 1, H or 1, Lq, Lk]` added to the scaled logits; an extent of 1
  /// broadcasts. `-inf` hides a key; NaN and `+inf` are rejected. Absent = no bias.
  tensor_view<const T, 4> bias{};
};

}  // namespace ruvector::attention
