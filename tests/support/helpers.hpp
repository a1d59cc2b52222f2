#pragma once
// Small helpers shared by the test families: converting oracle matrices to the library's types
// and capturing an expected exception's message. The oracle itself (oracle.hpp) includes no
// library header; this file is the bridge between the two.

#include <gtest/gtest.h>

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include "oracle.hpp"
#include "ruvector/attention/core/tensor_view.hpp"

namespace ruvector_test {

/// An oracle matrix (double) as a library matrix of T.
template <class T>
ruvector::attention::row_matrix<T> to_eigen(const oracle::dmat& m) {
  ruvector::attention::row_matrix<T> out(static_cast<Eigen::Index>(m.rows),
                                         static_cast<Eigen::Index>(m.cols));
  for (std::size_t i = 0; i < m.rows; ++i)
    for (std::size_t j = 0; j < m.cols; ++j)
      out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<T>(m(i, j));
  return out;
}

/// A double vector converted element-wise to T.
template <class T>
std::vector<T> to_vec(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

/// Row i of a library matrix, widened to double for the oracle's error helpers.
template <class T>
std::vector<double> row_of(const ruvector::attention::row_matrix<T>& m, std::size_t i) {
  std::vector<double> r(static_cast<std::size_t>(m.cols()));
  for (std::size_t c = 0; c < r.size(); ++c)
    r[c] = static_cast<double>(m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)));
  return r;
}

/// Runs f and returns the message of the expected exception type E; any other outcome fails the
/// test (and returns an empty string).
template <class E, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no exception thrown";
  return {};
}

}  // namespace ruvector_test
