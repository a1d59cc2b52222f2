#pragma once
/// \file sparse/linear.hpp
/// \brief Linear (kernelised) attention: Katharopoulos et al. 2020 and FAVOR+ (Choromanski et al.
/// 2021), with a reusable, mergeable key state.
///
/// Kernelised attention replaces exp(q·k/√d) by a product of feature maps φ(q)ᵀφ(k) ≥ 0:
///
///     out_i = Σ_j φ(q_i)ᵀφ(k_j) v_j / Σ_j φ(q_i)ᵀφ(k_j) = φ(q_i)ᵀ S / (φ(q_i)ᵀ z),
///     S = Σ_j φ(k_j) v_jᵀ   (m × dv),      z = Σ_j φ(k_j)   (m),
///
/// so the keys are summarised once in (S, z) — the *key state* — and each query then costs
/// O(m·(d + dv)) whatever the number of keys n (building the state costs O(n·m·(d + dv))).
///
/// Feature maps (`feature_map`):
/// - `elu_plus_one` — Katharopoulos, Vyas, Pappas, Fleuret 2020, "Transformers are RNNs: Fast
///   Autoregressive Transformers with Linear Attention": φ(x) = elu(x) + 1, i.e. x + 1 for x > 0
///   and eˣ for x ≤ 0, applied per coordinate (m = d, no 1/√d scale). This defines a *different*
///   kernel from softmax; it is not an approximation of softmax attention.
/// - `favor_plus` — Choromanski et al. 2021, "Rethinking Attention with Performers" (FAVOR+):
///   positive orthogonal random features
///
///       φ(x)_i = exp(w_iᵀx' − ‖x'‖²/2) / √m,    x' = x · d^{-1/4},    i = 1..m,
///
///   so that E_w[φ(q)ᵀφ(k)] = exp(q'ᵀk') = exp(qᵀk/√d): the softmax kernel with the standard 1/√d
///   scale. Each kernel entry is estimated without bias, so FAVOR+ attention (a ratio of such
///   estimates, with O(1/m) bias) is an *approximation* of softmax attention whose error falls
///   like O(1/√m) as m grows; it is not exact for any finite m, and its variance grows like
///   e^{‖q'+k'‖²}/m, so it suits moderate query/key norms.
///   The w_i are orthogonal random features: blocks of d mutually orthogonal directions (rows of
///   the Q factor of a d × d standard Gaussian matrix, by Gram–Schmidt applied twice, in double),
///   each row rescaled to an independent norm drawn from the chi distribution with d degrees of
///   freedom (the norm of a fresh d-dim standard Gaussian vector). Each w_i is therefore
///   marginally N(0, I_d) (which makes the estimate unbiased) while rows within a block are exactly
///   orthogonal (which lowers its variance). The last block is truncated to m mod d rows. Draw
///   order from `rng(seed)` (core/rng.hpp, bit-reproducible on every platform), per block: d·d
///   normals (row-major G), then d·d normals (d chi norms of d squares each). Every block draws
///   in full, so the features for m₁ < m₂ and the same seed are the first m₁ rows of those for
///   m₂. `redraw(seed)` replaces the features.
///   (The Rust original drew w ~ N(0, I/d) yet subtracted ‖x‖²/2: its kernel is
///   ∝ exp(qᵀk/d − (1 − 1/d)‖k‖²/2), biased toward small-norm keys. Not copied.)
///
/// Stabilisers (FAVOR+; exact, they cancel in the ratio): write ℓ_i(x) = log φ(x)_i. The state
/// keeps a per-feature log-scale c_i = max over the keys added of ℓ_i(k_j) and stores
///     S̃_i = Σ_j e^{ℓ_i(k_j) − c_i} v_j,   z̃_i = Σ_j e^{ℓ_i(k_j) − c_i},   so S_i = e^{c_i} S̃_i.
/// When a new key raises c_i, row i of S̃ and z̃ is rescaled by e^{c_old − c_new} (as in online
/// softmax); two states merge the same way. A query uses C = max_i (ℓ_i(q) + c_i) and
/// φ̃_i = e^{ℓ_i(q) + c_i − C}; then φ̃ᵀS̃ = e^{−C}·φ(q)ᵀS and φ̃ᵀz̃ = e^{−C}·φ(q)ᵀz, so the common
/// factor e^{−C} cancels in the ratio. Every exponent is ≤ 0 (no overflow), the largest φ̃_i is 1
/// and every z̃_i ≥ 1 (its maximal key contributes e⁰), so the denominator is ≥ 1: it can neither
/// overflow nor underflow, whatever the magnitude of q and k. (C is exactly the max over i, j of
/// log(φ(q)_i φ(k_j)_i), the optimal shift.) The single-query `compute` evaluates the same ratio
/// as a softmax over the keys of log(φ(q)ᵀφ(k_j)) with the online-softmax kernel
/// (kernels/softmax.hpp), which is stable for the same reason.
///
/// Denominator guard (elu+1): φ > 0 mathematically, so φ(q)ᵀz > 0, but eˣ underflows for
/// x ≲ −87 (float) / −708 (double) and a denominator can then be 0 or subnormal. A query whose
/// denominator is not > `std::numeric_limits<T>::min()` (the smallest normal) outputs zeros. The
/// same rule gives zeros for a query that sees no key (empty state, every key masked, or causal
/// with nothing visible) — never NaN — for both feature maps.
///
/// Masking conventions (DESIGN.md §4): a key mask holds `true` for visible keys; masked keys are
/// excluded from S and z. Causal masking is bottom-right aligned: query i of Lq sees keys
/// j ≤ i + Lk − Lq; `forward` computes it with prefix sums (the recurrent form: the state is
/// advanced key by key, each query reads it), costing O((Lq + Lk)·m·(d + dv)). The single-query
/// vector API treats its query as the last of the sequence (Lq = 1), which sees every key, so the
/// `causal` flag does not change `compute`.
///
/// Validation: shapes (`dimension_mismatch` naming the argument), sizes (`input_too_large`),
/// configuration (`invalid_config`: dim = 0, m = 0 for FAVOR+, m ∉ {0, dim} for elu+1), and with
/// `check_finite` (default) NaN/±Inf in queries, keys or values → `non_finite_input` naming the
/// first bad element (masked-out keys included); finite inputs that overflow (elu+1 with ~1e38
/// values) also give `non_finite_input`, and a failing `add` or `merge` leaves the state
/// unchanged. `check_finite = false` skips both checks (garbage in, garbage out).
///
/// Thread safety: `linear_attention` and `linear_key_state` are safe to use concurrently through
/// their const members; `redraw`, `add`, `merge` and `clear` mutate. A state shares (immutably)
/// the feature map it was built with: redrawing the mechanism afterwards does not affect it.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/detail/scratch.hpp"
#include "ruvector/attention/kernels/gemv.hpp"
#include "ruvector/attention/kernels/reduce.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

/// \brief The feature map φ of linear attention.
enum class feature_map {
  elu_plus_one,  ///< φ(x) = elu(x) + 1 (Katharopoulos et al. 2020); m = d; a different kernel
  favor_plus     ///< positive orthogonal random features (FAVOR+); approximates softmax
};

/// \brief Configuration of `linear_attention`.
struct linear_attention_config {
  std::size_t dim = 0;                             ///< query/key dimension d (> 0)
  std::size_t num_features = 0;                    ///< m: > 0 for FAVOR+; 0 (= d) or d for elu+1
  feature_map kernel = feature_map::elu_plus_one;  ///< the feature map
  std::uint64_t seed = 0x5eed;                     ///< seed of the FAVOR+ random features
  bool causal = false;       ///< default causal flag of `forward` (bottom-right aligned)
  bool check_finite = true;  ///< throw `non_finite_input` on NaN/Inf inputs
};

template <class T>
class linear_key_state;
template <class T>
class linear_attention;

namespace detail {

/// Draws the FAVOR+ orthogonal random features (m × d, double); see the file comment.
[[nodiscard]] inline Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>
draw_orthogonal_features(std::size_t d, std::size_t m, std::uint64_t seed) {
  using dmatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto D = static_cast<Eigen::Index>(d);
  dmatrix w(static_cast<Eigen::Index>(m), D);
  rng gen(seed);
  dmatrix g(D, D);
  for (std::size_t r0 = 0; r0 < m; r0 += d) {
    for (Eigen::Index i = 0; i < D; ++i)
      for (Eigen::Index c = 0; c < D; ++c) g(i, c) = gen.normal();
    // Gram–Schmidt, applied twice per row ("twice is enough", Giraud et al. 2005): orthogonal to
    // ~1e-15 whatever the conditioning of g. A residual that vanishes (probability 0) is redrawn.
    for (Eigen::Index i = 0; i < D; ++i) {
      for (;;) {
        for (int pass = 0; pass < 2; ++pass)
          for (Eigen::Index p = 0; p < i; ++p) g.row(i) -= g.row(i).dot(g.row(p)) * g.row(p);
        const double norm = g.row(i).norm();
        if (norm > 1e-8) {
          g.row(i) /= norm;
          break;
        }
        for (Eigen::Index c = 0; c < D; ++c) g(i, c) = gen.normal();
      }
    }
    for (Eigen::Index i = 0; i < D; ++i) {
      double sq = 0.0;
      for (std::size_t t = 0; t < d; ++t) {
        const double x = gen.normal();
        sq += x * x;
      }
      const auto r = static_cast<Eigen::Index>(r0) + i;
      if (r < static_cast<Eigen::Index>(m)) w.row(r) = g.row(i) * std::sqrt(sq);
    }
  }
  return w;
}

/// Immutable feature-map parameters, shared by a mechanism and the key states it builds.
template <class T>
struct linear_feature_params {
  feature_map kind = feature_map::elu_plus_one;
  std::size_t dim = 0;
  std::size_t m = 0;  // number of features (= dim for elu+1)
  std::uint64_t seed = 0;
  bool check_finite = true;
  row_matrix<T> w;    // [m, dim] random features (FAVOR+ only)
  T x_scale = T(1);   // d^{-1/4}
  T half_sq = T(0);   // x_scale² / 2 = 1 / (2√d)
  T log_norm = T(0);  // −½ log m (the 1/√m factor, in the log domain)

  [[nodiscard]] bool favor() const noexcept { return kind == feature_map::favor_plus; }

  [[nodiscard]] bool same_map(const linear_feature_params& o) const {
    if (this == &o) return true;
    return kind == o.kind && dim == o.dim && m == o.m && (!favor() || w == o.w);
  }

  // out[r, :] = ℓ(x_r) = log φ(x_r) (FAVOR+) or φ(x_r) = elu(x_r) + 1 (elu+1), for the rows of x.
  void rows(const matrix_cref<T>& x, matrix_ref<T> out) const {
    if (favor()) {
      out.noalias() = x_scale * (x * w.transpose());  // scalar on the left: folded into the GEMM
      for (Eigen::Index r = 0; r < x.rows(); ++r)
        out.row(r).array() -= half_sq * x.row(r).squaredNorm() - log_norm;
    } else {
      out = (x.array() > T(0)).select(x.array() + T(1), x.array().exp());
    }
  }

  // The same for one vector (the xsimd row_dots kernel for W·x).
  void vec(const T* x, T* out) const noexcept {
    if (favor()) {
      kernels::row_dots(w.data(), m, dim, dim, x, x_scale, out);
      const T shift = half_sq * kernels::dot(x, x, dim) - log_norm;
      for (std::size_t i = 0; i < m; ++i) out[i] -= shift;
    } else {
      for (std::size_t c = 0; c < dim; ++c) out[c] = x[c] > T(0) ? x[c] + T(1) : std::exp(x[c]);
    }
  }
};

template <class T>
[[nodiscard]] std::shared_ptr<const linear_feature_params<T>> make_linear_feature_params(
    const linear_attention_config& cfg) {
  require_config(cfg.dim > 0, "linear_attention: dim must be > 0");
  require_at_most("dim", cfg.dim, max_dimension);
  auto p = std::make_shared<linear_feature_params<T>>();
  p->kind = cfg.kernel;
  p->dim = cfg.dim;
  p->seed = cfg.seed;
  p->check_finite = cfg.check_finite;
  if (cfg.kernel == feature_map::favor_plus) {
    require_config(cfg.num_features > 0,
                   "linear_attention: num_features (m) must be > 0 for feature_map::favor_plus");
    require_at_most("num_features", cfg.num_features, max_dimension);
    p->m = cfg.num_features;
    p->w = draw_orthogonal_features(cfg.dim, cfg.num_features, cfg.seed).cast<T>();
    const double d = static_cast<double>(cfg.dim);
    p->x_scale = static_cast<T>(std::pow(d, -0.25));
    p->half_sq = static_cast<T>(0.5 / std::sqrt(d));
    p->log_norm = static_cast<T>(-0.5 * std::log(static_cast<double>(cfg.num_features)));
  } else {
    if (cfg.num_features != 0 && cfg.num_features != cfg.dim) {
      std::ostringstream os;
      os << "linear_attention: num_features is " << cfg.num_features
         << ", expected 0 or dim = " << cfg.dim << " for feature_map::elu_plus_one (m = d)";
      require_config(false, os.str());
    }
    p->m = cfg.dim;
  }
  return p;
}

template <class T>
void require_finite_matrix(const char* what, const matrix_cref<T>& x) {
  require_finite(what, x.data(), static_cast<std::size_t>(x.rows()),
                 static_cast<std::size_t>(x.cols()), x.outerStride());
}

[[noreturn]] inline void throw_linear_overflow(const char* what) {
  throw non_finite_input(std::string("non-finite input: ") + what +
                         " overflowed although the inputs are finite (reduce their magnitude)");
}

inline constexpr std::size_t linear_key_chunk = 256;   // keys per GEMM when building a state
inline constexpr std::size_t linear_query_block = 64;  // queries per GEMM / parallel task

}  // namespace detail

/// \brief The key state of linear attention: S = Σ_j φ(k_j) v_jᵀ (m × dv) and z = Σ_j φ(k_j) (m)
/// over the keys added so far, stored with a per-feature log-scale (see the file comment).
/// Built once — `linear_attention::build_state`, or `make_state` then `add` — and queried any
/// number of times at O(m·(d + dv)) per query whatever the number of keys. States over disjoint
/// key sets `merge` exactly (S and z add). Obtain states from a `linear_attention`.
template <class T = float>
class linear_key_state {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// Query/key dimension d.
  [[nodiscard]] std::size_t dim() const noexcept { return map_->dim; }
  /// Value dimension dv.
  [[nodiscard]] std::size_t value_dim() const noexcept { return dv_; }
  /// Number of features m.
  [[nodiscard]] std::size_t num_features() const noexcept { return map_->m; }
  /// The feature map the state was built with.
  [[nodiscard]] feature_map kernel() const noexcept { return map_->kind; }
  /// Number of (visible) keys accumulated.
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  /// True when no key has been accumulated (queries then output zeros).
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

  /// Stored S̃ (m × dv); the true S = diag(e^{log_scale()}) · s().
  [[nodiscard]] const row_matrix<T>& s() const noexcept { return s_; }
  /// Stored z̃ (m); the true z = e^{log_scale()} ⊙ z().
  [[nodiscard]] const vector_type& z() const noexcept { return z_; }
  /// Per-feature log-scale c (FAVOR+: max_j log φ_i(k_j), −inf while empty; elu+1: 0).
  [[nodiscard]] const vector_type& log_scale() const noexcept { return c_; }

  /// \brief Adds keys (rows of `keys`, width d) and their values (rows of `values`, width dv);
  /// keys with `key_mask[j] == false` are skipped. Strong guarantee: on error nothing changes.
  void add(const matrix_cref<T>& keys, const matrix_cref<T>& values,
           std::span<const bool> key_mask = {}) {
    validate_kv(keys, values, key_mask);
    linear_key_state part(map_, dv_);
    part.accumulate(keys, values, key_mask);
    part.require_finite_state();
    merge(part);
  }

  /// \brief Adds one key and its value.
  void add(std::span<const T> key, std::span<const T> value) {
    require_dimension("key.size()", key.size(), map_->dim);
    require_dimension("value.size() (must equal the state's value_dim())", value.size(), dv_);
    add(matrix_view(key.data(), 1, key.size()), matrix_view(value.data(), 1, value.size()));
  }

  /// \brief Merges the state of another key set (built with the same feature map and value
  /// dimension): afterwards this state equals one built over both key sets. Exact up to
  /// rounding, associative and commutative. Strong guarantee.
  void merge(const linear_key_state& other) {
    if (!map_->same_map(*other.map_)) {
      throw invalid_argument(
          "invalid argument: linear_key_state::merge: other was built with a different feature "
          "map (kernel, dim, num_features or random features differ; same config and seed "
          "required)");
    }
    require_dimension("other.value_dim()", other.dv_, dv_);
    if (other.count_ == 0) return;
    if (count_ == 0) {
      s_ = other.s_;
      z_ = other.z_;
      c_ = other.c_;
      count_ = other.count_;
      return;
    }
    row_matrix<T> s;
    vector_type z, c;
    if (map_->favor()) {
      c = c_.cwiseMax(other.c_);
      const vector_type a = (c_ - c).array().exp().matrix();
      const vector_type b = (other.c_ - c).array().exp().matrix();
      s = a.asDiagonal() * s_;
      s += b.asDiagonal() * other.s_;
      z = a.cwiseProduct(z_) + b.cwiseProduct(other.z_);
    } else {
      c = c_;
      s = s_ + other.s_;
      z = z_ + other.z_;
    }
    if (map_->check_finite && (!kernels::all_finite(s.data(), static_cast<std::size_t>(s.size())) ||
                               !kernels::all_finite(z.data(), static_cast<std::size_t>(z.size()))))
      detail::throw_linear_overflow("the merged key state");
    s_ = std::move(s);
    z_ = std::move(z);
    c_ = std::move(c);
    count_ += other.count_;
  }

  /// \brief Removes every key (keeps the feature map and value dimension).
  void clear() {
    s_.setZero();
    z_.setZero();
    c_.setConstant(map_->favor() ? -std::numeric_limits<T>::infinity() : T(0));
    count_ = 0;
  }

  /// \brief out = φ(q)ᵀS / φ(q)ᵀz (zeros if no key was added); O(m·(d + dv)), no allocation
  /// after the first call on a thread.
  void query(std::span<const T> q, std::span<T> out) const {
    require_dimension("query.size()", q.size(), map_->dim);
    require_dimension("out.size() (must equal the state's value_dim())", out.size(), dv_);
    if (map_->check_finite) require_finite<T>("query", q);
    T* f = detail::thread_scratch<T, 20>(map_->m);
    map_->vec(q.data(), f);
    finish_query(f, out.data());
    if (map_->check_finite && !kernels::all_finite(out.data(), dv_))
      detail::throw_linear_overflow("the output");
  }

  /// \brief The output for one query (allocating convenience overload).
  [[nodiscard]] std::vector<T> query(std::span<const T> q) const {
    std::vector<T> out(dv_);
    query(q, std::span<T>(out));
    return out;
  }

  /// \brief Outputs for every row of `queries` ([Lq, d]) into `out` ([Lq, dv]) with Eigen GEMMs
  /// (φ(Q)·S), in parallel over blocks of 64 queries.
  void query_batch_into(const matrix_cref<T>& queries, matrix_ref<T> out) const {
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), map_->dim);
    require_dimension("out.rows() (must equal queries.rows())",
                      static_cast<std::size_t>(out.rows()),
                      static_cast<std::size_t>(queries.rows()));
    require_dimension("out.cols() (must equal the state's value_dim())",
                      static_cast<std::size_t>(out.cols()), dv_);
    if (map_->check_finite) detail::require_finite_matrix("queries", queries);
    query_rows(queries, out);
    check_output(out);
  }

  /// \brief Outputs for every row of `queries` ([Lq, d]) as an [Lq, dv] matrix.
  [[nodiscard]] row_matrix<T> query_batch(const matrix_cref<T>& queries) const {
    row_matrix<T> out(queries.rows(), static_cast<Eigen::Index>(dv_));
    query_batch_into(queries, out);
    return out;
  }

 private:
  friend class linear_attention<T>;

  linear_key_state(std::shared_ptr<const detail::linear_feature_params<T>> map, std::size_t dv)
      : map_(std::move(map)),
        dv_(dv),
        s_(row_matrix<T>::Zero(static_cast<Eigen::Index>(map_->m), static_cast<Eigen::Index>(dv))),
        z_(vector_type::Zero(static_cast<Eigen::Index>(map_->m))),
        c_(vector_type::Constant(static_cast<Eigen::Index>(map_->m),
                                 map_->favor() ? -std::numeric_limits<T>::infinity() : T(0))) {}

  void validate_kv(const matrix_cref<T>& keys, const matrix_cref<T>& values,
                   std::span<const bool> key_mask) const {
    const auto n = static_cast<std::size_t>(keys.rows());
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), map_->dim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("values.cols() (must equal the state's value_dim())",
                      static_cast<std::size_t>(values.cols()), dv_);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (map_->check_finite) {
      detail::require_finite_matrix("keys", keys);
      detail::require_finite_matrix("values", values);
    }
  }

  void require_finite_state() const {
    if (!map_->check_finite) return;
    if (!kernels::all_finite(s_.data(), static_cast<std::size_t>(s_.size())) ||
        !kernels::all_finite(z_.data(), static_cast<std::size_t>(z_.size())))
      detail::throw_linear_overflow("the key state");
  }

  // Accumulates (validated) keys/values in chunks of `linear_key_chunk` rows with GEMMs.
  void accumulate(const matrix_cref<T>& keys, const matrix_cref<T>& values,
                  std::span<const bool> key_mask, std::size_t begin = 0,
                  std::size_t end = std::numeric_limits<std::size_t>::max()) {
    end = std::min(end, static_cast<std::size_t>(keys.rows()));
    if (begin >= end) return;
    const auto m = static_cast<Eigen::Index>(map_->m);
    row_matrix<T> f(static_cast<Eigen::Index>(std::min(detail::linear_key_chunk, end - begin)), m);
    for (std::size_t j0 = begin; j0 < end; j0 += detail::linear_key_chunk) {
      const std::size_t rows = std::min(detail::linear_key_chunk, end - j0);
      const auto r0 = static_cast<Eigen::Index>(j0), nr = static_cast<Eigen::Index>(rows);
      auto fb = f.topRows(nr);
      map_->rows(keys.middleRows(r0, nr), fb);
      std::size_t visible = rows;
      if (!key_mask.empty()) {
        // Hidden keys: log-feature −inf (FAVOR+) or feature 0 (elu+1) contributes nothing.
        const T hidden = map_->favor() ? -std::numeric_limits<T>::infinity() : T(0);
        for (std::size_t r = 0; r < rows; ++r)
          if (!key_mask[j0 + r]) {
            fb.row(static_cast<Eigen::Index>(r)).setConstant(hidden);
            --visible;
          }
      }
      if (visible == 0) continue;
      if (map_->favor()) {
        const vector_type chunk_max = fb.colwise().maxCoeff().transpose();
        raise_scale(chunk_max);
        fb.rowwise() -= c_.transpose();
        fb.array() = fb.array().exp();
      }
      s_.noalias() += fb.transpose() * values.middleRows(r0, nr);
      z_.noalias() += fb.colwise().sum().transpose();
      count_ += visible;
    }
  }

  // Adds one key given its features f (ℓ(k) for FAVOR+, φ(k) for elu+1; overwritten).
  void accumulate_row(T* f, const T* v) {
    const auto m = static_cast<Eigen::Index>(map_->m);
    Eigen::Map<vector_type> fv(f, m);
    if (map_->favor()) {
      raise_scale(fv);
      fv = (fv - c_).array().exp().matrix();
    }
    const Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> vr(v,
                                                                   static_cast<Eigen::Index>(dv_));
    s_.noalias() += fv * vr;
    z_ += fv;
    ++count_;
  }

  // c ← max(c, cand), rescaling the rows of S̃ and z̃ whose scale rises (FAVOR+ only).
  void raise_scale(const Eigen::Ref<const vector_type>& cand) {
    for (Eigen::Index i = 0; i < c_.size(); ++i) {
      if (cand(i) > c_(i)) {
        const T factor = std::exp(c_(i) - cand(i));  // 0 for an empty row (c = −inf)
        s_.row(i) *= factor;
        z_(i) *= factor;
        c_(i) = cand(i);
      }
    }
  }

  // f holds the query's ℓ(q) (FAVOR+) or φ(q) (elu+1); writes the output (dv values).
  void finish_query(T* f, T* out) const noexcept {
    const std::size_t m = map_->m;
    if (count_ == 0) {
      std::fill(out, out + dv_, T(0));
      return;
    }
    if (map_->favor()) {
      for (std::size_t i = 0; i < m; ++i) f[i] += c_(static_cast<Eigen::Index>(i));
      kernels::exp_shift_sum(f, m, kernels::max(f, m));
    }
    const T den = kernels::dot(f, z_.data(), m);
    if (!(den > std::numeric_limits<T>::min())) {
      std::fill(out, out + dv_, T(0));
      return;
    }
    kernels::weighted_row_sum(f, m, s_.data(), dv_, dv_, T(0), out);
    kernels::scale(T(1) / den, out, dv_);
  }

  // Batched queries (validated): Φ(Q_block)·S̃ with one GEMM per block of 64 queries.
  void query_rows(const matrix_cref<T>& queries, matrix_ref<T> out) const {
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    if (lq == 0 || dv_ == 0) return;
    if (count_ == 0) {
      out.setZero();
      return;
    }
    const std::size_t block = detail::linear_query_block;
    const auto m = static_cast<Eigen::Index>(map_->m);
    parallel_for(0, (lq + block - 1) / block, [&](std::size_t b) {
      const std::size_t i0 = b * block, rows = std::min(block, lq - i0);
      const auto r0 = static_cast<Eigen::Index>(i0), nr = static_cast<Eigen::Index>(rows);
      row_matrix<T> f(nr, m);
      map_->rows(queries.middleRows(r0, nr), f);
      if (map_->favor()) {
        f.rowwise() += c_.transpose();
        for (Eigen::Index r = 0; r < nr; ++r)
          kernels::exp_shift_sum(&f(r, 0), map_->m, kernels::max(&f(r, 0), map_->m));
      }
      // Into an aligned temporary (Eigen rounds identically whatever the caller's alignment).
      row_matrix<T> num(nr, static_cast<Eigen::Index>(dv_));
      num.noalias() = f * s_;
      const vector_type den = f * z_;
      for (Eigen::Index r = 0; r < nr; ++r) {
        if (den(r) > std::numeric_limits<T>::min()) {
          out.row(r0 + r) = num.row(r) / den(r);
        } else {
          out.row(r0 + r).setZero();
        }
      }
    });
  }

  void check_output(const matrix_cref<T>& out) const {
    if (!map_->check_finite) return;
    for (Eigen::Index r = 0; r < out.rows(); ++r)
      if (!kernels::all_finite(out.data() + r * out.outerStride(), dv_))
        detail::throw_linear_overflow("the output");
  }

  std::shared_ptr<const detail::linear_feature_params<T>> map_;
  std::size_t dv_ = 0;
  row_matrix<T> s_;
  vector_type z_;
  vector_type c_;
  std::size_t count_ = 0;
};

/// \brief Linear attention (elu+1 or FAVOR+; see the file comment) at the vector API
/// (`compute`, `compute_with_mask`), the sequence API (`forward`) and through reusable key states
/// (`build_state`). Models `masked_attention_mechanism`.
template <class T = float>
class linear_attention {
 public:
  using value_type = T;

  /// \brief Validates `config` (`invalid_config` / `input_too_large`) and, for FAVOR+, draws the
  /// random features from `config.seed`.
  explicit linear_attention(const linear_attention_config& config)
      : config_(config), map_(detail::make_linear_feature_params<T>(config)) {}

  /// The configuration (with the current seed).
  [[nodiscard]] const linear_attention_config& config() const noexcept { return config_; }
  /// Query/key dimension d.
  [[nodiscard]] std::size_t dim() const noexcept { return map_->dim; }
  /// Number of features m (d for elu+1).
  [[nodiscard]] std::size_t num_features() const noexcept { return map_->m; }
  /// The feature map.
  [[nodiscard]] feature_map kernel() const noexcept { return map_->kind; }
  /// The seed of the current random features.
  [[nodiscard]] std::uint64_t seed() const noexcept { return map_->seed; }
  /// The default causal flag of `forward`.
  [[nodiscard]] bool causal() const noexcept { return config_.causal; }
  /// The FAVOR+ random features w_i as rows (m × d); empty for elu+1.
  [[nodiscard]] const row_matrix<T>& random_features() const noexcept { return map_->w; }

  /// \brief Replaces the FAVOR+ random features by those of `seed` (elu+1: only records the
  /// seed). States built earlier keep their own features.
  void redraw(std::uint64_t seed) {
    linear_attention_config c = config_;
    c.seed = seed;
    map_ = detail::make_linear_feature_params<T>(c);
    config_ = c;
  }

  /// \brief out = φ(x), the unstabilised feature vector (m values). For FAVOR+ φ(q)ᵀφ(k)
  /// estimates exp(qᵀk/√d); entries overflow for very large ‖x‖ (the attention paths do not).
  void map_features(std::span<const T> x, std::span<T> out) const {
    require_dimension("x.size()", x.size(), map_->dim);
    require_dimension("out.size() (must equal num_features())", out.size(), map_->m);
    if (map_->check_finite) require_finite<T>("x", x);
    map_->vec(x.data(), out.data());
    if (map_->favor())
      for (T& v : out) v = std::exp(v);
  }

  /// \brief φ(x) (allocating convenience overload).
  [[nodiscard]] std::vector<T> map_features(std::span<const T> x) const {
    std::vector<T> out(map_->m);
    map_features(x, std::span<T>(out));
    return out;
  }

  /// \brief An empty key state for values of dimension `value_dim`, to fill with `add`.
  [[nodiscard]] linear_key_state<T> make_state(std::size_t value_dim) const {
    require_at_most("value_dim", value_dim, max_dimension);
    return linear_key_state<T>(map_, value_dim);
  }

  /// \brief The key state of `keys` ([n, d]) and `values` ([n, dv]); keys with
  /// `key_mask[j] == false` are excluded. Costs O(n·m·(d + dv)); every later query O(m·(d + dv)).
  [[nodiscard]] linear_key_state<T> build_state(const matrix_cref<T>& keys,
                                                const matrix_cref<T>& values,
                                                std::span<const bool> key_mask = {}) const {
    linear_key_state<T> st = make_state(static_cast<std::size_t>(values.cols()));
    st.validate_kv(keys, values, key_mask);
    st.accumulate(keys, values, key_mask);
    st.require_finite_state();
    return st;
  }

  /// \brief Attention output for one query over keys [n, d] and values [n, dv] (rows = keys),
  /// optionally masked (`true` = visible; empty = all). O(n·m·d + n·dv), no state is built.
  void compute_into(std::span<const T> query, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, std::span<T> out,
                    std::span<const bool> key_mask = {}) const {
    const std::size_t n = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const std::size_t m = map_->m;
    require_dimension("query.size()", query.size(), map_->dim);
    require_non_empty("keys", n);
    require_at_most("keys.rows()", n, max_sequence_length);
    require_dimension("keys.cols()", static_cast<std::size_t>(keys.cols()), map_->dim);
    require_dimension("values.rows() (must equal keys.rows())",
                      static_cast<std::size_t>(values.rows()), n);
    require_dimension("out.size() (must equal values.cols())", out.size(), dv);
    if (!key_mask.empty()) require_dimension("key_mask.size()", key_mask.size(), n);
    if (map_->check_finite) {
      require_finite<T>("query", query);
      detail::require_finite_matrix("keys", keys);
      detail::require_finite_matrix("values", values);
    }
    const std::size_t chunk = std::min(detail::linear_key_chunk, n);
    T* fq = detail::thread_scratch<T, 20>(m);
    T* scores = detail::thread_scratch<T, 21>(chunk);
    T* frows = detail::thread_scratch<T, 22>(chunk * m);
    map_->vec(query.data(), fq);
    const auto ldv = static_cast<std::size_t>(values.outerStride());

    if (map_->favor()) {
      // Softmax over the keys of log(φ(q)ᵀφ(k_j)) = logsumexp_i(ℓ_i(q) + ℓ_i(k_j)).
      kernels::online_softmax_state<T> acc(dv);
      for (std::size_t j0 = 0; j0 < n; j0 += chunk) {
        const std::size_t rows = std::min(chunk, n - j0);
        Eigen::Map<row_matrix<T>> fk(frows, static_cast<Eigen::Index>(rows),
                                     static_cast<Eigen::Index>(m));
        map_->rows(keys.middleRows(static_cast<Eigen::Index>(j0), static_cast<Eigen::Index>(rows)),
                   fk);
        for (std::size_t r = 0; r < rows; ++r) {
          if (!key_mask.empty() && !key_mask[j0 + r]) {
            scores[r] = -std::numeric_limits<T>::infinity();
            continue;
          }
          T* row = frows + r * m;
          for (std::size_t i = 0; i < m; ++i) row[i] += fq[i];
          const T mx = kernels::max(row, m);
          scores[r] = mx + std::log(kernels::exp_shift_sum(row, m, mx));
        }
        acc.add_block(scores, rows, values.data() + j0 * ldv, ldv);
      }
      acc.finalize(out.data());
    } else {
      // Σ_j s_j v_j / Σ_j s_j with s_j = φ(q)·φ(k_j).
      T den = T(0);
      for (std::size_t j0 = 0; j0 < n; j0 += chunk) {
        const std::size_t rows = std::min(chunk, n - j0);
        Eigen::Map<row_matrix<T>> fk(frows, static_cast<Eigen::Index>(rows),
                                     static_cast<Eigen::Index>(m));
        map_->rows(keys.middleRows(static_cast<Eigen::Index>(j0), static_cast<Eigen::Index>(rows)),
                   fk);
        kernels::row_dots(frows, rows, m, m, fq, T(1), scores);
        if (!key_mask.empty())
          for (std::size_t r = 0; r < rows; ++r)
            if (!key_mask[j0 + r]) scores[r] = T(0);
        den += kernels::sum(scores, rows);
        kernels::weighted_row_sum(scores, rows, values.data() + j0 * ldv, dv, ldv,
                                  j0 == 0 ? T(0) : T(1), out.data());
      }
      if (den > std::numeric_limits<T>::min()) {
        kernels::scale(T(1) / den, out.data(), dv);
      } else {
        std::fill(out.begin(), out.end(), T(0));
      }
    }
    if (map_->check_finite && !kernels::all_finite(out.data(), dv))
      detail::throw_linear_overflow("the output");
  }

  /// \brief Attention output for one query (the seeds' `compute`).
  [[nodiscard]] std::vector<T> compute(std::span<const T> query, const matrix_cref<T>& keys,
                                       const matrix_cref<T>& values) const {
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out);
    return out;
  }

  /// \brief Attention output with a key mask (`true` = visible; masked keys are excluded from
  /// S and z). A fully masked key set gives zeros.
  [[nodiscard]] std::vector<T> compute_with_mask(std::span<const T> query,
                                                 const matrix_cref<T>& keys,
                                                 const matrix_cref<T>& values,
                                                 std::span<const bool> key_mask) const {
    require_dimension("key_mask.size()", key_mask.size(), static_cast<std::size_t>(keys.rows()));
    std::vector<T> out(static_cast<std::size_t>(values.cols()));
    compute_into(query, keys, values, out, key_mask);
    return out;
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
                                                 const std::vector<bool>& key_mask) const {
    const std::unique_ptr<bool[]> mask(new bool[key_mask.size()]);
    std::copy(key_mask.begin(), key_mask.end(), mask.get());
    return compute_with_mask(std::span<const T>(query), to_matrix(keys, "keys"),
                             to_matrix(values, "values"),
                             std::span<const bool>(mask.get(), key_mask.size()));
  }

  /// \brief Sequence form: out [Lq, dv] for queries [Lq, d], keys [Lk, d], values [Lk, dv].
  /// Non-causal: one key state (GEMMs) then φ(Q)·S per block of 64 queries (GEMM, parallel).
  /// Causal (bottom-right aligned): prefix sums, the state advanced key by key. Queries that see
  /// no key output zeros; Lk = 0 is allowed.
  void forward_into(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                    const matrix_cref<T>& values, matrix_ref<T> out, bool causal,
                    std::span<const bool> key_mask = {}) const {
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    require_at_most("queries.rows()", lq, max_sequence_length);
    require_dimension("queries.cols()", static_cast<std::size_t>(queries.cols()), map_->dim);
    require_dimension("out.rows() (must equal queries.rows())",
                      static_cast<std::size_t>(out.rows()), lq);
    require_dimension("out.cols() (must equal values.cols())", static_cast<std::size_t>(out.cols()),
                      dv);
    linear_key_state<T> st = make_state(dv);
    st.validate_kv(keys, values, key_mask);
    if (map_->check_finite) detail::require_finite_matrix("queries", queries);
    if (lq == 0 || dv == 0) return;

    if (!causal) {
      st.accumulate(keys, values, key_mask);
      st.require_finite_state();
      st.query_rows(queries, out);
    } else {
      forward_causal(queries, keys, values, out, key_mask, st);
    }
    st.check_output(out);
  }

  /// \brief `forward_into` returning a new [Lq, dv] matrix.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values, bool causal,
                                      std::span<const bool> key_mask = {}) const {
    row_matrix<T> out(queries.rows(), values.cols());
    forward_into(queries, keys, values, out, causal, key_mask);
    return out;
  }

  /// \brief `forward` with the configured causal flag.
  [[nodiscard]] row_matrix<T> forward(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                                      const matrix_cref<T>& values) const {
    return forward(queries, keys, values, config_.causal);
  }

 private:
  // Causal prefix sums: before each block of queries, the keys every query of the block sees are
  // added with GEMMs; inside the block the state advances key by key (rank-1 updates).
  void forward_causal(const matrix_cref<T>& queries, const matrix_cref<T>& keys,
                      const matrix_cref<T>& values, matrix_ref<T> out,
                      std::span<const bool> key_mask, linear_key_state<T>& st) const {
    const std::size_t lq = static_cast<std::size_t>(queries.rows());
    const std::size_t lk = static_cast<std::size_t>(keys.rows());
    const std::size_t dv = static_cast<std::size_t>(values.cols());
    const auto m = static_cast<Eigen::Index>(map_->m);
    const std::size_t block = detail::linear_query_block;
    row_matrix<T> fq(static_cast<Eigen::Index>(std::min(block, lq)), m);
    std::vector<T> fk(map_->m);
    std::vector<T> orow(dv);
    std::size_t k = 0;  // keys [0, k) are in the state
    for (std::size_t i0 = 0; i0 < lq; i0 += block) {
      const std::size_t rows = std::min(block, lq - i0);
      const std::size_t first = causal_visible_keys(i0, lq, lk);
      if (first > k) {
        st.accumulate(keys, values, key_mask, k, first);
        st.require_finite_state();
        k = first;
      }
      auto fb = fq.topRows(static_cast<Eigen::Index>(rows));
      map_->rows(queries.middleRows(static_cast<Eigen::Index>(i0), static_cast<Eigen::Index>(rows)),
                 fb);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t visible = causal_visible_keys(i0 + r, lq, lk);
        for (; k < visible; ++k) {
          if (!key_mask.empty() && !key_mask[k]) continue;
          const auto kk = static_cast<Eigen::Index>(k);
          map_->vec(keys.data() + kk * keys.outerStride(), fk.data());
          st.accumulate_row(fk.data(), values.data() + kk * values.outerStride());
        }
        st.finish_query(&fb(static_cast<Eigen::Index>(r), 0), orow.data());
        for (std::size_t c = 0; c < dv; ++c)
          out(static_cast<Eigen::Index>(i0 + r), static_cast<Eigen::Index>(c)) = orow[c];
      }
    }
  }

  linear_attention_config config_;
  std::shared_ptr<const detail::linear_feature_params<T>> map_;
};

}  // namespace ruvector::attention
