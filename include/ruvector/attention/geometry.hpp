#pragma once
/// \file geometry.hpp
/// \brief Entry header of the geometry family: Riemannian model spaces modelling the `manifold`
/// concept — Euclidean space, the Poincaré ball, the Lorentz hyperboloid, the sphere, products
/// E^e × H^h × S^s — with Poincaré ↔ Lorentz ↔ Klein conversions, the Einstein midpoint and the
/// weighted Fréchet mean.

#include "ruvector/attention/geometry/euclidean.hpp"
#include "ruvector/attention/geometry/lorentz.hpp"
#include "ruvector/attention/geometry/means.hpp"
#include "ruvector/attention/geometry/models.hpp"
#include "ruvector/attention/geometry/poincare.hpp"
#include "ruvector/attention/geometry/product.hpp"
#include "ruvector/attention/geometry/sphere.hpp"
