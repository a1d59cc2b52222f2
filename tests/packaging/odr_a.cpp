// ODR check, first translation unit: includes the umbrella header. Linked with odr_b.cpp into one
// program (test_odr); a non-inline definition in any header fails the link with a duplicate symbol.
#include <ruvector/attention.hpp>

const char* const* ruvector_attention_odr_a() { return &ruvector::attention::version_string; }
