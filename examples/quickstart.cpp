// Quickstart: one query attending over four keys, then 4-head self-attention over a sequence.
#include <cstdio>
#include <ruvector/attention.hpp>
#include <vector>

namespace ra = ruvector::attention;

int main() {
  // Vector API: softmax(K q / sqrt(d)) V for one query.
  const ra::scaled_dot_product_attention<float> sdpa(4);
  const std::vector<float> query{1, 0, 0, 0};
  const std::vector<std::vector<float>> keys{
      {1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {.5f, 0, 0, 1}};
  const std::vector<std::vector<float>> values{{1, 2}, {3, 4}, {5, 6}, {7, 8}};
  const std::vector<float> out = sdpa.compute(query, keys, values);
  std::printf("single query -> [%.4f, %.4f]\n", out[0], out[1]);

  // Multi-head self-attention with learned (Xavier, seed 7) projections and causal masking.
  const ra::multi_head_attention<float> mha(
      ra::multi_head_config{.embed_dim = 16, .num_heads = 4, .causal = true, .seed = 7});
  ra::row_matrix<float> x(5, 16);  // 5 tokens of width 16
  for (int i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 37 % 17) - 8) / 8.0f;
  const ra::row_matrix<float> y = mha.forward(x);
  std::printf("multi-head  -> %ld x %ld, y[4][0] = %.4f\n", static_cast<long>(y.rows()),
              static_cast<long>(y.cols()), y(4, 0));
  return 0;
}
