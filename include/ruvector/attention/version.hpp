#pragma once
/// \file version.hpp
/// \brief The single source of the library version (CMake parses these three lines).

#define RUVECTOR_ATTENTION_VERSION_MAJOR 0
#define RUVECTOR_ATTENTION_VERSION_MINOR 1
#define RUVECTOR_ATTENTION_VERSION_PATCH 0

#define RUVECTOR_ATTENTION_VERSION                                                     \
  (RUVECTOR_ATTENTION_VERSION_MAJOR * 10000 + RUVECTOR_ATTENTION_VERSION_MINOR * 100 + \
   RUVECTOR_ATTENTION_VERSION_PATCH)

#define RUVECTOR_ATTENTION_DETAIL_STR2(x) #x
#define RUVECTOR_ATTENTION_DETAIL_STR(x) RUVECTOR_ATTENTION_DETAIL_STR2(x)

namespace ruvector::attention {

/// \brief The library version as "major.minor.patch".
inline constexpr const char* version_string =
    RUVECTOR_ATTENTION_DETAIL_STR(RUVECTOR_ATTENTION_VERSION_MAJOR) "." RUVECTOR_ATTENTION_DETAIL_STR(
        RUVECTOR_ATTENTION_VERSION_MINOR) "." RUVECTOR_ATTENTION_DETAIL_STR(RUVECTOR_ATTENTION_VERSION_PATCH);

}  // namespace ruvector::attention
