// ODR check, second translation unit: the same umbrella header as odr_a.cpp.
#include <ruvector/attention.hpp>

const char* const* ruvector_attention_odr_b() { return &ruvector::attention::version_string; }
