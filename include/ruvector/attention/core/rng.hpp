#pragma once
/// \file core/rng.hpp
/// \brief A seeded, platform-independent random number generator usable from headers.
///
/// `rng` is xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64. Unlike
/// `std::normal_distribution`, whose algorithm is implementation-defined, every draw here is
/// specified bit-for-bit, so the same seed gives the same numbers on every platform (DESIGN §4).

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

namespace ruvector::attention {

/// \brief xoshiro256** generator; models `std::uniform_random_bit_generator`.
class rng {
 public:
  using result_type = std::uint64_t;

  /// Seeds the four state words from `seed` with splitmix64.
  explicit constexpr rng(std::uint64_t seed = 0x5eed) noexcept { reseed(seed); }

  /// Resets the generator to the stream of `seed`.
  constexpr void reseed(std::uint64_t seed) noexcept {
    for (auto& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
    has_spare_ = false;
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// Next 64 random bits.
  constexpr result_type operator()() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform01() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform value in [lo, hi).
  template <class T = double>
  constexpr T uniform(T lo, T hi) noexcept {
    return static_cast<T>(static_cast<double>(lo) +
                          (static_cast<double>(hi) - static_cast<double>(lo)) * uniform01());
  }

  /// Standard normal draw (Box–Muller; the second value of each pair is kept for the next call).
  template <class T = double>
  T normal(T mean = T(0), T stddev = T(1)) noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return static_cast<T>(static_cast<double>(mean) + static_cast<double>(stddev) * spare_);
    }
    double u1 = uniform01();
    while (u1 <= 0.0) u1 = uniform01();
    const double u2 = uniform01();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return static_cast<T>(static_cast<double>(mean) +
                          static_cast<double>(stddev) * r * std::cos(theta));
  }

  /// Uniform integer in [0, n) without modulo bias (Lemire's method); `n` must be > 0.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    __uint128_t m = static_cast<__uint128_t>((*this)()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>((*this)()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }

  std::uint64_t state_[4]{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace ruvector::attention
