// Sparse patterns (sparse/masks.hpp) and the pattern-sparse kernel (sparse/sparse_attention.hpp).
//
// Patterns are checked entry by entry against brute-force predicates written from the definitions
// (|p − j| ≤ w, δ ≡ 0 mod stride, BigBird block rules, ...), never against another generator.
// The kernel is checked against the independent double-precision oracle (support/oracle.hpp) run
// with the EQUIVALENT dense mask: an additive bias of 0 where the pattern lists a key and −inf
// elsewhere, plus the oracle's own causal flag and key mask where the call uses them.
//
// Tolerances (kTol<T>, checked as max_i |got − ref| / max(|ref|, 1)) are those of the dense SDPA
// tests, for the same reason: per listed key the library does exactly what SDPA's single-query
// path does (a length-d dot product, a max-subtracted softmax over ≤ Lk entries, a convex
// combination of O(1) value rows), so the float error is ~√d·2^-24 per score plus O(n·2^-24)
// from the softmax sum, ≲ 1e-6 for the d ≤ 64, n ≤ 200 used here; 1e-5 leaves ~10× headroom
// while any real mistake (a missing or extra key, a wrong scale) moves outputs by ≥ 1e-2.
// double: 1e-12 by the same argument with 2^-53. The oracle sees exactly the rounded-to-T inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/sparse/masks.hpp"
#include "ruvector/attention/sparse/sparse_attention.hpp"
#include "support/helpers.hpp"
#include "support/oracle.hpp"

namespace ra = ruvector::attention;
namespace orc = ruvector_test::oracle;

namespace {

using ruvector_test::thrown_message;
using ruvector_test::to_eigen;

template <class T>
constexpr double kTol = std::is_same_v<T, float> ? 1e-5 : 1e-12;

constexpr double kInf = std::numeric_limits<double>::infinity();

using Scalars = ::testing::Types<float, double>;

#define EXPECT_MESSAGE_HAS(msg, needle) \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos) << "message: " << (msg)

// Position of query i (bottom-right alignment), signed.
long long pos(std::size_t i, std::size_t lq, std::size_t lk) {
  return static_cast<long long>(i) + static_cast<long long>(lk) - static_cast<long long>(lq);
}

// Dense mask from a predicate allowed(i, j).
template <class F>
std::vector<bool> dense_from(std::size_t lq, std::size_t lk, F allowed) {
  std::vector<bool> m(lq * lk);
  for (std::size_t i = 0; i < lq; ++i)
    for (std::size_t j = 0; j < lk; ++j) m[i * lk + j] = allowed(i, j);
  return m;
}

std::size_t count_true(const std::vector<bool>& m) {
  return static_cast<std::size_t>(std::count(m.begin(), m.end(), true));
}

// Every structural claim about a pattern against the dense expectation.
void expect_pattern_is(const ra::sparse_pattern& p, std::size_t lq, std::size_t lk,
                       const std::vector<bool>& expected) {
  ASSERT_EQ(p.rows(), lq);
  ASSERT_EQ(p.cols(), lk);
  EXPECT_NO_THROW(p.validate());
  const auto got = p.to_dense();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < lq; ++i)
    for (std::size_t j = 0; j < lk; ++j)
      ASSERT_EQ(got[i * lk + j], expected[i * lk + j]) << "row " << i << " key " << j;
  const std::size_t count = count_true(expected);
  EXPECT_EQ(p.nnz(), count);
  const double density =
      lq * lk == 0 ? 0.0 : static_cast<double>(count) / (static_cast<double>(lq) * lk);
  EXPECT_DOUBLE_EQ(p.density(), density);
  std::size_t max_row = 0;
  for (std::size_t i = 0; i < lq; ++i) max_row = std::max(max_row, p.row_size(i));
  EXPECT_EQ(p.max_row_size(), max_row);
}

// The oracle's additive bias for a dense allowed-mask: 0 where allowed, −inf elsewhere.
orc::dmat bias_from(const std::vector<bool>& allowed, std::size_t lq, std::size_t lk) {
  orc::dmat b(lq, lk, 0.0);
  for (std::size_t i = 0; i < lq * lk; ++i)
    if (!allowed[i]) b.a[i] = -kInf;
  return b;
}

struct kernel_case {
  bool causal = false;
  std::vector<bool> key_mask{};  // empty = none
  std::optional<double> scale{};
};

// Library vs oracle (output, log-sum-exp and weights) for one pattern.
template <class T>
void check_kernel(const ra::sparse_pattern& p, std::size_t d, std::size_t dv, std::uint64_t seed,
                  const kernel_case& c = {}) {
  const std::size_t lq = p.rows(), lk = p.cols();
  SCOPED_TRACE(::testing::Message()
               << "Lq=" << lq << " Lk=" << lk << " d=" << d << " dv=" << dv << " nnz=" << p.nnz()
               << " causal=" << c.causal << " masked=" << !c.key_mask.empty());
  const auto q = orc::rounded<T>(orc::random_matrix(lq, d, seed));
  const auto k = orc::rounded<T>(orc::random_matrix(lk, d, seed + 1));
  const auto v = orc::rounded<T>(orc::random_matrix(lk, dv, seed + 2));
  const double scale = c.scale ? static_cast<double>(static_cast<T>(*c.scale))
                               : static_cast<double>(T(1) / std::sqrt(static_cast<T>(d)));
  const auto ref = orc::reference_attention(q, k, v, scale, c.causal, c.key_mask,
                                            bias_from(p.to_dense(), lq, lk));

  ra::row_matrix<T> out(static_cast<Eigen::Index>(lq), static_cast<Eigen::Index>(dv));
  out.setConstant(T(123));  // must be fully overwritten
  std::vector<T> lse(lq, T(7)), weights(p.nnz(), T(7));
  const std::unique_ptr<bool[]> mask(new bool[std::max<std::size_t>(c.key_mask.size(), 1)]);
  std::copy(c.key_mask.begin(), c.key_mask.end(), mask.get());
  ra::sparse_attention_options<T> opt;
  if (c.scale) opt.scale = static_cast<T>(*c.scale);
  opt.causal = c.causal;
  if (!c.key_mask.empty()) opt.key_mask = std::span<const bool>(mask.get(), c.key_mask.size());
  ra::sparse_attention(to_eigen<T>(q), to_eigen<T>(k), to_eigen<T>(v), p, out, opt,
                       ra::sparse_attention_extras<T>{.lse = lse, .weights = weights});

  std::vector<double> got_out(lq * dv);
  for (std::size_t i = 0; i < lq; ++i)
    for (std::size_t e = 0; e < dv; ++e)
      got_out[i * dv + e] =
          static_cast<double>(out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e)));
  EXPECT_LE(orc::max_mixed_error(got_out, ref.out.a), kTol<T>);
  EXPECT_LE(orc::max_mixed_error(lse, ref.lse), kTol<T>);
  // Weights come in pattern order; scatter them into the dense layout.
  std::vector<double> dense_w(lq * lk, 0.0);
  for (std::size_t i = 0; i < lq; ++i) {
    const auto row = p.row(i);
    for (std::size_t t = 0; t < row.size(); ++t)
      dense_w[i * lk + row[t]] = static_cast<double>(weights[p.row_ptr()[i] + t]);
  }
  EXPECT_LE(orc::max_mixed_error(dense_w, ref.weights.a), kTol<T>);
  // Rows with nothing visible: exact zeros and −inf.
  for (std::size_t i = 0; i < lq; ++i) {
    if (ref.lse[i] == -kInf) {
      EXPECT_EQ(lse[i], -std::numeric_limits<T>::infinity()) << i;
      for (std::size_t e = 0; e < dv; ++e)
        EXPECT_EQ(out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e)), T(0)) << i;
    }
  }
}

// ================================================================================================
// sparse_pattern: representation, validation, COO
// ================================================================================================

TEST(SparsePattern, DefaultIsEmptyAndValid) {
  const ra::sparse_pattern p;
  EXPECT_EQ(p.rows(), 0u);
  EXPECT_EQ(p.cols(), 0u);
  EXPECT_EQ(p.nnz(), 0u);
  EXPECT_EQ(p.density(), 0.0);
  EXPECT_EQ(p.max_row_size(), 0u);
  EXPECT_NO_THROW(p.validate());
  EXPECT_TRUE(p.to_dense().empty());
  ASSERT_EQ(p.row_ptr().size(), 1u);
}

TEST(SparsePattern, CsrAccessorsAndContains) {
  const ra::sparse_pattern p(3, 5, {0, 2, 2, 5}, {1, 4, 0, 2, 3});
  EXPECT_EQ(p.nnz(), 5u);
  EXPECT_DOUBLE_EQ(p.density(), 5.0 / 15.0);
  EXPECT_EQ(p.row_size(0), 2u);
  EXPECT_EQ(p.row_size(1), 0u);  // an empty row is legal
  EXPECT_EQ(p.max_row_size(), 3u);
  EXPECT_EQ(std::vector<std::size_t>(p.row(2).begin(), p.row(2).end()),
            (std::vector<std::size_t>{0, 2, 3}));
  EXPECT_TRUE(p.contains(0, 4));
  EXPECT_FALSE(p.contains(0, 3));
  EXPECT_FALSE(p.contains(1, 0));
  EXPECT_FALSE(p.contains(3, 0));  // out of range → false, not UB
  const auto dense = p.to_dense();
  EXPECT_EQ(count_true(dense), 5u);
  EXPECT_TRUE(dense[0 * 5 + 1] && dense[0 * 5 + 4] && dense[2 * 5 + 0] && dense[2 * 5 + 3]);
  EXPECT_EQ(ra::sparse_pattern::from_rows(5, {{1, 4}, {}, {0, 2, 3}}), p);
}

TEST(SparsePattern, ValidationErrorsNameTheRowAndEntry) {
  using P = ra::sparse_pattern;
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([] {
                       P(3, 4, {0, 1, 2}, {0, 1});
                     }),
                     "row_ptr.size()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([] {
                       P(1, 4, {1, 1}, {0});
                     }),
                     "row_ptr[0] is 1");
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([] {
                       P(3, 4, {0, 2, 1, 3}, {0, 1, 2});
                     }),
                     "row 1");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([] {
                       P(2, 4, {0, 1, 2}, {0, 1, 2});
                     }),
                     "col_idx.size()");
  {
    const auto msg = thrown_message<ra::invalid_argument>([] { P(2, 4, {0, 1, 3}, {0, 1, 4}); });
    EXPECT_MESSAGE_HAS(msg, "row 1, entry 1");
    EXPECT_MESSAGE_HAS(msg, "col_idx[2]) = 4");
    EXPECT_MESSAGE_HAS(msg, "< cols = 4");
  }
  {
    const auto msg = thrown_message<ra::invalid_argument>([] { P(2, 9, {0, 1, 4}, {0, 5, 3, 8}); });
    EXPECT_MESSAGE_HAS(msg, "row 1, entry 1");
    EXPECT_MESSAGE_HAS(msg, "sorted");
  }
  {
    const auto msg = thrown_message<ra::invalid_argument>([] { P(1, 9, {0, 3}, {2, 6, 6}); });
    EXPECT_MESSAGE_HAS(msg, "row 0, entry 2");
    EXPECT_MESSAGE_HAS(msg, "duplicate");
  }
  EXPECT_MESSAGE_HAS(thrown_message<ra::invalid_argument>([] {
                       (void)P::from_rows(3, {{0}, {2, 1}});
                     }),
                     "row 1, entry 1");
  EXPECT_THROW((void)P::from_coo(ra::max_sequence_length + 1, 1, {}), ra::input_too_large);
  EXPECT_THROW((void)ra::make_window_pattern(1, ra::max_sequence_length + 1, 1),
               ra::input_too_large);
  // Every error is a ruvector::attention::error.
  EXPECT_THROW(P(1, 1, {0, 1}, {1}), ra::error);
}

TEST(SparsePattern, CooSortsDeduplicatesAndNamesBadPairs) {
  const std::vector<std::pair<std::size_t, std::size_t>> coo{{2, 3}, {0, 1}, {2, 0}, {0, 1},
                                                             {2, 3}, {0, 0}, {3, 4}, {2, 2}};
  const auto p = ra::sparse_pattern::from_coo(5, 6, coo);
  expect_pattern_is(p, 5, 6, dense_from(5, 6, [&](std::size_t i, std::size_t j) {
                      return std::find(coo.begin(), coo.end(), std::pair{i, j}) != coo.end();
                    }));
  EXPECT_EQ(p.row_size(1), 0u);
  EXPECT_EQ(p.row_size(4), 0u);
  EXPECT_EQ(p, ra::sparse_pattern::from_rows(6, {{0, 1}, {}, {0, 2, 3}, {4}, {}}));
  EXPECT_EQ(ra::sparse_pattern::from_coo(2, 2, {}).nnz(), 0u);
  {
    const std::vector<std::pair<std::size_t, std::size_t>> bad{{0, 1}, {1, 1}, {1, 6}};
    const auto msg = thrown_message<ra::invalid_argument>(
        [&] { (void)ra::sparse_pattern::from_coo(5, 6, bad); });
    EXPECT_MESSAGE_HAS(msg, "entry 2 = (1, 6)");
    EXPECT_MESSAGE_HAS(msg, "column must be < 6");
  }
  {
    const std::vector<std::pair<std::size_t, std::size_t>> bad{{5, 0}};
    const auto msg = thrown_message<ra::invalid_argument>(
        [&] { (void)ra::sparse_pattern::from_coo(5, 6, bad); });
    EXPECT_MESSAGE_HAS(msg, "entry 0 = (5, 0)");
    EXPECT_MESSAGE_HAS(msg, "row must be < 5");
  }
}

// ================================================================================================
// Generators vs brute-force predicates
// ================================================================================================

struct shape {
  std::size_t lq, lk;
};
const shape kShapes[] = {{0, 0}, {1, 1}, {1, 9}, {5, 5}, {7, 12}, {12, 7}, {16, 16}, {33, 33}};

TEST(SparseGenerators, WindowMatchesDefinition) {
  for (const auto s : kShapes)
    for (const std::size_t w : {0u, 1u, 3u, 100u})
      for (const bool causal : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "lq=" << s.lq << " lk=" << s.lk << " w=" << w << " causal=" << causal);
        expect_pattern_is(ra::make_window_pattern(s.lq, s.lk, w, causal), s.lq, s.lk,
                          dense_from(s.lq, s.lk, [&](std::size_t i, std::size_t j) {
                            const long long delta = pos(i, s.lq, s.lk) - static_cast<long long>(j);
                            return std::llabs(delta) <= static_cast<long long>(w) &&
                                   (!causal || delta >= 0);
                          }));
      }
  // A huge window is dense (no overflow in the position arithmetic).
  EXPECT_EQ(ra::make_window_pattern(9, 9, std::numeric_limits<std::size_t>::max()),
            ra::make_dense_pattern(9, 9));
}

TEST(SparseGenerators, CausalAndDenseMatchDefinition) {
  for (const auto s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "lq=" << s.lq << " lk=" << s.lk);
    expect_pattern_is(ra::make_causal_pattern(s.lq, s.lk), s.lq, s.lk,
                      dense_from(s.lq, s.lk, [&](std::size_t i, std::size_t j) {
                        return static_cast<long long>(j) <= pos(i, s.lq, s.lk);
                      }));
    expect_pattern_is(ra::make_dense_pattern(s.lq, s.lk), s.lq, s.lk,
                      std::vector<bool>(s.lq * s.lk, true));
  }
}

TEST(SparseGenerators, StridedMatchesDefinition) {
  const std::size_t unbounded = std::numeric_limits<std::size_t>::max();
  for (const auto s : kShapes)
    for (const std::size_t stride : {1u, 2u, 3u, 5u})
      for (const std::size_t local : {0u, 1u, 4u})
        for (const std::size_t window : {std::size_t{0}, std::size_t{6}, unbounded})
          for (const bool causal : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << "lq=" << s.lq << " lk=" << s.lk << " stride=" << stride
                         << " local=" << local << " window=" << window << " causal=" << causal);
            const ra::strided_pattern_options o{
                .stride = stride, .window = window, .local = local, .causal = causal};
            expect_pattern_is(ra::make_strided_pattern(s.lq, s.lk, o), s.lq, s.lk,
                              dense_from(s.lq, s.lk, [&](std::size_t i, std::size_t j) {
                                const long long delta =
                                    pos(i, s.lq, s.lk) - static_cast<long long>(j);
                                const auto dist = static_cast<std::size_t>(std::llabs(delta));
                                if (causal && delta < 0) return false;
                                return dist <= local || (dist % stride == 0 && dist <= window);
                              }));
          }
  EXPECT_THROW((void)ra::make_strided_pattern(4, 4, {.stride = 0}), ra::invalid_argument);
}

// Child et al. 2019's strided attention is the union of two heads: "previous l positions"
// (i − j < l) and "every l-th position" ((i − j) mod l = 0), both causal.
TEST(SparseGenerators, StridedReproducesChildEtAlTwoHeadUnion) {
  const std::size_t n = 40, l = 6;
  const auto combined =
      ra::make_strided_pattern(n, n, {.stride = l, .local = l - 1, .causal = true});
  const auto head_a = ra::make_window_pattern(n, n, l - 1, /*causal=*/true);
  const auto head_b = ra::make_strided_pattern(n, n, {.stride = l, .causal = true});
  EXPECT_EQ(combined, head_a | head_b);
  // Longformer's dilated window: w = 3 taps each side with dilation 2.
  const auto dilated = ra::make_strided_pattern(n, n, {.stride = 2, .window = 6});
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const auto dist = static_cast<std::size_t>(
          std::llabs(static_cast<long long>(i) - static_cast<long long>(j)));
      EXPECT_EQ(dilated.contains(i, j), dist % 2 == 0 && dist <= 6) << i << " " << j;
    }
}

TEST(SparseGenerators, GlobalMatchesDefinition) {
  const std::vector<std::size_t> globals{4, 0, 4, 2};  // unsorted with a duplicate
  for (const auto s : kShapes) {
    if (s.lk <= 4) continue;
    for (const bool causal : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "lq=" << s.lq << " lk=" << s.lk << " causal=" << causal);
      expect_pattern_is(ra::make_global_pattern(s.lq, s.lk, globals, causal), s.lq, s.lk,
                        dense_from(s.lq, s.lk, [&](std::size_t i, std::size_t j) {
                          const long long p = pos(i, s.lq, s.lk);
                          const auto is_global = [&](long long x) {
                            return x == 0 || x == 2 || x == 4;
                          };
                          if (causal && static_cast<long long>(j) > p) return false;
                          return is_global(p) || is_global(static_cast<long long>(j));
                        }));
    }
  }
  const std::vector<std::size_t> bad{1, 9};
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::invalid_argument>([&] { (void)ra::make_global_pattern(3, 9, bad); }),
      "global_positions[1] = 9");
}

// The one-pass Longformer generator equals the union of its two parts (which are checked against
// the definition above), for every shape, window, global set and causal flag.
TEST(SparseGenerators, LocalGlobalEqualsWindowUnionGlobal) {
  const std::vector<std::size_t> none{}, first{0}, several{5, 0, 3, 3};
  for (const auto s : kShapes) {
    for (const std::size_t w : {0u, 2u, 50u})
      for (const auto* g : {&none, &first, &several})
        for (const bool causal : {false, true}) {
          if (!g->empty() && *std::max_element(g->begin(), g->end()) >= s.lk) continue;
          SCOPED_TRACE(::testing::Message() << "lq=" << s.lq << " lk=" << s.lk << " w=" << w
                                            << " g=" << g->size() << " causal=" << causal);
          const auto p = ra::make_local_global_pattern(s.lq, s.lk, w, *g, causal);
          EXPECT_NO_THROW(p.validate());
          EXPECT_EQ(p, ra::make_window_pattern(s.lq, s.lk, w, causal) |
                           ra::make_global_pattern(s.lq, s.lk, *g, causal));
        }
  }
  EXPECT_THROW((void)ra::make_local_global_pattern(4, 4, 1, several), ra::invalid_argument);
}

// BigBird without random blocks: the window/global block rule, brute force.
TEST(SparseGenerators, BlockSparseWindowAndGlobalMatchDefinition) {
  for (const std::size_t n : {1u, 5u, 16u, 17u, 50u})
    for (const std::size_t b : {1u, 4u, 7u})
      for (const std::size_t wb : {0u, 1u, 2u})
        for (const std::size_t gb : {0u, 1u, 2u})
          for (const bool causal : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "n=" << n << " b=" << b << " wb=" << wb
                                              << " gb=" << gb << " causal=" << causal);
            const ra::block_sparse_options o{.block_size = b,
                                             .window_blocks = wb,
                                             .global_blocks = gb,
                                             .random_blocks = 0,
                                             .causal = causal};
            expect_pattern_is(ra::make_block_sparse_pattern(n, n, o), n, n,
                              dense_from(n, n, [&](std::size_t i, std::size_t j) {
                                const std::size_t I = i / b, J = j / b;
                                const std::size_t gap = I > J ? I - J : J - I;
                                if (causal && j > i) return false;
                                return gap <= wb || I < gb || J < gb;
                              }));
          }
}

// The random blocks: for each block row, exactly min(r, #candidates) extra whole blocks, all
// outside the window and the globals; rows of one block row share them; the same seed gives the
// same pattern and a different seed (almost surely) a different one.
TEST(SparseGenerators, BlockSparseRandomBlocksAreSeededAndWellFormed) {
  const std::size_t n = 203, b = 8, nb = (n + b - 1) / b;  // 26 blocks, the last one partial
  for (const bool causal : {false, true}) {
    SCOPED_TRACE(causal);
    const ra::block_sparse_options o{.block_size = b,
                                     .window_blocks = 1,
                                     .global_blocks = 2,
                                     .random_blocks = 3,
                                     .seed = 42,
                                     .causal = causal};
    const auto p = ra::make_block_sparse_pattern(n, n, o);
    EXPECT_NO_THROW(p.validate());
    EXPECT_EQ(p, ra::make_block_sparse_pattern(n, n, o));
    auto o2 = o;
    o2.seed = 43;
    EXPECT_NE(p, ra::make_block_sparse_pattern(n, n, o2));
    for (std::size_t I = 0; I < nb; ++I) {
      // Key blocks of the block row's last query (the one that sees the most under causal).
      const std::size_t i_last = std::min(n, (I + 1) * b) - 1;
      std::vector<std::size_t> blocks;
      for (const std::size_t j : p.row(i_last))
        if (blocks.empty() || blocks.back() != j / b) blocks.push_back(j / b);
      std::size_t random = 0, candidates = 0;
      for (std::size_t J = 0; J < nb; ++J) {
        const bool structural = (I > J ? I - J : J - I) <= 1 || I < 2 || J < 2;
        const bool allowed_random = !structural && (!causal || J < I);
        candidates += allowed_random ? 1 : 0;
        const bool listed = std::find(blocks.begin(), blocks.end(), J) != blocks.end();
        if (structural && (!causal || J <= I)) {
          EXPECT_TRUE(listed) << "I=" << I << " J=" << J;
        }
        if (listed && !structural) {
          EXPECT_TRUE(allowed_random) << "I=" << I << " J=" << J;
          ++random;
        }
      }
      if (I >= 2) {
        EXPECT_EQ(random, std::min<std::size_t>(3, candidates)) << "I=" << I;
      }
      // Whole blocks, and every query of the block row lists the same keys (causal: a prefix).
      for (std::size_t i = I * b; i <= i_last; ++i) {
        for (const std::size_t j : p.row(i)) {
          if (causal && j > i) ADD_FAILURE() << "causal violated at " << i << "," << j;
          EXPECT_TRUE(p.contains(i_last, j));
        }
        if (!causal) {
          EXPECT_EQ(p.row_size(i), p.row_size(i_last));
        }
      }
    }
  }
}

// The same seed gives this exact pattern on every platform (ra::rng is specified bit for bit and
// the sampling uses only rng::below). A change here means every stored BigBird pattern changes.
TEST(SparseGenerators, BlockSparseGoldenPattern) {
  const ra::block_sparse_options o{
      .block_size = 2, .window_blocks = 0, .global_blocks = 1, .random_blocks = 1, .seed = 7};
  // Block rows 1..5 draw the random blocks 4, 3, 5, 5, 4.
  EXPECT_EQ(ra::make_block_sparse_pattern(12, 12, o),
            ra::sparse_pattern::from_rows(12, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
                                               {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
                                               {0, 1, 2, 3, 8, 9},
                                               {0, 1, 2, 3, 8, 9},
                                               {0, 1, 4, 5, 6, 7},
                                               {0, 1, 4, 5, 6, 7},
                                               {0, 1, 6, 7, 10, 11},
                                               {0, 1, 6, 7, 10, 11},
                                               {0, 1, 8, 9, 10, 11},
                                               {0, 1, 8, 9, 10, 11},
                                               {0, 1, 8, 9, 10, 11},
                                               {0, 1, 8, 9, 10, 11}}));
}

// A decoding query (Lq = 1) gets exactly the last row of the full pattern, and Lq < Lk queries
// the last Lq rows: the position convention holds for every generator.
TEST(SparseGenerators, FewerQueriesTakeTheLastRows) {
  const std::size_t n = 37;
  const auto check = [&](const char* name, auto make) {
    SCOPED_TRACE(name);
    const ra::sparse_pattern full = make(n, n);
    for (const std::size_t lq : {1u, 5u, 36u}) {
      const ra::sparse_pattern part = make(lq, n);
      ASSERT_EQ(part.rows(), lq);
      for (std::size_t i = 0; i < lq; ++i) {
        const auto a = part.row(i), b = full.row(n - lq + i);
        EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end()))
            << "lq=" << lq << " i=" << i;
      }
    }
  };
  check("window",
        [](std::size_t lq, std::size_t lk) { return ra::make_window_pattern(lq, lk, 3, true); });
  check("strided", [](std::size_t lq, std::size_t lk) {
    return ra::make_strided_pattern(lq, lk, {.stride = 4, .local = 2, .causal = true});
  });
  check("global", [](std::size_t lq, std::size_t lk) {
    const std::vector<std::size_t> g{0, 30};
    return ra::make_global_pattern(lq, lk, g);
  });
  check("bigbird", [](std::size_t lq, std::size_t lk) {
    return ra::make_block_sparse_pattern(
        lq, lk,
        {.block_size = 4, .window_blocks = 1, .global_blocks = 1, .random_blocks = 2, .seed = 3});
  });
  check("causal", [](std::size_t lq, std::size_t lk) { return ra::make_causal_pattern(lq, lk); });
  EXPECT_THROW((void)ra::make_block_sparse_pattern(5, 4, {}), ra::invalid_argument);
  EXPECT_THROW((void)ra::make_block_sparse_pattern(4, 4, {.block_size = 0}), ra::invalid_argument);
}

TEST(SparseGenerators, UnionAndIntersectionMatchDenseLogic) {
  const std::size_t lq = 20, lk = 23;
  const auto a = ra::make_window_pattern(lq, lk, 2);
  const auto b = ra::make_strided_pattern(lq, lk, {.stride = 5});
  const std::vector<std::pair<std::size_t, std::size_t>> coo{{0, 22}, {3, 3}, {19, 0}, {7, 12}};
  const auto c = ra::sparse_pattern::from_coo(lq, lk, coo);
  const auto da = a.to_dense(), db = b.to_dense(), dc = c.to_dense();
  expect_pattern_is(a | b | c, lq, lk, dense_from(lq, lk, [&](std::size_t i, std::size_t j) {
                      return da[i * lk + j] || db[i * lk + j] || dc[i * lk + j];
                    }));
  expect_pattern_is(ra::pattern_intersection(a, b), lq, lk,
                    dense_from(lq, lk, [&](std::size_t i, std::size_t j) {
                      return da[i * lk + j] && db[i * lk + j];
                    }));
  EXPECT_EQ((a & ra::make_causal_pattern(lq, lk)), ra::make_window_pattern(lq, lk, 2, true));
  EXPECT_EQ(a | a, a);
  EXPECT_EQ(ra::pattern_union(a, ra::sparse_pattern::from_coo(lq, lk, {})), a);
  const auto msg = thrown_message<ra::dimension_mismatch>(
      [&] { (void)ra::pattern_union(a, ra::make_window_pattern(lq, lk + 1, 2)); });
  EXPECT_MESSAGE_HAS(msg, "pattern_union");
  EXPECT_THROW((void)(a & ra::make_window_pattern(lq + 1, lk, 2)), ra::dimension_mismatch);
}

// ================================================================================================
// Top-k
// ================================================================================================

// Brute force: sort candidates by (score desc, index asc), keep k, return sorted by index.
std::vector<std::size_t> brute_topk(const orc::dmat& q, const orc::dmat& k, std::size_t i,
                                    std::size_t topk, double scale, std::size_t candidates) {
  std::vector<std::pair<double, std::size_t>> s;
  for (std::size_t j = 0; j < candidates; ++j) {
    double dot = 0;
    for (std::size_t c = 0; c < q.cols; ++c) dot += q(i, c) * k(j, c);
    s.emplace_back(scale * dot, j);
  }
  std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  std::vector<std::size_t> out;
  for (std::size_t t = 0; t < std::min(topk, s.size()); ++t) out.push_back(s[t].second);
  std::sort(out.begin(), out.end());
  return out;
}

template <class T>
class SparseTopk : public ::testing::Test {};
TYPED_TEST_SUITE(SparseTopk, Scalars);

// Small integers: every score is exact in float and double and there are many exact ties, so the
// library must reproduce the brute-force choice exactly, tie-breaking included.
TYPED_TEST(SparseTopk, PicksExactlyTheKLargestWithLowIndexTieBreak) {
  using T = TypeParam;
  const std::size_t lq = 13, lk = 29, d = 5;
  std::mt19937_64 gen(5);
  std::uniform_int_distribution<int> dist(-2, 2);
  orc::dmat q(lq, d), k(lk, d);
  for (auto& x : q.a) x = dist(gen);
  for (auto& x : k.a) x = dist(gen);
  for (const std::size_t topk : {0u, 1u, 4u, 28u, 29u, 40u})
    for (const bool causal : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "k=" << topk << " causal=" << causal);
      const auto p = ra::make_topk_pattern(to_eigen<T>(q), to_eigen<T>(k), topk,
                                           {.scale = T(1), .causal = causal});
      EXPECT_NO_THROW(p.validate());
      for (std::size_t i = 0; i < lq; ++i) {
        const std::size_t cand = causal ? static_cast<std::size_t>(pos(i, lq, lk)) + 1 : lk;
        const auto expected = brute_topk(q, k, i, topk, 1.0, cand);
        const auto row = p.row(i);
        EXPECT_EQ(std::vector<std::size_t>(row.begin(), row.end()), expected) << "row " << i;
      }
    }
}

TYPED_TEST(SparseTopk, RandomScoresSeparateChosenFromRest) {
  using T = TypeParam;
  const std::size_t lq = 17, lk = 150, d = 24, topk = 10;
  const auto q = orc::rounded<T>(orc::random_matrix(lq, d, 31));
  const auto k = orc::rounded<T>(orc::random_matrix(lk, d, 32));
  const auto p = ra::make_topk_pattern<T>(to_eigen<T>(q), to_eigen<T>(k), topk);
  EXPECT_EQ(p.nnz(), lq * topk);
  for (std::size_t i = 0; i < lq; ++i) {
    // The chosen set equals the brute-force set: the gap between the k-th and (k+1)-th largest
    // double score is asserted to exceed 1e-4, far above the float rounding of a score (~1e-6),
    // so float and double rank the boundary identically.
    std::vector<double> s(lk);
    for (std::size_t j = 0; j < lk; ++j)
      for (std::size_t c = 0; c < d; ++c) s[j] += q(i, c) * k(j, c);
    std::sort(s.begin(), s.end(), std::greater<>());
    ASSERT_GT(s[topk - 1] - s[topk], 1e-4) << "row " << i << ": pick another seed";
    const auto expected = brute_topk(q, k, i, topk, 1.0, lk);
    const auto row = p.row(i);
    EXPECT_EQ(std::vector<std::size_t>(row.begin(), row.end()), expected) << "row " << i;
  }
  // A negative scale selects the smallest dot products.
  const auto neg = ra::make_topk_pattern(to_eigen<T>(q), to_eigen<T>(k), topk, {.scale = T(-1)});
  for (std::size_t i = 0; i < lq; ++i) {
    const auto expected = brute_topk(q, k, i, topk, -1.0, lk);
    const auto row = neg.row(i);
    EXPECT_EQ(std::vector<std::size_t>(row.begin(), row.end()), expected) << "row " << i;
  }
}

TYPED_TEST(SparseTopk, ErrorsNameTheArgument) {
  using T = TypeParam;
  auto Q = to_eigen<T>(orc::random_matrix(3, 4, 1));
  auto K = to_eigen<T>(orc::random_matrix(6, 4, 2));
  K(5, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)ra::make_topk_pattern(Q, K, 2); }),
      "k[5][1]");
  K(5, 1) = T(0);
  Q(2, 3) = std::numeric_limits<T>::infinity();
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { (void)ra::make_topk_pattern(Q, K, 2); }),
      "q[2][3]");
  const auto K5 = to_eigen<T>(orc::random_matrix(6, 5, 2));
  EXPECT_THROW((void)ra::make_topk_pattern(Q, K5, 2), ra::dimension_mismatch);
}

// ================================================================================================
// The kernel vs the oracle, for every pattern kind
// ================================================================================================

template <class T>
class SparseKernel : public ::testing::Test {};
TYPED_TEST_SUITE(SparseKernel, Scalars);

TYPED_TEST(SparseKernel, WindowAndCausalWindow) {
  using T = TypeParam;
  for (const auto s : kShapes)
    for (const std::size_t w : {0u, 2u, 9u})
      for (const bool causal : {false, true})
        check_kernel<T>(ra::make_window_pattern(s.lq, s.lk, w, causal), 8, 5, 100 + s.lq + w);
}

TYPED_TEST(SparseKernel, StridedAndDilated) {
  using T = TypeParam;
  check_kernel<T>(ra::make_strided_pattern(64, 64, {.stride = 8, .local = 7, .causal = true}), 16,
                  16, 1);
  check_kernel<T>(ra::make_strided_pattern(50, 61, {.stride = 3, .window = 12, .local = 1}), 33, 7,
                  2);
  check_kernel<T>(ra::make_strided_pattern(1, 40, {.stride = 5}), 9, 3, 3);
}

TYPED_TEST(SparseKernel, BlockSparseBigBird) {
  using T = TypeParam;
  // n = 100 is not a multiple of the block size 16 (the last block holds 4 keys).
  for (const bool causal : {false, true})
    check_kernel<T>(ra::make_block_sparse_pattern(100, 100,
                                                  {.block_size = 16,
                                                   .window_blocks = 1,
                                                   .global_blocks = 1,
                                                   .random_blocks = 2,
                                                   .seed = 11,
                                                   .causal = causal}),
                    32, 24, 4);
  // Lq < Lk: the last 30 positions.
  check_kernel<T>(ra::make_block_sparse_pattern(30, 77, {.block_size = 7, .random_blocks = 1}), 12,
                  12, 5);
}

TYPED_TEST(SparseKernel, GlobalCooTopkAndUnions) {
  using T = TypeParam;
  const std::vector<std::size_t> g{0, 17};
  check_kernel<T>(ra::make_global_pattern(40, 40, g), 8, 8, 6);
  // COO with empty rows (1, 4): those rows must come out as zeros with lse −inf.
  const std::vector<std::pair<std::size_t, std::size_t>> coo{{0, 3}, {2, 0}, {2, 9}, {3, 4},
                                                             {3, 3}, {5, 1}, {2, 9}};
  check_kernel<T>(ra::sparse_pattern::from_coo(6, 10, coo), 6, 4, 7);
  // Top-k over its own scores, then a union with a local window (a common "routing + local" mix).
  const auto q = to_eigen<T>(orc::rounded<T>(orc::random_matrix(30, 10, 8)));
  const auto k = to_eigen<T>(orc::rounded<T>(orc::random_matrix(45, 10, 9)));
  const auto topk = ra::make_topk_pattern(q, k, 5);
  check_kernel<T>(topk, 10, 6, 8);
  check_kernel<T>(topk | ra::make_window_pattern(30, 45, 2), 10, 6, 8);
  check_kernel<T>(ra::make_window_pattern(64, 64, 4) | ra::make_global_pattern(64, 64, g) |
                      ra::make_strided_pattern(64, 64, {.stride = 16}),
                  20, 20, 10);
  // The dense pattern is plain attention; the causal pattern plain causal attention.
  check_kernel<T>(ra::make_dense_pattern(9, 14), 7, 3, 11);
  check_kernel<T>(ra::make_causal_pattern(14, 9), 7, 3, 12);
}

TYPED_TEST(SparseKernel, CausalOptionAndKeyMaskCombinations) {
  using T = TypeParam;
  const std::size_t lq = 24, lk = 31;
  std::vector<bool> mask(lk);
  for (std::size_t j = 0; j < lk; ++j) mask[j] = j % 4 != 2;
  const auto window = ra::make_window_pattern(lq, lk, 5);  // non-causal pattern ...
  const auto bigbird = ra::make_block_sparse_pattern(
      lq, lk, {.block_size = 4, .window_blocks = 1, .global_blocks = 1, .random_blocks = 2});
  for (const auto* p : {&window, &bigbird}) {
    check_kernel<T>(*p, 9, 9, 13, {.causal = true});    // ... made causal by the call
    check_kernel<T>(*p, 9, 9, 14, {.key_mask = mask});  // padding-style key mask
    check_kernel<T>(*p, 9, 9, 15, {.causal = true, .key_mask = mask});  // both
  }
  // A key mask that hides every listed key of some rows: zeros, never NaN.
  std::vector<bool> few(lk, false);
  few[lk - 1] = true;
  check_kernel<T>(window, 9, 9, 16, {.key_mask = few});
  check_kernel<T>(ra::make_window_pattern(lq, lk, 5, true), 9, 9, 17,
                  {.causal = true, .key_mask = mask});  // causal twice is harmless
}

TYPED_TEST(SparseKernel, SingleTokenAndTinyShapes) {
  using T = TypeParam;
  check_kernel<T>(ra::make_window_pattern(1, 1, 0), 1, 1, 18);
  check_kernel<T>(ra::make_window_pattern(1, 1, 3, true), 4, 2, 19);
  check_kernel<T>(ra::make_block_sparse_pattern(1, 1, {.block_size = 8, .random_blocks = 3}), 3, 3,
                  20);
  check_kernel<T>(ra::make_window_pattern(3, 0, 1), 5, 2, 21);  // no keys at all: all rows empty
  check_kernel<T>(ra::make_window_pattern(0, 4, 1), 5, 2, 22);  // no queries
}

TYPED_TEST(SparseKernel, CustomScaleAndWideHeads) {
  using T = TypeParam;
  check_kernel<T>(ra::make_window_pattern(40, 40, 6), 64, 64, 23, {.scale = 0.3});
  check_kernel<T>(ra::make_window_pattern(40, 40, 6), 17, 130, 24, {.scale = -1.5});
  // More than 8 listed keys and d, dv not multiples of any SIMD width exercise every tail.
  check_kernel<T>(ra::make_window_pattern(70, 70, 13), 37, 45, 25);
}

// The cost claim: the kernel reads only listed keys and values. Keys/values that no row lists
// (and listed keys beyond the causal limit) are NaN; the output still matches the oracle run on
// clean data, with check_finite on or off — a dense implementation would produce NaN or throw.
TYPED_TEST(SparseKernel, NeverReadsKeysOutsideThePattern) {
  using T = TypeParam;
  const std::size_t n = 48, d = 12, dv = 10;
  // A strided pattern with every key j ≡ 3 (mod 7) removed from every row.
  const auto keep = ra::sparse_pattern::from_rows(n, [&] {
    std::vector<std::vector<ra::sparse_pattern::index_type>> rows(n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        if (j % 7 != 3) rows[i].push_back(static_cast<ra::sparse_pattern::index_type>(j));
    return rows;
  }());
  const auto p = ra::make_strided_pattern(n, n, {.stride = 6, .window = 12, .local = 1}) & keep;
  std::vector<bool> listed(n, false);
  for (const std::size_t j : p.col_idx()) listed[j] = true;
  ASSERT_GE(std::count(listed.begin(), listed.end(), false), 7);

  const auto q = orc::rounded<T>(orc::random_matrix(n, d, 40));
  const auto k = orc::rounded<T>(orc::random_matrix(n, d, 41));
  const auto v = orc::rounded<T>(orc::random_matrix(n, dv, 42));
  const double scale = static_cast<double>(T(1) / std::sqrt(static_cast<T>(d)));
  const auto ref =
      orc::reference_attention(q, k, v, scale, false, {}, bias_from(p.to_dense(), n, n));
  const auto Q = to_eigen<T>(q);
  auto K = to_eigen<T>(k), V = to_eigen<T>(v);
  for (std::size_t j = 0; j < n; ++j) {
    if (!listed[j]) {
      K.row(static_cast<Eigen::Index>(j)).setConstant(std::numeric_limits<T>::quiet_NaN());
      V.row(static_cast<Eigen::Index>(j)).setConstant(std::numeric_limits<T>::quiet_NaN());
    }
  }
  for (const bool check : {false, true}) {
    ra::row_matrix<T> out(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
    ra::sparse_attention(Q, K, V, p, out, {.check_finite = check});
    ASSERT_TRUE(out.allFinite());
    const std::vector<double> got(out.data(), out.data() + n * dv);
    EXPECT_LE(orc::max_mixed_error(got, ref.out.a), kTol<T>);
  }
  // Causal: a non-causal window lists keys j > i; with causal = true they are not read. Row i is
  // computed with every key after i poisoned (other rows may then be NaN; only row i is checked).
  const auto window = ra::make_window_pattern(n, n, 3);
  const auto ref_c =
      orc::reference_attention(q, k, v, scale, true, {}, bias_from(window.to_dense(), n, n));
  for (std::size_t i = 0; i < n; ++i) {
    auto K2 = to_eigen<T>(k), V2 = to_eigen<T>(v);
    for (std::size_t j = i + 1; j < n; ++j) {
      K2.row(static_cast<Eigen::Index>(j)).setConstant(std::numeric_limits<T>::quiet_NaN());
      V2.row(static_cast<Eigen::Index>(j)).setConstant(std::numeric_limits<T>::quiet_NaN());
    }
    ra::row_matrix<T> out(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
    ra::sparse_attention(Q, K2, V2, window, out, {.causal = true, .check_finite = false});
    std::vector<double> got(dv);
    for (std::size_t e = 0; e < dv; ++e)
      got[e] = static_cast<double>(out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e)));
    EXPECT_LE(orc::max_mixed_error(got, ref_c.out.row(i)), kTol<T>) << "row " << i;
  }
}

TYPED_TEST(SparseKernel, NonFiniteInputsNameTheArgument) {
  using T = TypeParam;
  const std::size_t n = 20, d = 6, dv = 5;
  const auto p = ra::make_window_pattern(n, n, 2);
  const auto Q0 = to_eigen<T>(orc::random_matrix(n, d, 50));
  const auto K0 = to_eigen<T>(orc::random_matrix(n, d, 51));
  const auto V0 = to_eigen<T>(orc::random_matrix(n, dv, 52));
  ra::row_matrix<T> out(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
  for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "bad = " << bad);
    auto Q = Q0;
    Q(7, 4) = bad;
    EXPECT_MESSAGE_HAS(
        thrown_message<ra::non_finite_input>([&] { ra::sparse_attention(Q, K0, V0, p, out); }),
        "q[7][4]");
    auto K = K0;
    K(11, 0) = bad;
    EXPECT_MESSAGE_HAS(
        thrown_message<ra::non_finite_input>([&] { ra::sparse_attention(Q0, K, V0, p, out); }),
        "k[11][0]");
    auto V = V0;
    V(3, 2) = bad;
    EXPECT_MESSAGE_HAS(
        thrown_message<ra::non_finite_input>([&] { ra::sparse_attention(Q0, K0, V, p, out); }),
        "v[3][2]");
  }
  // Finite inputs whose scores overflow are reported as such.
  auto Qbig = Q0, Kbig = K0;
  Qbig.setConstant(std::numeric_limits<T>::max() / T(4));
  Kbig.setConstant(T(8));
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { ra::sparse_attention(Qbig, Kbig, V0, p, out); }),
      "overflowed");
}

TYPED_TEST(SparseKernel, ShapeErrors) {
  using T = TypeParam;
  const auto Q = to_eigen<T>(orc::random_matrix(5, 4, 1));
  const auto K = to_eigen<T>(orc::random_matrix(6, 4, 2));
  const auto V = to_eigen<T>(orc::random_matrix(6, 3, 3));
  const auto p = ra::make_window_pattern(5, 6, 1);
  ra::row_matrix<T> out(5, 3);
  EXPECT_NO_THROW(ra::sparse_attention(Q, K, V, p, out));
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       ra::sparse_attention(Q, K, V, ra::make_window_pattern(5, 7, 1), out);
                     }),
                     "pattern.cols()");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       ra::sparse_attention(Q, K, V, ra::make_window_pattern(6, 6, 1), out);
                     }),
                     "pattern.rows()");
  ra::row_matrix<T> bad_out(5, 4);
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { ra::sparse_attention(Q, K, V, p, bad_out); }),
      "out.cols()");
  const auto K3 = to_eigen<T>(orc::random_matrix(6, 3, 2));
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { ra::sparse_attention(Q, K3, V, p, out); }),
      "k.cols()");
  const auto V7 = to_eigen<T>(orc::random_matrix(7, 3, 3));
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::dimension_mismatch>([&] { ra::sparse_attention(Q, K, V7, p, out); }),
      "v.rows()");
  const bool mask[3] = {true, true, true};
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>([&] {
                       ra::sparse_attention(Q, K, V, p, out,
                                            {.key_mask = std::span<const bool>(mask, 3)});
                     }),
                     "key_mask");
  std::vector<T> lse(4), weights(p.nnz() + 1);
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { ra::sparse_attention(Q, K, V, p, out, {}, {.lse = lse}); }),
                     "extras.lse");
  EXPECT_MESSAGE_HAS(thrown_message<ra::dimension_mismatch>(
                         [&] { ra::sparse_attention(Q, K, V, p, out, {}, {.weights = weights}); }),
                     "extras.weights");
  const ra::row_matrix<T> Q0(5, 0), K0(6, 0);
  EXPECT_THROW(ra::sparse_attention(Q0, K0, V, p, out), ra::invalid_argument);
}

// Zero-copy views, the explicit-T form and the returning overload agree bit for bit; so do one
// and two threads (rows are independent, so the thread count cannot change any rounding).
TYPED_TEST(SparseKernel, ViewsOverloadsAndThreadsAgree) {
  using T = TypeParam;
  const std::size_t n = 90, d = 16, dv = 8;
  const auto p =
      ra::make_window_pattern(n, n, 7) | ra::make_global_pattern(n, n, std::vector<std::size_t>{0});
  // Inputs stored inside wider buffers (outer stride > cols).
  ra::row_matrix<T> qbuf = to_eigen<T>(orc::random_matrix(n, d + 3, 60));
  ra::row_matrix<T> kbuf = to_eigen<T>(orc::random_matrix(n, d + 5, 61));
  ra::row_matrix<T> vbuf = to_eigen<T>(orc::random_matrix(n, dv + 1, 62));
  const auto Qv = qbuf.leftCols(static_cast<Eigen::Index>(d));
  const auto Kv = kbuf.leftCols(static_cast<Eigen::Index>(d));
  const auto Vv = vbuf.leftCols(static_cast<Eigen::Index>(dv));
  const ra::row_matrix<T> Q = Qv, K = Kv, V = Vv;

  const ra::row_matrix<T> a = ra::sparse_attention(Q, K, V, p);
  ra::row_matrix<T> b(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(dv));
  ra::sparse_attention<T>(Qv, Kv, Vv, p, b);
  std::vector<T> raw(n * (dv + 2), T(-1));
  ra::sparse_attention(Q, K, V, p, ra::matrix_view(raw.data(), n, dv, dv + 2));
  EXPECT_EQ(a, b);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t e = 0; e < dv; ++e)
      EXPECT_EQ(raw[i * (dv + 2) + e],
                a(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(e)));
  ra::set_num_threads(1);
  const ra::row_matrix<T> one = ra::sparse_attention(Q, K, V, p, {.query_block = 3});
  ra::set_num_threads(2);
  const ra::row_matrix<T> two = ra::sparse_attention(Q, K, V, p, {.query_block = 3});
  ra::set_num_threads(0);
  EXPECT_EQ(one, a);
  EXPECT_EQ(two, a);
}

// Tensor API: [B, H, L, d] with GQA, a per-batch key mask and lse, against the oracle per head.
TYPED_TEST(SparseKernel, TensorApiMatchesOraclePerHead) {
  using T = TypeParam;
  const std::size_t B = 2, H = 4, Hkv = 2, Lq = 21, Lk = 26, d = 8, dv = 6;
  const auto p = ra::make_block_sparse_pattern(
      Lq, Lk,
      {.block_size = 5, .window_blocks = 1, .global_blocks = 1, .random_blocks = 1, .seed = 9});
  std::vector<orc::dmat> qs, ks, vs;
  std::vector<T> qbuf(B * H * Lq * d), kbuf(B * Hkv * Lk * d), vbuf(B * Hkv * Lk * dv);
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t h = 0; h < H; ++h) {
      qs.push_back(orc::rounded<T>(orc::random_matrix(Lq, d, 70 + b * H + h)));
      std::copy(qs.back().a.begin(), qs.back().a.end(),
                qbuf.begin() + static_cast<std::ptrdiff_t>((b * H + h) * Lq * d));
    }
    for (std::size_t h = 0; h < Hkv; ++h) {
      ks.push_back(orc::rounded<T>(orc::random_matrix(Lk, d, 80 + b * Hkv + h)));
      vs.push_back(orc::rounded<T>(orc::random_matrix(Lk, dv, 90 + b * Hkv + h)));
      std::copy(ks.back().a.begin(), ks.back().a.end(),
                kbuf.begin() + static_cast<std::ptrdiff_t>((b * Hkv + h) * Lk * d));
      std::copy(vs.back().a.begin(), vs.back().a.end(),
                vbuf.begin() + static_cast<std::ptrdiff_t>((b * Hkv + h) * Lk * dv));
    }
  }
  // Per-batch key mask: batch 1 has 4 padding keys at the end.
  const std::unique_ptr<bool[]> mask(new bool[B * Lk]);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t j = 0; j < Lk; ++j) mask[b * Lk + j] = b == 0 || j < Lk - 4;
  std::vector<T> obuf(B * H * Lq * dv), lbuf(B * H * Lq);
  for (const bool causal : {false, true}) {
    ra::sparse_attention(ra::make_tensor_view<const T>(qbuf.data(), B, H, Lq, d),
                         ra::make_tensor_view<const T>(kbuf.data(), B, Hkv, Lk, d),
                         ra::make_tensor_view<const T>(vbuf.data(), B, Hkv, Lk, dv), p,
                         ra::make_tensor_view(obuf.data(), B, H, Lq, dv),
                         {.causal = causal, .key_mask = std::span<const bool>(mask.get(), B * Lk)},
                         ra::tensor_view<T, 3>(lbuf.data(), {B, H, Lq}));
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h) {
        SCOPED_TRACE(::testing::Message() << "b=" << b << " h=" << h << " causal=" << causal);
        std::vector<bool> km(mask.get() + b * Lk, mask.get() + (b + 1) * Lk);
        const std::size_t g = b * Hkv + h / (H / Hkv);
        const auto ref =
            orc::reference_attention(qs[b * H + h], ks[g], vs[g], 1.0 / std::sqrt(double(d)),
                                     causal, km, bias_from(p.to_dense(), Lq, Lk));
        const std::size_t o0 = (b * H + h) * Lq;
        std::vector<double> got(obuf.begin() + static_cast<std::ptrdiff_t>(o0 * dv),
                                obuf.begin() + static_cast<std::ptrdiff_t>((o0 + Lq) * dv));
        std::vector<double> got_lse(lbuf.begin() + static_cast<std::ptrdiff_t>(o0),
                                    lbuf.begin() + static_cast<std::ptrdiff_t>(o0 + Lq));
        EXPECT_LE(orc::max_mixed_error(got, ref.out.a), kTol<T>);
        EXPECT_LE(orc::max_mixed_error(got_lse, ref.lse), kTol<T>);
      }
  }
  // Errors: NaN named with all four indices; GQA divisibility; pattern shape.
  kbuf[((1 * Hkv + 1) * Lk + 3) * d + 2] = std::numeric_limits<T>::quiet_NaN();
  const auto run = [&](const ra::sparse_pattern& pat, std::size_t hkv) {
    ra::sparse_attention(ra::make_tensor_view<const T>(qbuf.data(), B, H, Lq, d),
                         ra::make_tensor_view<const T>(kbuf.data(), B, hkv, Lk, d),
                         ra::make_tensor_view<const T>(vbuf.data(), B, hkv, Lk, dv), pat,
                         ra::make_tensor_view(obuf.data(), B, H, Lq, dv));
  };
  EXPECT_MESSAGE_HAS(
      thrown_message<ra::non_finite_input>([&] { run(ra::make_dense_pattern(Lq, Lk), Hkv); }),
      "k[1][1][3][2]");
  EXPECT_THROW(run(p, 3), ra::dimension_mismatch);
  EXPECT_THROW(run(ra::make_dense_pattern(Lq, Lk + 1), Hkv), ra::dimension_mismatch);
}

}  // namespace
