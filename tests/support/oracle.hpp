#pragma once
// Independent double-precision brute-force references for the attention tests.
//
// Written from the mathematics, not from the library: this header includes no library header and
// calls no library kernel. Everything is a plain triple loop over std::vector<double>.
//
//   s_ij   = scale · Σ_c q[i][c] · k[j][c] + bias[i][j]
//   V_i    = { j : key_mask[j] (if given), j ≤ i + Lk − Lq (if causal), bias[i][j] ≠ −inf }
//   m_i    = max_{j∈V_i} s_ij
//   w_ij   = exp(s_ij − m_i) / Σ_{j'∈V_i} exp(s_ij' − m_i)   for j ∈ V_i, 0 otherwise
//   out_i  = Σ_j w_ij · v[j]
//   lse_i  = m_i + log Σ_{j∈V_i} exp(s_ij − m_i)
// A row with V_i = ∅ has out_i = 0, w_i· = 0 and lse_i = −inf.
//
// Multi-head (Vaswani et al. 2017 §3.2.2, PyTorch Linear layout y = x Wᵀ + b with W [out, in]):
//   Q = X_q W_qᵀ + b_q, K = X_k W_kᵀ + b_k, V = X_v W_vᵀ + b_v
//   head h uses columns [h·d_h, (h+1)·d_h) of Q and columns [g·d_h, (g+1)·d_h) of K and V with
//   g = h / (H / H_kv); the heads' outputs are concatenated and projected: out = C W_oᵀ + b_o.
//   "split only" skips all four projections.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ruvector_test::oracle {

/// A dense row-major double matrix (rows × cols).
struct dmat {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> a;

  dmat() = default;
  dmat(std::size_t r, std::size_t c, double fill = 0.0) : rows(r), cols(c), a(r * c, fill) {}

  [[nodiscard]] bool empty() const noexcept { return rows == 0 && cols == 0; }
  double& operator()(std::size_t i, std::size_t j) { return a[i * cols + j]; }
  double operator()(std::size_t i, std::size_t j) const { return a[i * cols + j]; }
  [[nodiscard]] std::vector<double> row(std::size_t i) const {
    return std::vector<double>(a.begin() + static_cast<std::ptrdiff_t>(i * cols),
                               a.begin() + static_cast<std::ptrdiff_t>((i + 1) * cols));
  }
};

/// Copies anything with rows(), cols() and operator()(i, j) (e.g. an Eigen matrix) into a dmat.
template <class M>
[[nodiscard]] dmat to_dmat(const M& m) {
  const auto r = static_cast<std::size_t>(m.rows());
  const auto c = static_cast<std::size_t>(m.cols());
  dmat out(r, c);
  for (std::size_t i = 0; i < r; ++i)
    for (std::size_t j = 0; j < c; ++j)
      out(i, j) = static_cast<double>(
          m(static_cast<decltype(m.rows())>(i), static_cast<decltype(m.cols())>(j)));
  return out;
}

/// Copies a vector-like (size(), operator[] or operator()) into std::vector<double>.
template <class V>
[[nodiscard]] std::vector<double> to_dvec(const V& v) {
  std::vector<double> out(static_cast<std::size_t>(v.size()));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<double>(v[static_cast<decltype(v.size())>(i)]);
  return out;
}

/// The result of `reference_attention`.
struct attention_result {
  dmat out;                 ///< [Lq][dv]
  dmat weights;             ///< [Lq][Lk]
  std::vector<double> lse;  ///< [Lq]
};

/// Brute-force attention; see the file comment. `key_mask` (true = visible) and `bias`
/// ([Lq][Lk]) may be empty.
[[nodiscard]] inline attention_result reference_attention(const dmat& q, const dmat& k,
                                                          const dmat& v, double scale,
                                                          bool causal = false,
                                                          const std::vector<bool>& key_mask = {},
                                                          const dmat& bias = {}) {
  const std::size_t lq = q.rows, lk = k.rows, d = q.cols, dv = v.cols;
  if (k.cols != d && lk > 0) throw std::logic_error("oracle: q/k width mismatch");
  if (v.rows != lk) throw std::logic_error("oracle: k/v count mismatch");
  if (!key_mask.empty() && key_mask.size() != lk) throw std::logic_error("oracle: mask size");
  if (!bias.empty() && (bias.rows != lq || bias.cols != lk))
    throw std::logic_error("oracle: bias shape");
  constexpr double neg_inf = -std::numeric_limits<double>::infinity();

  attention_result r{dmat(lq, dv), dmat(lq, lk), std::vector<double>(lq, neg_inf)};
  std::vector<double> s(lk);
  std::vector<bool> visible(lk);
  for (std::size_t i = 0; i < lq; ++i) {
    double m = neg_inf;
    bool any = false;
    for (std::size_t j = 0; j < lk; ++j) {
      bool vis = key_mask.empty() || key_mask[j];
      // Bottom-right aligned: j <= i + Lk - Lq (signed arithmetic).
      if (causal && static_cast<long long>(j) > static_cast<long long>(i) +
                                                    static_cast<long long>(lk) -
                                                    static_cast<long long>(lq))
        vis = false;
      double dot = 0.0;
      for (std::size_t c = 0; c < d; ++c) dot += q(i, c) * k(j, c);
      double sij = scale * dot;
      if (!bias.empty()) {
        if (bias(i, j) == neg_inf) vis = false;
        sij += bias(i, j);
      }
      visible[j] = vis;
      s[j] = sij;
      if (vis) {
        any = true;
        m = std::max(m, sij);
      }
    }
    if (!any) continue;  // zeros, lse = -inf
    double l = 0.0;
    for (std::size_t j = 0; j < lk; ++j)
      if (visible[j]) l += std::exp(s[j] - m);
    r.lse[i] = m + std::log(l);
    for (std::size_t j = 0; j < lk; ++j) {
      const double w = visible[j] ? std::exp(s[j] - m) / l : 0.0;
      r.weights(i, j) = w;
      for (std::size_t c = 0; c < dv; ++c) r.out(i, c) += w * v(j, c);
    }
  }
  return r;
}

/// y = x Wᵀ + b (W is [out, in]; b may be empty).
[[nodiscard]] inline dmat linear(const dmat& x, const dmat& w, const std::vector<double>& b) {
  if (w.cols != x.cols) throw std::logic_error("oracle: linear shape");
  dmat y(x.rows, w.rows);
  for (std::size_t i = 0; i < x.rows; ++i)
    for (std::size_t o = 0; o < w.rows; ++o) {
      double acc = b.empty() ? 0.0 : b[o];
      for (std::size_t c = 0; c < x.cols; ++c) acc += x(i, c) * w(o, c);
      y(i, o) = acc;
    }
  return y;
}

/// Columns [c0, c0 + n) of m.
[[nodiscard]] inline dmat column_slice(const dmat& m, std::size_t c0, std::size_t n) {
  dmat out(m.rows, n);
  for (std::size_t i = 0; i < m.rows; ++i)
    for (std::size_t c = 0; c < n; ++c) out(i, c) = m(i, c0 + c);
  return out;
}

/// Projection parameters in double ([out, in] layout; empty biases = no bias).
struct mha_weights {
  dmat w_q, w_k, w_v, w_o;
  std::vector<double> b_q, b_k, b_v, b_o;
};

/// Result of `reference_multi_head`.
struct mha_result {
  dmat out;                   ///< [Lq][E]
  std::vector<dmat> weights;  ///< per query head: [Lq][Lk]
};

/// Reference multi-head forward; `w == nullptr` means split-only (no projections).
/// `bias_per_head` is empty or holds H matrices [Lq][Lk].
[[nodiscard]] inline mha_result reference_multi_head(const dmat& xq, const dmat& xk, const dmat& xv,
                                                     const mha_weights* w, std::size_t heads,
                                                     std::size_t kv_heads, bool causal,
                                                     const std::vector<bool>& key_mask = {},
                                                     const std::vector<dmat>& bias_per_head = {}) {
  if (heads == 0 || kv_heads == 0 || heads % kv_heads != 0) throw std::logic_error("oracle: heads");
  const dmat qp = w ? linear(xq, w->w_q, w->b_q) : xq;
  const dmat kp = w ? linear(xk, w->w_k, w->b_k) : xk;
  const dmat vp = w ? linear(xv, w->w_v, w->b_v) : xv;
  const std::size_t e = qp.cols;
  if (e % heads != 0) throw std::logic_error("oracle: E % H");
  const std::size_t dh = e / heads;
  if (kp.cols != kv_heads * dh || vp.cols != kv_heads * dh)
    throw std::logic_error("oracle: kv width");
  const std::size_t group = heads / kv_heads;
  dmat concat(xq.rows, e);
  mha_result r;
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t g = h / group;
    const auto a =
        reference_attention(column_slice(qp, h * dh, dh), column_slice(kp, g * dh, dh),
                            column_slice(vp, g * dh, dh), 1.0 / std::sqrt(static_cast<double>(dh)),
                            causal, key_mask, bias_per_head.empty() ? dmat{} : bias_per_head[h]);
    for (std::size_t i = 0; i < xq.rows; ++i)
      for (std::size_t c = 0; c < dh; ++c) concat(i, h * dh + c) = a.out(i, c);
    r.weights.push_back(a.weights);
  }
  r.out = w ? linear(concat, w->w_o, w->b_o) : concat;
  return r;
}

// ---- random inputs -------------------------------------------------------------------------

/// rows × cols matrix of N(mean, stddev²) draws from std::mt19937_64(seed).
[[nodiscard]] inline dmat random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed,
                                        double stddev = 1.0, double mean = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(mean, stddev);
  dmat m(rows, cols);
  for (auto& x : m.a) x = dist(gen);
  return m;
}

/// n N(mean, stddev²) draws from std::mt19937_64(seed).
[[nodiscard]] inline std::vector<double> random_vector(std::size_t n, std::uint64_t seed,
                                                       double stddev = 1.0, double mean = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

/// Rounds every entry to T and back (so the oracle sees exactly the values the library sees).
template <class T>
[[nodiscard]] dmat rounded(dmat m) {
  for (auto& x : m.a) x = static_cast<double>(static_cast<T>(x));
  return m;
}

// ---- error measures ------------------------------------------------------------------------

/// max_i |got_i − ref_i| (infinity on a size mismatch or a NaN).
template <class G>
[[nodiscard]] double max_abs_error(const G& got, const std::vector<double>& ref) {
  if (static_cast<std::size_t>(got.size()) != ref.size())
    return std::numeric_limits<double>::infinity();
  double e = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (std::isnan(g) != std::isnan(ref[i])) return std::numeric_limits<double>::infinity();
    if (g == ref[i]) continue;  // also equal infinities
    e = std::max(e, std::abs(g - ref[i]));
  }
  return e;
}

/// max_i |got_i − ref_i| / max(|ref_i|, floor).
template <class G>
[[nodiscard]] double max_rel_error(const G& got, const std::vector<double>& ref,
                                   double floor = 1e-300) {
  if (static_cast<std::size_t>(got.size()) != ref.size())
    return std::numeric_limits<double>::infinity();
  double e = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (std::isnan(g) != std::isnan(ref[i])) return std::numeric_limits<double>::infinity();
    if (g == ref[i]) continue;
    e = std::max(e, std::abs(g - ref[i]) / std::max(std::abs(ref[i]), floor));
  }
  return e;
}

/// max_i |got_i − ref_i| / max(|ref_i|, 1): absolute near zero, relative for large values.
template <class G>
[[nodiscard]] double max_mixed_error(const G& got, const std::vector<double>& ref) {
  return max_rel_error(got, ref, 1.0);
}

}  // namespace ruvector_test::oracle
