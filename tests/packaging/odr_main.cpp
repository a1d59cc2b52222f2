// test_odr: calls into both translation units. An inline variable has one address in the whole
// program, so both must return the same pointer, to the same "major.minor.patch" text.
#include <cstdio>
#include <cstring>
#include <ruvector/attention/version.hpp>

const char* const* ruvector_attention_odr_a();
const char* const* ruvector_attention_odr_b();

int main() {
  const char* const* a = ruvector_attention_odr_a();
  const char* const* b = ruvector_attention_odr_b();
  if (a != b || std::strcmp(*a, *b) != 0) {
    std::fprintf(stderr, "version_string differs between translation units: %s vs %s\n", *a, *b);
    return 1;
  }
  if (std::strcmp(*a, ruvector::attention::version_string) != 0) {
    std::fprintf(stderr, "version_string mismatch: %s\n", *a);
    return 1;
  }
  std::printf("ruvector-attention %s: two translation units link into one program\n", *a);
  return 0;
}
