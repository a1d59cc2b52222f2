#pragma once
/// \file info_bottleneck/bottleneck.hpp
/// \brief Variational information bottleneck layer (Alemi, Fischer, Dillon & Murphy 2017, "Deep
/// Variational Information Bottleneck") with β-annealing schedules (Bowman et al. 2016 linear
/// warm-up; cosine; cyclical, Fu et al. 2019).
///
/// For a batch X `[B, d_in]` (rows = samples) the Gaussian encoder q(z|x) is linear:
///
///     M   = X W_μᵀ + 1 b_μᵀ                                   `[B, d_z]`
///     Λ   = clamp(X W_σᵀ + 1 b_σᵀ, logvar_min, logvar_max)    `[B, d_z]`, Λ = log σ²
///     Z   = M + exp(½ Λ) ⊙ E,   E_ij ~ N(0, 1)                (reparameterisation trick)
///     KL_b = ½ Σ_j (M_bj² + e^{Λ_bj} − Λ_bj − 1)              (KL(q(z|x_b) ‖ N(0, I)))
///     L_KL = β · (1/B) Σ_b KL_b
///
/// Weights use the PyTorch `Linear` layout `[out_features, in_features]`: W_μ, W_σ `[d_z, d_in]`,
/// b_μ, b_σ `[d_z]`. Initialisation from `vib_config::seed`: W_μ then W_σ are drawn Xavier-uniform
/// U(±√(6 / (d_in + d_z))) (Glorot & Bengio 2010) from `rng(seed)`, element by element in
/// row-major order; both biases are zero (so σ ≈ 1 at the start for centred inputs).
///
/// Sampling: `forward(x, gen)` draws E_ij = gen.normal<T>() in row-major order (b, then j), so a
/// seeded `rng` reproduces Z bit for bit. `forward(x)` is the deterministic (evaluation) mode:
/// E = 0 and Z = M. `forward(x, eps)` uses caller-given noise (e.g. held fixed for a gradient
/// check).
///
/// Backward (`backward(x, fwd, grad_z, beta)`), given G = ∂L/∂Z from downstream (`[B, d_z]`, the
/// gradient of the caller's whole loss) and the KL term above:
///
///     G_μ = G + (β/B) M
///     G_Λ = [G ⊙ ½ σ ⊙ E + (β/B) ½ (e^Λ − 1)] ⊙ 1[logvar_min ≤ Λ_raw ≤ logvar_max]
///     ∂W_μ = G_μᵀ X,  ∂b_μ = 1ᵀ G_μ,  ∂W_σ = G_Λᵀ X,  ∂b_σ = 1ᵀ G_Λ,  ∂X = G_μ W_μ + G_Λ W_σ
///
/// (∂z/∂μ = 1 and ∂z/∂log σ² = ½ σ ε). The clamp passes no gradient where it is active
/// (the derivative of clamp outside its range). All products are Eigen GEMMs.
///
/// Conventions and errors: `vib_config` / `beta_schedule` inconsistencies throw `invalid_config`;
/// a wrong input width or a mis-shaped eps/grad/parameter throws `dimension_mismatch`; an empty
/// batch, β < 0 or a negative learning rate throws `invalid_argument` (β and lr are call
/// arguments, not configuration); NaN/Inf inputs throw `non_finite_input` naming the element.
/// Forward and backward are const and thread-safe; `set_parameters` and `apply_gradients` are
/// not.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ruvector/attention/concepts.hpp"
#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/detail/eigen.hpp"
#include "ruvector/attention/kernels/softmax.hpp"

namespace ruvector::attention {

// ================================================================================================
// β schedules
// ================================================================================================

/// \brief Shape of a `beta_schedule`.
enum class beta_schedule_kind {
  constant,  ///< β(t) = β1
  linear,    ///< β(t) = β0 + (β1 − β0) · min(t / S, 1)
  cosine,    ///< β(t) = β1 + (β0 − β1) · ½ (1 + cos(π · min(t / S, 1)))
  cyclical,  ///< Fu et al. 2019; see `beta_schedule::cyclical`
};

/// \brief A β-annealing schedule for the KL weight; `beta(step)` with 0-based steps.
///
/// - `linear(β0, β1, S)`: warm-up from β0 (t = 0) to β1 (t ≥ S), linear in between.
/// - `cosine(β0, β1, S)`: β0 at t = 0 to β1 at t ≥ S along half a cosine (flat at both ends).
/// - `cyclical(β0, β1, T, R, ratio)` (Fu et al. 2019, "Cyclical Annealing Schedule"): the
///   first T steps are split into R cycles of (real) length P = T / R; with τ = (t mod P) / P,
///   β(t) = β0 + (β1 − β0) · min(τ / ratio, 1), i.e. a linear rise over the first `ratio` of
///   each cycle, then β1 for the rest of it; for t ≥ T the schedule stays at β1.
/// Requirements (else `invalid_config`): β0, β1 finite and ≥ 0; S ≥ 1; R ≥ 1; T ≥ R;
/// 0 < ratio ≤ 1.
class beta_schedule {
 public:
  /// β(t) = beta for every step.
  [[nodiscard]] static beta_schedule constant(double beta) {
    check_beta("beta", beta);
    beta_schedule s;
    s.beta0_ = s.beta1_ = beta;
    return s;
  }

  /// Linear warm-up from beta0 to beta1 over `steps` steps (then constant beta1).
  [[nodiscard]] static beta_schedule linear(double beta0, double beta1, std::size_t steps) {
    return ramp(beta_schedule_kind::linear, beta0, beta1, steps);
  }

  /// Cosine warm-up from beta0 to beta1 over `steps` steps (then constant beta1).
  [[nodiscard]] static beta_schedule cosine(double beta0, double beta1, std::size_t steps) {
    return ramp(beta_schedule_kind::cosine, beta0, beta1, steps);
  }

  /// Cyclical schedule: `cycles` cycles over `total_steps`, rising over the first `ratio` of each.
  [[nodiscard]] static beta_schedule cyclical(double beta0, double beta1, std::size_t total_steps,
                                              std::size_t cycles, double ratio = 0.5) {
    check_beta("beta0", beta0);
    check_beta("beta1", beta1);
    require_config(cycles >= 1, "beta_schedule::cyclical: cycles must be >= 1");
    require_config(total_steps >= cycles, "beta_schedule::cyclical: total_steps must be >= cycles");
    require_config(std::isfinite(ratio) && ratio > 0.0 && ratio <= 1.0,
                   "beta_schedule::cyclical: ratio must be in (0, 1]");
    beta_schedule s;
    s.kind_ = beta_schedule_kind::cyclical;
    s.beta0_ = beta0;
    s.beta1_ = beta1;
    s.steps_ = total_steps;
    s.cycles_ = cycles;
    s.ratio_ = ratio;
    return s;
  }

  /// The KL weight at 0-based training step `step`.
  [[nodiscard]] double beta(std::size_t step) const noexcept {
    const double t = static_cast<double>(step);
    switch (kind_) {
      case beta_schedule_kind::constant:
        return beta1_;
      case beta_schedule_kind::linear: {
        const double f = std::min(t / static_cast<double>(steps_), 1.0);
        return beta0_ + (beta1_ - beta0_) * f;
      }
      case beta_schedule_kind::cosine: {
        const double f = std::min(t / static_cast<double>(steps_), 1.0);
        return beta1_ + (beta0_ - beta1_) * 0.5 * (1.0 + std::cos(std::numbers::pi * f));
      }
      case beta_schedule_kind::cyclical: {
        if (step >= steps_) return beta1_;
        const double period = static_cast<double>(steps_) / static_cast<double>(cycles_);
        const double tau = std::fmod(t, period) / period;
        return beta0_ + (beta1_ - beta0_) * std::min(tau / ratio_, 1.0);
      }
    }
    return beta1_;
  }

  [[nodiscard]] beta_schedule_kind kind() const noexcept { return kind_; }
  [[nodiscard]] double beta0() const noexcept { return beta0_; }
  [[nodiscard]] double beta1() const noexcept { return beta1_; }
  /// S (linear/cosine) or T (cyclical); 0 for constant.
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
  [[nodiscard]] std::size_t cycles() const noexcept { return cycles_; }
  [[nodiscard]] double ratio() const noexcept { return ratio_; }

 private:
  beta_schedule() = default;

  static void check_beta(const char* name, double b) {
    if (!(std::isfinite(b) && b >= 0.0)) {
      std::ostringstream os;
      os << "beta_schedule: " << name << " = " << b << ", expected a finite value >= 0";
      require_config(false, os.str());
    }
  }

  static beta_schedule ramp(beta_schedule_kind kind, double beta0, double beta1,
                            std::size_t steps) {
    check_beta("beta0", beta0);
    check_beta("beta1", beta1);
    require_config(steps >= 1, "beta_schedule: warm-up steps must be >= 1");
    beta_schedule s;
    s.kind_ = kind;
    s.beta0_ = beta0;
    s.beta1_ = beta1;
    s.steps_ = steps;
    return s;
  }

  beta_schedule_kind kind_ = beta_schedule_kind::constant;
  double beta0_ = 0.0;
  double beta1_ = 0.0;
  std::size_t steps_ = 0;
  std::size_t cycles_ = 0;
  double ratio_ = 1.0;
};

// ================================================================================================
// The VIB layer
// ================================================================================================

/// \brief Configuration of a `variational_bottleneck`.
struct vib_config {
  std::size_t input_dim = 0;   ///< d_in ≥ 1
  std::size_t latent_dim = 0;  ///< d_z ≥ 1
  std::uint64_t seed = 0;      ///< seed of the Xavier initialisation
  double logvar_min = -10.0;   ///< lower clamp of log σ² (finite, < logvar_max)
  double logvar_max = 10.0;    ///< upper clamp of log σ² (finite; ≤ 80 keeps float σ² finite)
};

/// \brief Parameters (or their gradients) of a `variational_bottleneck`.
template <attention_scalar T>
struct vib_parameters {
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  row_matrix<T> w_mu;      ///< `[d_z, d_in]`
  vector_type b_mu;        ///< `[d_z]`
  row_matrix<T> w_logvar;  ///< `[d_z, d_in]` (W_σ)
  vector_type b_logvar;    ///< `[d_z]` (b_σ)
};

/// \brief Gradients returned by `variational_bottleneck::backward`.
template <attention_scalar T>
struct vib_gradients {
  vib_parameters<T> params;  ///< ∂L/∂W_μ, ∂L/∂b_μ, ∂L/∂W_σ, ∂L/∂b_σ
  row_matrix<T> x;           ///< ∂L/∂X `[B, d_in]`
};

/// \brief The outputs of one forward pass (kept for `backward`).
template <attention_scalar T>
struct vib_forward_result {
  row_matrix<T> mu;                        ///< M `[B, d_z]`
  row_matrix<T> logvar;                    ///< Λ = clamped log σ² `[B, d_z]`
  row_matrix<T> logvar_raw;                ///< log σ² before clamping `[B, d_z]`
  row_matrix<T> eps;                       ///< E (zeros in deterministic mode) `[B, d_z]`
  row_matrix<T> z;                         ///< Z = M + σ ⊙ E `[B, d_z]`
  Eigen::Matrix<T, Eigen::Dynamic, 1> kl;  ///< KL_b per sample `[B]`
  T kl_mean = T(0);                        ///< (1/B) Σ_b KL_b

  /// β · (1/B) Σ_b KL_b; throws `invalid_argument` unless β is finite and ≥ 0.
  [[nodiscard]] T kl_loss(T beta) const {
    if (!(std::isfinite(beta) && beta >= T(0))) {
      std::ostringstream os;
      os << "invalid argument: beta = " << beta << ", expected a finite value >= 0";
      throw invalid_argument(os.str());
    }
    return beta * kl_mean;
  }
};

/// \brief Variational information bottleneck encoder x → q(z|x) = N(μ(x), diag σ²(x)) with
/// reparameterised sampling, KL regulariser and analytic gradients; see the file comment.
template <attention_scalar T>
class variational_bottleneck {
 public:
  using value_type = T;
  using vector_type = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// \brief Validates `config` (`invalid_config`) and Xavier-initialises from `config.seed`.
  explicit variational_bottleneck(const vib_config& config) : cfg_(config) {
    require_config(cfg_.input_dim >= 1, "vib_config: input_dim must be >= 1");
    require_config(cfg_.latent_dim >= 1, "vib_config: latent_dim must be >= 1");
    require_config(cfg_.input_dim <= max_dimension && cfg_.latent_dim <= max_dimension,
                   "vib_config: input_dim and latent_dim must be <= max_dimension");
    require_config(std::isfinite(cfg_.logvar_min) && std::isfinite(cfg_.logvar_max) &&
                       cfg_.logvar_min < cfg_.logvar_max,
                   "vib_config: logvar_min < logvar_max, both finite, is required");
    rng gen(cfg_.seed);
    p_.w_mu = xavier(gen);
    p_.w_logvar = xavier(gen);
    p_.b_mu = vector_type::Zero(idx(cfg_.latent_dim));
    p_.b_logvar = vector_type::Zero(idx(cfg_.latent_dim));
  }

  [[nodiscard]] const vib_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t input_dim() const noexcept { return cfg_.input_dim; }
  [[nodiscard]] std::size_t latent_dim() const noexcept { return cfg_.latent_dim; }
  [[nodiscard]] const vib_parameters<T>& parameters() const noexcept { return p_; }

  /// \brief Replaces the parameters (shapes checked → `dimension_mismatch`; finite values
  /// required → `non_finite_input`). Not thread-safe.
  void set_parameters(vib_parameters<T> p) {
    check_params("parameters", p);
    p_ = std::move(p);
  }

  /// \brief Training-mode forward: Z = M + σ ⊙ E with E drawn from `gen` (row-major order).
  [[nodiscard]] vib_forward_result<T> forward(const matrix_cref<T>& x, rng& gen) const {
    check_input(x);
    vib_forward_result<T> r = encode_batch(x);
    r.eps.resize(r.mu.rows(), r.mu.cols());
    for (Eigen::Index i = 0; i < r.eps.size(); ++i) r.eps.data()[i] = gen.normal<T>();
    finish(r);
    return r;
  }

  /// \brief Forward with caller-given noise E `[B, d_z]` (e.g. held fixed for a gradient check).
  [[nodiscard]] vib_forward_result<T> forward(const matrix_cref<T>& x,
                                              const matrix_cref<T>& eps) const {
    check_input(x);
    require_dimension("eps.rows()", static_cast<std::size_t>(eps.rows()),
                      static_cast<std::size_t>(x.rows()));
    require_dimension("eps.cols()", static_cast<std::size_t>(eps.cols()), cfg_.latent_dim);
    require_finite_fast("eps", eps);
    vib_forward_result<T> r = encode_batch(x);
    r.eps = eps;
    finish(r);
    return r;
  }

  /// \brief Deterministic (evaluation) forward: E = 0, Z = M.
  [[nodiscard]] vib_forward_result<T> forward(const matrix_cref<T>& x) const {
    check_input(x);
    vib_forward_result<T> r = encode_batch(x);
    r.eps = row_matrix<T>::Zero(r.mu.rows(), r.mu.cols());
    finish(r);
    return r;
  }

  /// \brief Deterministic encoding of one vector: μ(x) = W_μ x + b_μ.
  [[nodiscard]] std::vector<T> encode(std::span<const T> x) const {
    require_dimension("x.size()", x.size(), cfg_.input_dim);
    require_finite("x", x);
    const Eigen::Map<const vector_type> xv(x.data(), idx(x.size()));
    std::vector<T> out(cfg_.latent_dim);
    Eigen::Map<vector_type>(out.data(), idx(out.size())).noalias() = p_.w_mu * xv + p_.b_mu;
    return out;
  }

  /// \brief Analytic gradients of L = L_down(Z) + β · (1/B) Σ_b KL_b; `grad_z` = ∂L_down/∂Z.
  /// `x` and `fwd` must be the input and result of the same forward pass.
  [[nodiscard]] vib_gradients<T> backward(const matrix_cref<T>& x, const vib_forward_result<T>& fwd,
                                          const matrix_cref<T>& grad_z, T beta) const {
    check_input(x);
    const auto B = static_cast<std::size_t>(x.rows());
    const auto check_fwd = [&](const char* name, const row_matrix<T>& m) {
      require_dimension(std::string("fwd.").append(name).append(".rows()"),
                        static_cast<std::size_t>(m.rows()), B);
      require_dimension(std::string("fwd.").append(name).append(".cols()"),
                        static_cast<std::size_t>(m.cols()), cfg_.latent_dim);
    };
    check_fwd("mu", fwd.mu);
    check_fwd("logvar", fwd.logvar);
    check_fwd("logvar_raw", fwd.logvar_raw);
    check_fwd("eps", fwd.eps);
    require_dimension("grad_z.rows()", static_cast<std::size_t>(grad_z.rows()), B);
    require_dimension("grad_z.cols()", static_cast<std::size_t>(grad_z.cols()), cfg_.latent_dim);
    require_finite_fast("grad_z", grad_z);
    (void)fwd.kl_loss(beta);  // validates beta

    const T k = beta / static_cast<T>(B);
    const T lo = static_cast<T>(cfg_.logvar_min), hi = static_cast<T>(cfg_.logvar_max);
    row_matrix<T> g_mu = grad_z + k * fwd.mu;
    row_matrix<T> g_lv(fwd.mu.rows(), fwd.mu.cols());
    for (Eigen::Index b = 0; b < g_lv.rows(); ++b) {
      for (Eigen::Index j = 0; j < g_lv.cols(); ++j) {
        const T raw = fwd.logvar_raw(b, j);
        const T lv = fwd.logvar(b, j);
        g_lv(b, j) = (raw >= lo && raw <= hi)
                         ? T(0.5) * (grad_z(b, j) * std::exp(T(0.5) * lv) * fwd.eps(b, j) +
                                     k * std::expm1(lv))
                         : T(0);
      }
    }
    vib_gradients<T> g;
    g.params.w_mu.noalias() = g_mu.transpose() * x;
    g.params.w_logvar.noalias() = g_lv.transpose() * x;
    g.params.b_mu = g_mu.colwise().sum().transpose();
    g.params.b_logvar = g_lv.colwise().sum().transpose();
    g.x.noalias() = g_mu * p_.w_mu;
    g.x.noalias() += g_lv * p_.w_logvar;
    return g;
  }

  /// \brief One SGD step θ ← θ − lr · ∂θ (lr finite and ≥ 0). Not thread-safe.
  void apply_gradients(const vib_gradients<T>& g, T lr) {
    if (!(std::isfinite(lr) && lr >= T(0))) {
      std::ostringstream os;
      os << "invalid argument: learning rate = " << lr << ", expected a finite value >= 0";
      throw invalid_argument(os.str());
    }
    check_params("gradients", g.params);
    p_.w_mu -= lr * g.params.w_mu;
    p_.b_mu -= lr * g.params.b_mu;
    p_.w_logvar -= lr * g.params.w_logvar;
    p_.b_logvar -= lr * g.params.b_logvar;
  }

 private:
  static Eigen::Index idx(std::size_t n) noexcept { return static_cast<Eigen::Index>(n); }

  row_matrix<T> xavier(rng& gen) const {
    const double a = std::sqrt(6.0 / static_cast<double>(cfg_.input_dim + cfg_.latent_dim));
    row_matrix<T> w(idx(cfg_.latent_dim), idx(cfg_.input_dim));
    for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-a), T(a));
    return w;
  }

  void check_input(const matrix_cref<T>& x) const {
    require_non_empty("x.rows() (batch)", static_cast<std::size_t>(x.rows()));
    require_dimension("x.cols()", static_cast<std::size_t>(x.cols()), cfg_.input_dim);
    require_finite_fast("x", x);
  }

  // Vectorised scan first; the element-wise scan that names the bad entry runs only on failure.
  static void require_finite_fast(const char* what, const matrix_cref<T>& m) {
    const auto cols = static_cast<std::size_t>(m.cols());
    for (Eigen::Index r = 0; r < m.rows(); ++r) {
      if (!kernels::all_finite(m.data() + r * m.outerStride(), cols)) {
        require_finite(what, m.data(), static_cast<std::size_t>(m.rows()), cols, m.outerStride());
      }
    }
  }

  void check_params(const char* what, const vib_parameters<T>& p) const {
    const auto shape = [&](const char* name, Eigen::Index rows, Eigen::Index cols, std::size_t er,
                           std::size_t ec) {
      require_dimension(std::string(what).append(".").append(name).append(".rows()"),
                        static_cast<std::size_t>(rows), er);
      require_dimension(std::string(what).append(".").append(name).append(".cols()"),
                        static_cast<std::size_t>(cols), ec);
    };
    shape("w_mu", p.w_mu.rows(), p.w_mu.cols(), cfg_.latent_dim, cfg_.input_dim);
    shape("b_mu", p.b_mu.rows(), 1, cfg_.latent_dim, 1);
    shape("w_logvar", p.w_logvar.rows(), p.w_logvar.cols(), cfg_.latent_dim, cfg_.input_dim);
    shape("b_logvar", p.b_logvar.rows(), 1, cfg_.latent_dim, 1);
    const auto finite = [&](const char* name, const T* d, Eigen::Index n) {
      require_finite(std::string(what).append(".").append(name),
                     std::span<const T>(d, static_cast<std::size_t>(n)));
    };
    finite("w_mu", p.w_mu.data(), p.w_mu.size());
    finite("b_mu", p.b_mu.data(), p.b_mu.size());
    finite("w_logvar", p.w_logvar.data(), p.w_logvar.size());
    finite("b_logvar", p.b_logvar.data(), p.b_logvar.size());
  }

  // M and Λ (raw and clamped) by two GEMMs.
  vib_forward_result<T> encode_batch(const matrix_cref<T>& x) const {
    vib_forward_result<T> r;
    r.mu.noalias() = x * p_.w_mu.transpose();
    r.mu.rowwise() += p_.b_mu.transpose();
    r.logvar_raw.noalias() = x * p_.w_logvar.transpose();
    r.logvar_raw.rowwise() += p_.b_logvar.transpose();
    r.logvar = r.logvar_raw.cwiseMax(static_cast<T>(cfg_.logvar_min))
                   .cwiseMin(static_cast<T>(cfg_.logvar_max));
    return r;
  }

  // Z = M + exp(½Λ) ⊙ E and the per-sample KL ½ Σ_j (μ² + expm1(Λ) − Λ).
  static void finish(vib_forward_result<T>& r) {
    const auto lv = r.logvar.array();
    r.z = (r.mu.array() + (T(0.5) * lv).exp() * r.eps.array()).matrix();
    const auto em1 = lv.unaryExpr([](T v) { return std::expm1(v); });
    r.kl = (T(0.5) * (r.mu.array().square() + em1 - lv)).rowwise().sum().matrix();
    r.kl_mean = r.kl.mean();
  }

  vib_config cfg_;
  vib_parameters<T> p_;
};

}  // namespace ruvector::attention
