# vcpkg port of ruvector-attention (header-only).
#
# Used as an overlay port from a checkout of the repository:
#   vcpkg install ruvector-attention --overlay-ports=<repo>/cmake/vcpkg/ports
# The sources are the checkout this port sits in, unless RUVECTOR_ATTENTION_SOURCE_PATH names
# another tree (set it in the environment and list it in VCPKG_KEEP_ENV_VARS). For a registry,
# replace the block below with vcpkg_from_git(OUT_SOURCE_PATH SOURCE_PATH URL ... REF ...).
#
# tests/packaging/vcpkg_port_replay.cmake runs this file offline (CTest: vcpkg_port_replay) with
# small stand-ins for the vcpkg_* functions.
if(DEFINED ENV{RUVECTOR_ATTENTION_SOURCE_PATH})
  set(SOURCE_PATH "$ENV{RUVECTOR_ATTENTION_SOURCE_PATH}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
endif()
if(NOT EXISTS "${SOURCE_PATH}/include/ruvector/attention.hpp")
  message(FATAL_ERROR "ruvector-attention sources not found at ${SOURCE_PATH}")
endif()

# Header-only: one (release) configuration is enough.
set(VCPKG_BUILD_TYPE release)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DRUVECTOR_ATTENTION_BUILD_TESTS=OFF
    -DRUVECTOR_ATTENTION_BUILD_EXAMPLES=OFF
    -DRUVECTOR_ATTENTION_BUILD_BENCHMARKS=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME ruvector_attention CONFIG_PATH share/cmake/ruvector_attention)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")

vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
