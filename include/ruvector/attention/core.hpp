#pragma once
/// \file core.hpp
/// \brief Entry header of the core family: views, errors, validation, masks, RNG, parallel_for.

#include "ruvector/attention/config.hpp"
#include "ruvector/attention/core/error.hpp"
#include "ruvector/attention/core/mask.hpp"
#include "ruvector/attention/core/parallel.hpp"
#include "ruvector/attention/core/rng.hpp"
#include "ruvector/attention/core/tensor_view.hpp"
#include "ruvector/attention/core/validate.hpp"
#include "ruvector/attention/version.hpp"
