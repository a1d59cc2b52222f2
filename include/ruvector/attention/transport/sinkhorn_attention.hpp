#pragma once
/// \file transport/sinkhorn_attention.hpp
/// \brief Sinkhorn attention ("Sinkformers", Sander, Ablin, Blondel & Peyré, AISTATS 2022): the
/// softmax kernel is replaced by its Sinkhorn normalisation, which is (close to) doubly stochastic.
///
/// For queries Q (Lq × d), keys K (Lk × d) and values V (Lk × dv):
///
///     S_ij = scale · q_i·k_j                           (scale = 1/√d by default)
///     P = diag(e^α) · exp(S) · diag(e^β),   found by alternating, in the log domain,
///         column step:  β_j = log(Lq/Lk) − LSE_i(S_ij + α_i)      (column sums → Lq/Lk)
///         row step:     α_i = −LSE_j(S_ij + β_j)                  (row sums → 1)
///     out = P · V.
///
/// The first step is a row step, so with 0 iterations P = softmax(S) row-wise (standard
/// attention); each iteration is one column step followed by one row step. The last step is
/// always a row step, so every output row is a convex combination of value rows (row sums are 1
/// up to rounding) and the column sums approach Lq/Lk (doubly stochastic when Lq = Lk) as the
/// iterations grow (Sinkhorn's theorem: the scaling converges since exp(S) > 0). The paper uses
/// a few iterations (e.g. 3, the default); a positive `tolerance` stops earlier once the column
/// L1 error Σ_j |Σ_i P_ij − Lq/Lk| is ≤ tolerance.
///
/// Conventions: the scores are formed in T (Eigen GEMM), the normalisation runs in double with
/// max-subtracted log-sum-exps (no overflow for any finite score). A key mask (`true` = visible)
/// removes keys: with Lv visible keys the column target is Lq/Lv over the visible columns and
/// masked columns get weight exactly 0; if no key is visible the output and weights are zeros
/// (DESIGN §4). There is no single-query vector API: with Lq = 1 the column constraint forces
/// uniform weights 1/Lk whatever the scores, so the mechanism is only meaningful for a batch.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"

namespace ruvector::attention {

/// \brief The result of `sinkhorn_attention::forward`.
template <class T>
struct sinkhorn_attention_result {
  row_matrix<T> output;   ///< Lq × dv, P·V
  row_matrix<T> weights;  ///< Lq × Lk plan P (only when requested; otherwise 0 × 0)
  T row_error = T(0);     ///< Σ_i |Σ_j P_ij − 1| (rounding only: the last step is a row step)
  T column_error = T(0);  ///< Σ_j visible |Σ_i P_ij − Lq/Lv|
  std::size_t iterations = 0;  ///< (column, row) steps performed after the initial row step
};

/// \brief Sinkformer attention over a batch of queries; see the file comment. Immutable and safe
/// to share across threads.
template <attention_scalar T = float>
class sinkhorn_attention {
 public:
  using value_type = T;

  /// \param dim query/key width; \param iterations (column, row) steps after the initial softmax
  /// (0 = plain softmax attention); \param scale logit scale (default 1/√dim); \param tolerance
  /// stop early when the column L1 error is ≤ tolerance (0 = always run `iterations`);
  /// \param check_finite throw `non_finite_input` on NaN/Inf in Q, K or V.
  explicit sinkhorn_attention(std::size_t dim, std::size_t iterations = 3,
                              std::optional<T> scale = std::nullopt, T tolerance = T(0),
                              bool check_finite = true)
      : dim_(dim),
        iterations_(iterations),
        scale_(scale ? *scale : T(1) / std::sqrt(static_cast<T>(dim == 0 ? 1 : dim))),
        tolerance_(tolerance),
        check_finite_(check_finite) {
    require_config(dim > 0, "sinkhorn_attention: dim must be > 0");
    require_at_most("dim", dim, max_dimension);
    require_config(std::isfinite(scale_), "sinkhorn_attention: scale must be finite");
    require_config(tolerance >= T(0) && std::isfinite(tolerance),
                   "sinkhorn_attention: tolerance must be finite and >= 0");
  }

  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] std::size_t iterations() const noexcept { return iterations_; }
  [[nodiscard]] T scale() const noexcept { return scale_; }
  [[nodiscard]] T tolerance() const noexcept { return tolerance_; }

  /// \brief Output P·V for queries (rows of `queries`); `key_mask` (empty = all visible) holds
  /// `true` for visible keys; `return_weights` also returns P.
  [[nodiscard]] sinkhorn_attention_result<T> forward(const matrix_cref<T>& queries,
                                                     const matrix_cref<T>& keys,
                                                     const matrix_cref<T>& values,
                                                     std::span<const bool> key_mask = {},
                                                     bool return_weights = false) const {
    const auto lq = static_cast<std::size_t>(queries.rows());
    const auto lk = static_cast<std::size_t>(keys.rows());
    const auto dv = static_cast<std::size_t>(values.cols());
    require_non_empty("queries", lq);
    require_non_empty("keys", lk);
    require_at_most("queries.rows()", lq, max_sequence_length);
    require_at_most("keys.rows()", lk, max_sequence_length);
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), dim_);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), dim_);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), lk);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), lk);
    if (check_finite_) {
      require_finite("queries", queries.data(), lq, dim_,
                     static_cast<std::ptrdiff_t>(queries.outerStride()));
      require_finite("keys", keys.data(), lk, dim_,
                     static_cast<std::ptrdiff_t>(keys.outerStride()));
      require_finite("values", values.data(), lk, dv,
                     static_cast<std::ptrdiff_t>(values.outerStride()));
    }
    const auto idx = [](std::size_t x) { return static_cast<Eigen::Index>(x); };

    std::vector<std::size_t> visible;
    visible.reserve(lk);
    for (std::size_t j = 0; j < lk; ++j)
      if (key_mask.empty() || key_mask[j]) visible.push_back(j);
    const std::size_t lv = visible.size();

    sinkhorn_attention_result<T> r;
    row_matrix<T> p = row_matrix<T>::Zero(idx(lq), idx(lk));
    if (lv > 0) {
      const row_matrix<T> scores = scale_ * (queries * keys.transpose());
      using array = Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      array s(idx(lq), idx(lv));
      for (std::size_t i = 0; i < lq; ++i)
        for (std::size_t c = 0; c < lv; ++c)
          s(idx(i), idx(c)) = static_cast<double>(scores(idx(i), idx(visible[c])));
      Eigen::ArrayXd alpha = Eigen::ArrayXd::Zero(idx(lq));
      Eigen::ArrayXd beta = Eigen::ArrayXd::Zero(idx(lv));
      const double log_col_target = std::log(static_cast<double>(lq) / static_cast<double>(lv));
      const double col_target = static_cast<double>(lq) / static_cast<double>(lv);

      // Row step: α_i = −LSE_j(S_ij + β_j).
      const auto row_step = [&] {
        const array t = s.rowwise() + beta.transpose();
        const Eigen::ArrayXd mx = t.rowwise().maxCoeff();
        alpha = -(mx + (t.colwise() - mx).exp().rowwise().sum().log());
      };
      // Column step: β_j = log(Lq/Lv) − LSE_i(S_ij + α_i).
      const auto col_step = [&] {
        const array t = s.colwise() + alpha;
        const Eigen::Array<double, 1, Eigen::Dynamic> mx = t.colwise().maxCoeff();
        beta = (log_col_target - (mx + (t.rowwise() - mx).exp().colwise().sum().log())).transpose();
      };
      const auto plan = [&] {
        return array(((s.colwise() + alpha).rowwise() + beta.transpose()).exp());
      };
      const auto col_error = [&](const array& pl) {
        return (pl.colwise().sum() - col_target).abs().sum();
      };

      row_step();
      for (std::size_t it = 0; it < iterations_; ++it) {
        if (tolerance_ > T(0) && col_error(plan()) <= static_cast<double>(tolerance_)) break;
        col_step();
        row_step();
        ++r.iterations;
      }
      const array pl = plan();
      r.column_error = static_cast<T>(col_error(pl));
      r.row_error = static_cast<T>((pl.rowwise().sum() - 1.0).abs().sum());
      for (std::size_t i = 0; i < lq; ++i)
        for (std::size_t c = 0; c < lv; ++c)
          p(idx(i), idx(visible[c])) = static_cast<T>(pl(idx(i), idx(c)));
      r.output.noalias() = p * values;
    } else {
      r.output = row_matrix<T>::Zero(idx(lq), idx(dv));
    }
    if (return_weights) r.weights = std::move(p);
    return r;
  }

  /// \brief Output rows only (`forward(...).output`).
  [[nodiscard]] row_matrix<T> compute_batch(const matrix_cref<T>& queries,
                                            const matrix_cref<T>& keys,
                                            const matrix_cref<T>& values,
                                            std::span<const bool> key_mask = {}) const {
    return forward(queries, keys, values, key_mask, false).output;
  }

 private:
  std::size_t dim_;
  std::size_t iterations_;
  T scale_;
  T tolerance_;
  bool check_finite_;
};

}  // namespace ruvector::attention
