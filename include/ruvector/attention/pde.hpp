#pragma once
/// \file pde.hpp
/// \brief Entry header of the PDE family (theory 6): graph Laplacians of the keys (dense and
/// sparse kNN CSR; D − W, symmetric normalised, random walk), heat diffusion by stability-checked
/// explicit Euler or a Chebyshev expansion of exp(−tL)v, multiscale diffusion, the diffusion
/// energy, and diffusion attention.

#include "ruvector/attention/pde/diffusion.hpp"
#include "ruvector/attention/pde/diffusion_attention.hpp"
#include "ruvector/attention/pde/laplacian.hpp"
