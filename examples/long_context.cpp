// Long-context attention without an L x L matrix: flash attention over 8192 tokens, the same
// result assembled from key shards with exact partial merges, and ring attention over 4 devices.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ruvector/attention/core/rng.hpp>
#include <ruvector/attention/sparse.hpp>
#include <vector>

namespace ra = ruvector::attention;
using matrix = ra::row_matrix<float>;

int main() {
  const Eigen::Index L = 8192, d = 64;
  ra::rng gen(7);
  matrix q(L, d), k(L, d), v(L, d);
  for (matrix* m : {&q, &k, &v})
    for (Eigen::Index i = 0; i < m->size(); ++i) m->data()[i] = gen.normal<float>();

  // 1. Causal flash attention over the whole sequence: extra memory is one tile per thread.
  const ra::flash_attention<float> flash(d, /*block_size=*/0, /*causal=*/true);
  const auto t0 = std::chrono::steady_clock::now();
  const matrix out = flash.forward(q, k, v);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("flash (causal) over %ld tokens: %.1f ms, a dense score matrix would take %.0f MiB\n",
              long(L), ms, double(L) * double(L) * 4 / (1 << 20));

  // 2. The last query's output from 4 key shards, each attended separately and merged exactly.
  const std::span<const float> last(q.row(L - 1).data(), d);
  std::vector<ra::attention_partial<float>> parts;
  for (Eigen::Index s = 0; s < 4; ++s) {
    parts.push_back(ra::partial_attention<float>(last, k.middleRows(s * L / 4, L / 4),
                                                 v.middleRows(s * L / 4, L / 4)));
  }
  const auto merged = ra::merge_partials<float>(parts);
  double diff = 0;
  for (Eigen::Index c = 0; c < d; ++c)
    diff = std::max(diff, double(std::abs(merged.output[std::size_t(c)] - out(L - 1, c))));
  std::printf("merged partials vs flash, last row: max |diff| = %.2e (lse %.4f)\n", diff,
              merged.lse);

  // 3. Ring attention: 4 simulated devices, each holding a quarter of queries, keys and values.
  std::vector<matrix> qs, ks, vs;
  for (Eigen::Index s = 0; s < 4; ++s) {
    qs.push_back(q.middleRows(s * L / 4, L / 4));
    ks.push_back(k.middleRows(s * L / 4, L / 4));
    vs.push_back(v.middleRows(s * L / 4, L / 4));
  }
  const auto ring = ra::ring_attention<float>(qs, ks, vs, /*causal=*/true);
  double ring_diff = 0;
  for (Eigen::Index s = 0; s < 4; ++s)
    ring_diff =
        std::max(ring_diff, double((ring.outputs[std::size_t(s)] - out.middleRows(s * L / 4, L / 4))
                                       .cwiseAbs()
                                       .maxCoeff()));
  std::printf("ring attention (4 devices, causal) vs flash: max |diff| = %.2e\n", ring_diff);
  return diff < 1e-4 && ring_diff < 1e-4 ? 0 : 1;
}
