#pragma once
/// \file info_geometry.hpp
/// \brief Entry header of the information-geometry family (theory 4): the categorical Fisher
/// information as a matrix-free operator, the empirical Fisher, damped conjugate gradient,
/// natural-gradient steps and the Fisher–Rao distance.

#include "ruvector/attention/info_geometry/fisher.hpp"
#include "ruvector/attention/info_geometry/natural_gradient.hpp"
