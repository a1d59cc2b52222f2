#pragma once
/// \file fwd.hpp
/// \brief Forward declarations of the public class templates.

#include <cstddef>

namespace ruvector::attention {

template <class T, std::size_t Rank>
class tensor_view;
template <class T>
class scaled_dot_product_attention;
template <class T>
class multi_head_attention;
template <class T>
class flash_attention;
template <class T>
class linear_attention;
template <class T>
class linear_key_state;
template <class T>
class local_global_attention;
class sparse_pattern;
class rng;

}  // namespace ruvector::attention
