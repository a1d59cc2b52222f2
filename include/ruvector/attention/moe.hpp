#pragma once
/// \file moe.hpp
/// \brief Entry header of the mixture-of-experts family: experts (feed-forward, attention,
/// function), a learned top-k router with capacity and auxiliary losses, and `moe_attention`, which
/// routes a batch of tokens in one call.

#include "ruvector/attention/moe/expert.hpp"
#include "ruvector/attention/moe/moe_attention.hpp"
#include "ruvector/attention/moe/router.hpp"
