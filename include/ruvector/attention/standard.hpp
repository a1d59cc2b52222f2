#pragma once
/// \file standard.hpp
/// \brief Entry header of the standard family: scaled dot-product and multi-head attention.

#include "ruvector/attention/standard/multi_head.hpp"
#include "ruvector/attention/standard/scaled_dot_product.hpp"
