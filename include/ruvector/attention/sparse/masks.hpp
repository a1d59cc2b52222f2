#pragma once
/// \file sparse/masks.hpp
/// \brief Sparse attention patterns: which keys each query may attend, as per-query sorted key
/// lists in CSR form, plus the generators of the sparse-attention literature.
///
/// Representation. A `sparse_pattern` of an `Lq × Lk` attention holds, for every query row `i`,
/// the strictly increasing key indices `col_idx[row_ptr[i] .. row_ptr[i+1])`, all `< Lk`
/// (compressed sparse row; no values; 32-bit key indices, `size_t` row offsets). `nnz()` counts
/// the stored pairs and
/// `density() = nnz / (Lq·Lk)`. The kernel `sparse_attention` (sparse/sparse_attention.hpp)
/// computes, for each query, the softmax over exactly its listed keys, in O(nnz·(d + dv)).
///
/// Positions (DESIGN.md §4). Every generator places query `i` of `Lq` at sequence position
/// `p_i = i + Lk − Lq` (bottom-right alignment, the same as causal masking), so for self-attention
/// (`Lq == Lk`) `p_i = i`, and a single decoding query (`Lq = 1`) sits at the last position
/// `Lk − 1` and gets exactly the last row of the full `Lk × Lk` pattern. "Causal" always means
/// `j <= p_i`.
///
/// Generators (key `j` is listed for query `i` iff ...; δ = p_i − j):
/// - `make_window_pattern` — sliding window / local attention: |δ| ≤ w (causal: 0 ≤ δ ≤ w).
///   nnz ≈ Lq·(2w + 1).
/// - `make_strided_pattern` — Child et al. 2019, "Generating Long Sequences with Sparse
///   Transformers" (strided pattern), and Longformer's dilated window (Beltagy et al. 2020):
///   |δ| ≤ local, or (δ ≡ 0 mod stride and |δ| ≤ window). Child et al.'s causal strided attention
///   with stride l is `{stride = l, local = l − 1, causal = true}` (the union of their two heads);
///   a dilated window of w taps with dilation r is `{stride = r, local = 0, window = w·r}`.
/// - `make_block_sparse_pattern` — BigBird (Zaheer et al. 2020, "Big Bird: Transformers for
///   Longer Sequences", ITC variant): keys and positions are cut into blocks of `b`; block row
///   `I = ⌊p_i / b⌋` lists key block `J` iff |I − J| ≤ window_blocks, or J < global_blocks, or
///   I < global_blocks (global blocks attend to and are attended by everything), or `J` is one of
///   `random_blocks` blocks drawn without replacement (Floyd's algorithm) from the remaining
///   blocks with `ra::rng(seed)`, block rows in increasing order — so the same seed gives the same
///   pattern on every platform, whatever `Lq`. The last block may be partial (`Lk % b != 0`).
/// - `make_global_pattern` — global tokens: every query lists the global keys, and a query at a
///   global position lists every key.
/// - `make_local_global_pattern` — Longformer (Beltagy et al. 2020): window ∪ global in one pass.
/// - `sparse_pattern::from_coo` — arbitrary (row, col) pairs; sorted, deduplicated, validated.
/// - `make_topk_pattern` — per query, the `k` keys with the largest scores s_ij = scale·q_i·k_j
///   (ties broken by the lower key index); cost O(Lq·Lk·d) for the scores plus O(Lk) expected per
///   query for `std::nth_element`, so it is a *data-dependent* pattern, not a way to avoid the
///   dense score computation.
/// - `make_causal_pattern`, `make_dense_pattern` — the dense references (O(Lq·Lk) entries).
/// - `pattern_union` / `operator|` and `pattern_intersection` / `operator&` combine patterns of the
///   same shape in O(nnz).
///
/// Errors: malformed input throws `invalid_argument` (or `dimension_mismatch` for size
/// disagreements, `input_too_large` beyond `max_sequence_length`) naming the row, the entry and the
/// expected value.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

class sparse_pattern;

namespace detail {
struct sparse_pattern_access;
}  // namespace detail

/// \brief Per-query sorted key lists of an `Lq × Lk` attention in CSR form (see the file comment).
/// Immutable after construction; every constructed pattern satisfies `validate()`.
class sparse_pattern {
 public:
  /// Key index type. 32 bits halve the pattern's memory traffic; `cols()` is limited to
  /// `max_pattern_cols` (and to `max_sequence_length`, 2^26 by default).
  using index_type = std::uint32_t;
  /// Row offset type (nnz may exceed 2^32).
  using offset_type = std::size_t;
  /// The largest number of keys (columns) a pattern can index.
  static constexpr std::size_t max_pattern_cols = std::numeric_limits<index_type>::max();

  /// An empty 0 × 0 pattern.
  sparse_pattern() : row_ptr_(1, 0) {}

  /// \brief Adopts CSR arrays and validates them (see `validate`).
  sparse_pattern(std::size_t rows, std::size_t cols, std::vector<offset_type> row_ptr,
                 std::vector<index_type> col_idx)
      : rows_(rows), cols_(cols), row_ptr_(std::move(row_ptr)), col_idx_(std::move(col_idx)) {
    validate();
    compute_max_row();
  }

  /// \brief From one strictly increasing key list per query (validated, not sorted for you; use
  /// `from_coo` for unsorted or duplicated input).
  [[nodiscard]] static sparse_pattern from_rows(std::size_t cols,
                                                const std::vector<std::vector<index_type>>& rows) {
    std::vector<offset_type> row_ptr(rows.size() + 1, 0);
    for (std::size_t i = 0; i < rows.size(); ++i) row_ptr[i + 1] = row_ptr[i] + rows[i].size();
    std::vector<index_type> col_idx;
    col_idx.reserve(row_ptr.back());
    for (const auto& r : rows) col_idx.insert(col_idx.end(), r.begin(), r.end());
    return sparse_pattern(rows.size(), cols, std::move(row_ptr), std::move(col_idx));
  }

  /// \brief From (row, col) pairs in any order; duplicates are merged. Throws `invalid_argument`
  /// naming the first pair outside `rows × cols`. O(nnz log nnz).
  [[nodiscard]] static sparse_pattern from_coo(
      std::size_t rows, std::size_t cols,
      std::span<const std::pair<std::size_t, std::size_t>> entries) {
    require_at_most("sparse_pattern::from_coo rows", rows, max_sequence_length);
    require_at_most("sparse_pattern::from_coo cols", cols,
                    std::min(max_sequence_length, max_pattern_cols));
    std::vector<offset_type> count(rows + 1, 0);
    for (std::size_t e = 0; e < entries.size(); ++e) {
      const auto [r, c] = entries[e];
      if (r >= rows || c >= cols) {
        std::ostringstream os;
        os << "invalid argument: sparse_pattern::from_coo entry " << e << " = (" << r << ", " << c
           << ") is outside the " << rows << " x " << cols << " pattern ("
           << (r >= rows ? "row" : "column") << " must be < " << (r >= rows ? rows : cols) << ")";
        throw invalid_argument(os.str());
      }
      ++count[r + 1];
    }
    for (std::size_t r = 0; r < rows; ++r) count[r + 1] += count[r];
    std::vector<index_type> cols_sorted(entries.size());
    {
      std::vector<offset_type> fill(count.begin(), count.end() - 1);
      for (const auto& [r, c] : entries) cols_sorted[fill[r]++] = static_cast<index_type>(c);
    }
    std::vector<offset_type> row_ptr(rows + 1, 0);
    std::vector<index_type> col_idx;
    col_idx.reserve(entries.size());
    for (std::size_t r = 0; r < rows; ++r) {
      auto first = cols_sorted.begin() + static_cast<std::ptrdiff_t>(count[r]);
      auto last = cols_sorted.begin() + static_cast<std::ptrdiff_t>(count[r + 1]);
      std::sort(first, last);
      last = std::unique(first, last);
      col_idx.insert(col_idx.end(), first, last);
      row_ptr[r + 1] = col_idx.size();
    }
    return make_unchecked(rows, cols, std::move(row_ptr), std::move(col_idx));
  }

  /// Number of query rows `Lq`.
  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  /// Number of key columns `Lk`.
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  /// Number of stored (query, key) pairs.
  [[nodiscard]] std::size_t nnz() const noexcept { return col_idx_.size(); }
  /// nnz / (Lq·Lk); 0 for an empty shape.
  [[nodiscard]] double density() const noexcept {
    return rows_ == 0 || cols_ == 0 ? 0.0
                                    : static_cast<double>(nnz()) /
                                          (static_cast<double>(rows_) * static_cast<double>(cols_));
  }
  /// The `Lq + 1` row offsets into `col_idx()`.
  [[nodiscard]] std::span<const offset_type> row_ptr() const noexcept { return row_ptr_; }
  /// The key indices of all rows, concatenated.
  [[nodiscard]] std::span<const index_type> col_idx() const noexcept { return col_idx_; }
  /// The sorted key indices listed for query `i` (`i < rows()`, unchecked).
  [[nodiscard]] std::span<const index_type> row(std::size_t i) const noexcept {
    return std::span<const index_type>(col_idx_).subspan(row_ptr_[i],
                                                         row_ptr_[i + 1] - row_ptr_[i]);
  }
  /// Number of keys listed for query `i` (unchecked).
  [[nodiscard]] std::size_t row_size(std::size_t i) const noexcept {
    return row_ptr_[i + 1] - row_ptr_[i];
  }
  /// The largest `row_size` (0 for no rows).
  [[nodiscard]] std::size_t max_row_size() const noexcept { return max_row_; }
  /// True iff key `j` is listed for query `i` (binary search; false when out of range).
  [[nodiscard]] bool contains(std::size_t i, std::size_t j) const noexcept {
    if (i >= rows_ || j >= cols_) return false;
    const auto r = row(i);
    return std::binary_search(r.begin(), r.end(), static_cast<index_type>(j));
  }

  /// \brief Checks the CSR invariants — `row_ptr` has `rows + 1` non-decreasing entries from 0 to
  /// `nnz`, every key index is `< cols`, each row is strictly increasing — and throws an `error`
  /// subclass naming the first violation (row, entry and position in `col_idx`).
  void validate() const {
    require_at_most("sparse_pattern rows", rows_, max_sequence_length);
    require_at_most("sparse_pattern cols", cols_, std::min(max_sequence_length, max_pattern_cols));
    require_dimension("sparse_pattern row_ptr.size() (rows + 1)", row_ptr_.size(), rows_ + 1);
    if (row_ptr_[0] != 0) {
      throw invalid_argument("invalid argument: sparse_pattern row_ptr[0] is " +
                             std::to_string(row_ptr_[0]) + ", expected 0");
    }
    for (std::size_t i = 0; i < rows_; ++i) {
      if (row_ptr_[i + 1] < row_ptr_[i]) {
        std::ostringstream os;
        os << "invalid argument: sparse_pattern row " << i << ": row_ptr[" << i + 1
           << "] = " << row_ptr_[i + 1] << " is less than row_ptr[" << i << "] = " << row_ptr_[i]
           << " (row_ptr must be non-decreasing)";
        throw invalid_argument(os.str());
      }
    }
    require_dimension("sparse_pattern row_ptr[rows] (must equal col_idx.size())", row_ptr_[rows_],
                      col_idx_.size());
    for (std::size_t i = 0; i < rows_; ++i) {
      for (std::size_t e = row_ptr_[i]; e < row_ptr_[i + 1]; ++e) {
        const index_type j = col_idx_[e];
        if (j >= cols_) {
          std::ostringstream os;
          os << "invalid argument: sparse_pattern row " << i << ", entry " << e - row_ptr_[i]
             << " (col_idx[" << e << "]) = " << j
             << " is out of range: expected < cols = " << cols_;
          throw invalid_argument(os.str());
        }
        if (e > row_ptr_[i] && j <= col_idx_[e - 1]) {
          std::ostringstream os;
          os << "invalid argument: sparse_pattern row " << i << ", entry " << e - row_ptr_[i]
             << " (col_idx[" << e << "]) = " << j << " is not greater than the previous entry "
             << col_idx_[e - 1] << " (each row must be sorted and duplicate-free)";
          throw invalid_argument(os.str());
        }
      }
    }
  }

  /// \brief Dense `rows × cols` boolean mask (row-major, `true` = listed) — for tests and
  /// debugging; O(Lq·Lk) memory.
  [[nodiscard]] std::vector<bool> to_dense() const {
    std::vector<bool> m(rows_ * cols_, false);
    for (std::size_t i = 0; i < rows_; ++i)
      for (const index_type j : row(i)) m[i * cols_ + j] = true;
    return m;
  }

  friend bool operator==(const sparse_pattern& a, const sparse_pattern& b) noexcept {
    return a.rows_ == b.rows_ && a.cols_ == b.cols_ && a.row_ptr_ == b.row_ptr_ &&
           a.col_idx_ == b.col_idx_;
  }

 private:
  friend struct detail::sparse_pattern_access;

  // For generators whose output is valid by construction (checked by the tests).
  static sparse_pattern make_unchecked(std::size_t rows, std::size_t cols,
                                       std::vector<offset_type> row_ptr,
                                       std::vector<index_type> col_idx) {
    sparse_pattern p;
    p.rows_ = rows;
    p.cols_ = cols;
    p.row_ptr_ = std::move(row_ptr);
    p.col_idx_ = std::move(col_idx);
    p.compute_max_row();
    return p;
  }

  void compute_max_row() noexcept {
    max_row_ = 0;
    for (std::size_t i = 0; i < rows_; ++i) max_row_ = std::max(max_row_, row_size(i));
  }

  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::vector<offset_type> row_ptr_;
  std::vector<index_type> col_idx_;
  std::size_t max_row_ = 0;
};

namespace detail {

struct sparse_pattern_access {
  static sparse_pattern make(std::size_t rows, std::size_t cols, std::vector<std::size_t> row_ptr,
                             std::vector<sparse_pattern::index_type> col_idx) {
    return sparse_pattern::make_unchecked(rows, cols, std::move(row_ptr), std::move(col_idx));
  }
};

// Row-by-row CSR construction for the generators.
class csr_builder {
 public:
  csr_builder(std::size_t rows, std::size_t cols, std::size_t reserve = 0)
      : rows_(rows), cols_(cols) {
    require_at_most("pattern rows (Lq)", rows, max_sequence_length);
    require_at_most("pattern cols (Lk)", cols,
                    std::min(max_sequence_length, sparse_pattern::max_pattern_cols));
    row_ptr_.reserve(rows + 1);
    row_ptr_.push_back(0);
    col_idx_.reserve(reserve);
  }
  void push(std::size_t j) { col_idx_.push_back(static_cast<index_type>(j)); }
  void push_range(std::size_t lo, std::size_t hi_exclusive) {
    if (hi_exclusive <= lo) return;
    const std::size_t old = col_idx_.size();
    col_idx_.resize(old + (hi_exclusive - lo));
    index_type* out = col_idx_.data() + old;
    const auto first = static_cast<index_type>(lo);
    for (std::size_t t = 0; t < hi_exclusive - lo; ++t) out[t] = first + static_cast<index_type>(t);
  }
  void end_row() { row_ptr_.push_back(col_idx_.size()); }
  sparse_pattern finish() {
    return sparse_pattern_access::make(rows_, cols_, std::move(row_ptr_), std::move(col_idx_));
  }

 private:
  using index_type = sparse_pattern::index_type;
  std::size_t rows_, cols_;
  std::vector<std::size_t> row_ptr_;
  std::vector<index_type> col_idx_;
};

// Signed position p_i = i + Lk − Lq of query i (bottom-right alignment).
[[nodiscard]] inline long long query_position(std::size_t i, std::size_t lq,
                                              std::size_t lk) noexcept {
  return static_cast<long long>(i) + static_cast<long long>(lk) - static_cast<long long>(lq);
}

// min(x, lq + lk): any distance beyond this is "unbounded" and keeps the arithmetic in range.
[[nodiscard]] inline long long clamp_distance(std::size_t x, std::size_t lq,
                                              std::size_t lk) noexcept {
  return static_cast<long long>(std::min<std::size_t>(x, lq + lk + 1));
}

inline void require_same_shape(const char* what, const sparse_pattern& a, const sparse_pattern& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    std::ostringstream os;
    os << "dimension mismatch: " << what << " of a " << a.rows() << " x " << a.cols() << " and a "
       << b.rows() << " x " << b.cols() << " pattern (shapes must agree)";
    throw dimension_mismatch(os.str());
  }
}

// Sorted, deduplicated copy of `indices`, each checked to be < limit.
inline std::vector<std::size_t> sorted_indices(const char* what, std::span<const std::size_t> idx,
                                               std::size_t limit) {
  for (std::size_t t = 0; t < idx.size(); ++t) {
    if (idx[t] >= limit) {
      std::ostringstream os;
      os << "invalid argument: " << what << "[" << t << "] = " << idx[t]
         << " is out of range: expected < " << limit;
      throw invalid_argument(os.str());
    }
  }
  std::vector<std::size_t> s(idx.begin(), idx.end());
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

}  // namespace detail

/// \brief Sliding window (local attention): query `i` lists keys `j` with |p_i − j| ≤ `window`
/// (and `j ≤ p_i` when `causal`), p_i = i + Lk − Lq. O(nnz).
[[nodiscard]] inline sparse_pattern make_window_pattern(std::size_t lq, std::size_t lk,
                                                        std::size_t window, bool causal = false) {
  const long long w = detail::clamp_distance(window, lq, lk);
  detail::csr_builder b(lq, lk,
                        lq * std::min<std::size_t>(lk, 2 * static_cast<std::size_t>(w) + 1));
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    const long long lo = std::max(0LL, p - w);
    const long long hi = std::min(static_cast<long long>(lk) - 1, causal ? p : p + w);
    if (lo <= hi) b.push_range(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi) + 1);
    b.end_row();
  }
  return b.finish();
}

/// \brief Bottom-right aligned causal pattern (`j ≤ i + Lk − Lq`); O(Lq·Lk) entries.
[[nodiscard]] inline sparse_pattern make_causal_pattern(std::size_t lq, std::size_t lk) {
  detail::csr_builder b(lq, lk);
  for (std::size_t i = 0; i < lq; ++i) {
    b.push_range(0, causal_visible_keys(i, lq, lk));
    b.end_row();
  }
  return b.finish();
}

/// \brief Every query lists every key; O(Lq·Lk) entries (a reference, not a sparse pattern).
[[nodiscard]] inline sparse_pattern make_dense_pattern(std::size_t lq, std::size_t lk) {
  detail::csr_builder b(lq, lk, lq * lk);
  for (std::size_t i = 0; i < lq; ++i) {
    b.push_range(0, lk);
    b.end_row();
  }
  return b.finish();
}

/// \brief Options of `make_strided_pattern` (Child et al. 2019; see the file comment).
struct strided_pattern_options {
  /// Key j is listed when (p_i − j) is a multiple of `stride` (≥ 1) ...
  std::size_t stride = 1;
  /// ... and |p_i − j| ≤ `window` (default: unbounded);
  std::size_t window = std::numeric_limits<std::size_t>::max();
  /// or when |p_i − j| ≤ `local` (the dense local band).
  std::size_t local = 0;
  /// Only keys j ≤ p_i.
  bool causal = false;
};

/// \brief Strided / dilated pattern: |δ| ≤ local, or δ ≡ 0 (mod stride) with |δ| ≤ window,
/// where δ = p_i − j (and δ ≥ 0 when causal). O(nnz).
[[nodiscard]] inline sparse_pattern make_strided_pattern(std::size_t lq, std::size_t lk,
                                                         const strided_pattern_options& options) {
  require_argument(options.stride >= 1, "make_strided_pattern: stride must be >= 1");
  const long long s = static_cast<long long>(std::min<std::size_t>(options.stride, lq + lk + 1));
  const long long w = detail::clamp_distance(options.window, lq, lk);
  const long long loc = detail::clamp_distance(options.local, lq, lk);
  const long long last = static_cast<long long>(lk) - 1;
  detail::csr_builder b(lq, lk);
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    // Local band [llo, lhi] (may be empty) and strided range [slo, shi].
    const long long llo = std::max(0LL, p - loc);
    const long long lhi = std::min(last, options.causal ? p : p + loc);
    const long long slo = std::max(0LL, p - w);
    const long long shi = std::min(last, options.causal ? p : p + w);
    const long long first = slo + (((p - slo) % s) + s) % s;  // first j >= slo with j ≡ p (mod s)
    if (llo > lhi) {
      for (long long j = first; j <= shi; j += s) b.push(static_cast<std::size_t>(j));
    } else {
      long long j = first;
      for (; j <= shi && j < llo; j += s) b.push(static_cast<std::size_t>(j));
      b.push_range(static_cast<std::size_t>(llo), static_cast<std::size_t>(lhi) + 1);
      while (j <= lhi) j += s;  // strided keys inside the band are already listed
      for (; j <= shi; j += s) b.push(static_cast<std::size_t>(j));
    }
    b.end_row();
  }
  return b.finish();
}

/// \brief Global tokens: every query lists the keys at `global_positions`, and a query whose
/// position p_i is global lists every key (all subject to `j ≤ p_i` when `causal`). Positions must
/// be `< lk`; duplicates are ignored. O(nnz).
[[nodiscard]] inline sparse_pattern make_global_pattern(
    std::size_t lq, std::size_t lk, std::span<const std::size_t> global_positions,
    bool causal = false) {
  const auto g =
      detail::sorted_indices("make_global_pattern: global_positions", global_positions, lk);
  detail::csr_builder b(lq, lk);
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    const std::size_t limit = causal ? causal_visible_keys(i, lq, lk) : lk;  // keys j < limit
    if (p >= 0 && std::binary_search(g.begin(), g.end(), static_cast<std::size_t>(p))) {
      b.push_range(0, limit);
    } else {
      for (const std::size_t j : g) {
        if (j >= limit) break;
        b.push(j);
      }
    }
    b.end_row();
  }
  return b.finish();
}

/// \brief Longformer local + global pattern (Beltagy et al. 2020), built in one pass: query `i`
/// lists |p_i − j| ≤ `window`, every global key, and — when p_i is global — every key (all with
/// `j ≤ p_i` when `causal`). Equal to `make_window_pattern(lq, lk, window, causal) |
/// make_global_pattern(lq, lk, global_positions, causal)`, without the intermediate patterns.
/// nnz ≤ Lq·(2w + 1 + g) + g·Lk; O(nnz).
[[nodiscard]] inline sparse_pattern make_local_global_pattern(
    std::size_t lq, std::size_t lk, std::size_t window,
    std::span<const std::size_t> global_positions, bool causal = false) {
  const auto g =
      detail::sorted_indices("make_local_global_pattern: global_positions", global_positions, lk);
  const long long w = detail::clamp_distance(window, lq, lk);
  const std::size_t band = std::min<std::size_t>(lk, 2 * static_cast<std::size_t>(w) + 1);
  detail::csr_builder b(lq, lk, lq * std::min(lk, band + g.size()) + g.size() * lk);
  for (std::size_t i = 0; i < lq; ++i) {
    const long long p = detail::query_position(i, lq, lk);
    const std::size_t limit = causal ? causal_visible_keys(i, lq, lk) : lk;  // keys j < limit
    if (p >= 0 && std::binary_search(g.begin(), g.end(), static_cast<std::size_t>(p))) {
      b.push_range(0, limit);
      b.end_row();
      continue;
    }
    const long long lo = std::max(0LL, p - w);
    const long long hi = std::min(static_cast<long long>(lk) - 1, causal ? p : p + w);
    auto it = g.begin();
    if (lo <= hi) {
      for (; it != g.end() && static_cast<long long>(*it) < lo; ++it) b.push(*it);
      b.push_range(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi) + 1);
      while (it != g.end() && static_cast<long long>(*it) <= hi) ++it;
    }
    for (; it != g.end() && *it < limit; ++it) b.push(*it);
    b.end_row();
  }
  return b.finish();
}

/// \brief Options of `make_block_sparse_pattern` (BigBird; see the file comment).
struct block_sparse_options {
  /// Block size b (≥ 1) for positions and keys.
  std::size_t block_size = 64;
  /// Key blocks J with |I − J| ≤ window_blocks are listed (BigBird's 3-block window = 1).
  std::size_t window_blocks = 1;
  /// The first `global_blocks` blocks are global (attend to and are attended by every block).
  std::size_t global_blocks = 1;
  /// Random key blocks per block row, drawn from the blocks not already listed.
  std::size_t random_blocks = 0;
  /// Seed of the random blocks (`ra::rng`; platform-independent).
  std::uint64_t seed = 0;
  /// Keep only keys j ≤ p_i; random blocks are then drawn from blocks before the window.
  bool causal = false;
};

namespace detail {

// The sorted key blocks of block row I (I >= global_blocks), including `random` drawn from the
// remaining candidates with Floyd's algorithm (r distinct draws in O(r^2) time, O(r) memory).
inline void block_row_blocks(std::size_t I, std::size_t nb, const block_sparse_options& o, rng& gen,
                             std::vector<std::size_t>& out) {
  out.clear();
  const std::size_t g = std::min(o.global_blocks, nb);
  const std::size_t wlo = I >= o.window_blocks ? I - o.window_blocks : 0;
  const std::size_t whi = std::min(nb - 1, I + std::min(o.window_blocks, nb));  // inclusive
  // Candidates: [g, a) ∪ [c, nb) with a = clamp(wlo), c = whi + 1 (none after the window if
  // causal).
  const std::size_t a = std::max(g, std::min(wlo, nb));
  const std::size_t c = o.causal ? nb : std::max(g, whi + 1);
  const std::size_t n_a = a - g, n_c = nb - c, total = n_a + n_c;
  std::vector<std::size_t> chosen;
  if (o.random_blocks > 0 && total > 0) {
    if (o.random_blocks >= total) {
      for (std::size_t t = 0; t < total; ++t) chosen.push_back(t);
    } else {
      for (std::size_t j = total - o.random_blocks; j < total; ++j) {
        const auto t = static_cast<std::size_t>(gen.below(j + 1));
        const bool seen = std::find(chosen.begin(), chosen.end(), t) != chosen.end();
        chosen.push_back(seen ? j : t);
      }
    }
    for (auto& t : chosen) t = t < n_a ? g + t : c + (t - n_a);
    std::sort(chosen.begin(), chosen.end());
  }
  // Merge: globals [0, g), randoms below the window, window [wlo, whi], randoms above.
  for (std::size_t J = 0; J < g; ++J) out.push_back(J);
  auto r = chosen.begin();
  for (; r != chosen.end() && *r < wlo; ++r) out.push_back(*r);
  for (std::size_t J = std::max(wlo, g); J <= whi; ++J) out.push_back(J);
  for (; r != chosen.end(); ++r) out.push_back(*r);
}

}  // namespace detail

/// \brief BigBird block-sparse pattern (window + global + seeded random blocks); requires
/// `lq ≤ lk` (queries are the last `lq` positions). O(nnz + (Lk/b)·r²).
[[nodiscard]] inline sparse_pattern make_block_sparse_pattern(std::size_t lq, std::size_t lk,
                                                              const block_sparse_options& options) {
  require_argument(options.block_size >= 1, "make_block_sparse_pattern: block_size must be >= 1");
  if (lq > lk) {
    std::ostringstream os;
    os << "invalid argument: make_block_sparse_pattern: lq = " << lq << " exceeds lk = " << lk
       << " (queries are the last lq of the lk positions)";
    throw invalid_argument(os.str());
  }
  detail::csr_builder b(lq, lk);
  if (lk == 0) return b.finish();
  const std::size_t bs = options.block_size;
  const std::size_t nb = (lk + bs - 1) / bs;
  const std::size_t g = std::min(options.global_blocks, nb);
  rng gen(options.seed);
  std::vector<std::size_t> blocks;
  std::size_t i = 0;
  const std::size_t first_pos = lk - lq;
  // Random draws are made for every block row I >= g in increasing order, so the pattern rows of
  // a position do not depend on lq.
  for (std::size_t I = 0; I < nb; ++I) {
    if (I < g) {
      blocks.resize(nb);
      std::iota(blocks.begin(), blocks.end(), std::size_t{0});
    } else {
      detail::block_row_blocks(I, nb, options, gen, blocks);
    }
    const std::size_t pos_end = std::min(lk, (I + 1) * bs);
    for (; i < lq && first_pos + i < pos_end; ++i) {
      const std::size_t p = first_pos + i;
      const std::size_t limit = options.causal ? p + 1 : lk;  // keys j < limit
      for (const std::size_t J : blocks) {
        const std::size_t lo = J * bs;
        if (lo >= limit) break;
        b.push_range(lo, std::min(limit, lo + bs));
      }
      b.end_row();
    }
  }
  return b.finish();
}

/// \brief Union of two patterns of the same shape (row-wise sorted merge). O(nnz_a + nnz_b).
[[nodiscard]] inline sparse_pattern pattern_union(const sparse_pattern& a,
                                                  const sparse_pattern& b) {
  detail::require_same_shape("pattern_union", a, b);
  detail::csr_builder out(a.rows(), a.cols(), a.nnz() + b.nnz());
  for (std::size_t i = 0; i < a.rows(); ++i) {
    const auto ra_ = a.row(i), rb = b.row(i);
    std::size_t x = 0, y = 0;
    while (x < ra_.size() || y < rb.size()) {
      if (y == rb.size() || (x < ra_.size() && ra_[x] < rb[y])) {
        out.push(ra_[x++]);
      } else if (x == ra_.size() || rb[y] < ra_[x]) {
        out.push(rb[y++]);
      } else {
        out.push(ra_[x]);
        ++x;
        ++y;
      }
    }
    out.end_row();
  }
  return out.finish();
}

/// \brief Intersection of two patterns of the same shape. O(nnz_a + nnz_b).
[[nodiscard]] inline sparse_pattern pattern_intersection(const sparse_pattern& a,
                                                         const sparse_pattern& b) {
  detail::require_same_shape("pattern_intersection", a, b);
  detail::csr_builder out(a.rows(), a.cols(), std::min(a.nnz(), b.nnz()));
  for (std::size_t i = 0; i < a.rows(); ++i) {
    const auto ra_ = a.row(i), rb = b.row(i);
    std::size_t x = 0, y = 0;
    while (x < ra_.size() && y < rb.size()) {
      if (ra_[x] < rb[y]) {
        ++x;
      } else if (rb[y] < ra_[x]) {
        ++y;
      } else {
        out.push(ra_[x]);
        ++x;
        ++y;
      }
    }
    out.end_row();
  }
  return out.finish();
}

/// \brief `pattern_union(a, b)`.
[[nodiscard]] inline sparse_pattern operator|(const sparse_pattern& a, const sparse_pattern& b) {
  return pattern_union(a, b);
}

/// \brief `pattern_intersection(a, b)`.
[[nodiscard]] inline sparse_pattern operator&(const sparse_pattern& a, const sparse_pattern& b) {
  return pattern_intersection(a, b);
}

/// \brief Options of `make_topk_pattern`.
template <class T>
struct topk_pattern_options {
  /// Score scale; defaults to 1/√d (only its sign affects the selection).
  std::optional<T> scale{};
  /// Only keys j ≤ p_i are candidates.
  bool causal = false;
};

namespace detail {

template <class M>
concept eigen_dense_matrix =
    std::is_base_of_v<Eigen::DenseBase<std::remove_cvref_t<M>>, std::remove_cvref_t<M>>;

// Names the first non-finite element among q row i and the key rows idx[0..n) (or all keys when
// idx is null) and throws; throws an overflow message when none is found.
template <class T>
[[noreturn]] void throw_non_finite_rows(const char* qname, const matrix_cref<T>& q, std::size_t i,
                                        const char* kname, const matrix_cref<T>& k,
                                        const sparse_pattern::index_type* idx, std::size_t n) {
  const auto d = static_cast<std::size_t>(q.cols());
  for (std::size_t c = 0; c < d; ++c) {
    const T x = q(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c));
    if (!std::isfinite(x)) throw_non_finite(qname, i, c, x);
  }
  for (std::size_t t = 0; t < n; ++t) {
    const std::size_t j = idx ? idx[t] : t;
    for (std::size_t c = 0; c < static_cast<std::size_t>(k.cols()); ++c) {
      const T x = k(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(c));
      if (!std::isfinite(x)) throw_non_finite(kname, j, c, x);
    }
  }
  throw non_finite_input(std::string("non-finite input: a score overflowed although ") + qname +
                         " and " + kname + " are finite (reduce the input magnitude or the scale)");
}

}  // namespace detail

/// \brief Top-k pattern: for each query, the `topk` keys with the largest s_ij = scale·(q_i·k_j)
/// (all candidates when fewer), ties broken by the lower key index; key lists are sorted by
/// index. Cost O(Lq·Lk·d) for the scores (xsimd `row_dots`) plus O(Lk) expected per query for
/// `std::nth_element` and O(k log k) to sort the survivors; parallel over queries. NaN/Inf in q or
/// k always throws `non_finite_input` (a NaN score has no rank).
template <class T>
[[nodiscard]] sparse_pattern make_topk_pattern(
    std::type_identity_t<matrix_cref<T>> q, std::type_identity_t<matrix_cref<T>> k,
    std::size_t topk, const std::type_identity_t<topk_pattern_options<T>>& options = {}) {
  const auto lq = static_cast<std::size_t>(q.rows()), lk = static_cast<std::size_t>(k.rows());
  const auto d = static_cast<std::size_t>(q.cols());
  require_non_empty("make_topk_pattern: q.cols() (dim)", d);
  require_at_most("make_topk_pattern: k.rows()", lk, sparse_pattern::max_pattern_cols);
  require_dimension("make_topk_pattern: k.cols() (must equal q.cols())",
                    static_cast<std::size_t>(k.cols()), d);
  require_at_most("make_topk_pattern: q.rows()", lq, max_sequence_length);
  require_at_most("make_topk_pattern: k.rows()", lk, max_sequence_length);
  require_at_most("make_topk_pattern: dim", d, max_dimension);
  const T scale = options.scale ? *options.scale : T(1) / std::sqrt(static_cast<T>(d));

  std::vector<std::size_t> row_ptr(lq + 1, 0);
  for (std::size_t i = 0; i < lq; ++i) {
    const std::size_t candidates = options.causal ? causal_visible_keys(i, lq, lk) : lk;
    row_ptr[i + 1] = row_ptr[i] + std::min(topk, candidates);
  }
  std::vector<sparse_pattern::index_type> col_idx(row_ptr[lq]);
  constexpr std::size_t rows_per_task = 16;
  parallel_for(0, (lq + rows_per_task - 1) / rows_per_task, [&](std::size_t task) {
    T* s = detail::thread_scratch<T>(std::max<std::size_t>(lk, 1));
    std::size_t* idx = detail::thread_scratch<std::size_t>(std::max<std::size_t>(lk, 1));
    const std::size_t i_end = std::min(lq, (task + 1) * rows_per_task);
    for (std::size_t i = task * rows_per_task; i < i_end; ++i) {
      const std::size_t m = options.causal ? causal_visible_keys(i, lq, lk) : lk;
      const std::size_t kk = row_ptr[i + 1] - row_ptr[i];
      if (kk == 0) continue;
      kernels::row_dots(k.data(), m, d, static_cast<std::size_t>(k.outerStride()),
                        q.data() + static_cast<std::ptrdiff_t>(i) * q.outerStride(), scale, s);
      if (!kernels::all_finite(s, m)) {
        detail::throw_non_finite_rows<T>("q", q, i, "k", k, nullptr, m);
      }
      std::iota(idx, idx + m, std::size_t{0});
      // A strict total order (indices are distinct), so the selection is deterministic.
      const auto before = [s](std::size_t a, std::size_t b) {
        return s[a] > s[b] || (s[a] == s[b] && a < b);
      };
      if (kk < m) std::nth_element(idx, idx + kk, idx + m, before);
      std::sort(idx, idx + kk);
      for (std::size_t t = 0; t < kk; ++t)
        col_idx[row_ptr[i] + t] = static_cast<sparse_pattern::index_type>(idx[t]);
    }
  });
  return detail::sparse_pattern_access::make(lq, lk, std::move(row_ptr), std::move(col_idx));
}

/// \brief `make_topk_pattern` deducing `T` from any row-major Eigen matrices.
template <class MQ, class MK>
requires detail::eigen_dense_matrix<MQ> && detail::eigen_dense_matrix<MK> &&
    std::is_same_v<typename MQ::Scalar, typename MK::Scalar>
[[nodiscard]] sparse_pattern make_topk_pattern(
    const MQ& q, const MK& k, std::size_t topk,
    const topk_pattern_options<typename MQ::Scalar>& options = {}) {
  using T = typename MQ::Scalar;
  return make_topk_pattern<T>(matrix_cref<T>(q), matrix_cref<T>(k), topk, options);
}

}  // namespace ruvector::attention
