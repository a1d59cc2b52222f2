# vcpkg_port_replay: vcpkg is not available offline, so this runs the port's own portfile.cmake
# with small stand-ins for the vcpkg_* functions it calls, in a directory laid out like vcpkg's
# (buildtrees/, packages/<port>_<triplet>/, installed/<triplet>/), then builds the
# find_package_consumer project against the "installed" tree, as a vcpkg user would.
#
# The stand-ins do what the vcpkg functions do for a header-only, release-only CMake port:
#   vcpkg_cmake_configure    configure SOURCE_PATH with OPTIONS, install prefix = packages dir;
#                            fails if CMake reports one of the OPTIONS as unused (a misspelt option)
#   vcpkg_cmake_install      build the `install` target
#   vcpkg_cmake_config_fixup move CONFIG_PATH to share/<PACKAGE_NAME>, correct the prefix
#                            computations for the new depth, replace absolute package paths
#   vcpkg_install_copyright  copy the licence to share/<port>/copyright
# Any other vcpkg_* call in the portfile fails here as an unknown command.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")
pk_begin(vcpkg)
pk_require_file("${RVA_QUICKSTART}" "examples/quickstart.cpp")

set(port_dir "${RVA_SOURCE_DIR}/cmake/vcpkg/ports/ruvector-attention")
set(PORT ruvector-attention)
set(TARGET_TRIPLET x64-linux)
set(VCPKG_TARGET_EXECUTABLE_SUFFIX "${CMAKE_EXECUTABLE_SUFFIX}")
set(CURRENT_BUILDTREES_DIR "${PK_WORK}/buildtrees/${PORT}")
set(CURRENT_PACKAGES_DIR "${PK_WORK}/packages/${PORT}_${TARGET_TRIPLET}")
set(CURRENT_INSTALLED_DIR "${PK_WORK}/installed/${TARGET_TRIPLET}")
file(MAKE_DIRECTORY "${CURRENT_BUILDTREES_DIR}" "${CURRENT_PACKAGES_DIR}")

# --- the manifest: name, version (= version.hpp) and dependencies -------------------------------
file(READ "${port_dir}/vcpkg.json" manifest)
string(JSON name GET "${manifest}" name)
string(JSON version GET "${manifest}" version)
if(NOT name STREQUAL PORT)
  message(FATAL_ERROR "vcpkg.json: name is '${name}', expected '${PORT}'")
endif()
if(NOT version STREQUAL RVA_VERSION)
  message(FATAL_ERROR "vcpkg.json: version ${version} differs from version.hpp (${RVA_VERSION})")
endif()
set(deps "")
string(JSON ndeps LENGTH "${manifest}" dependencies)
math(EXPR last "${ndeps} - 1")
foreach(i RANGE ${last})
  string(JSON type TYPE "${manifest}" dependencies ${i})
  if(type STREQUAL "STRING")
    string(JSON dep GET "${manifest}" dependencies ${i})
  else()
    string(JSON dep GET "${manifest}" dependencies ${i} name)
    string(JSON host ERROR_VARIABLE no_host GET "${manifest}" dependencies ${i} host)
    if(host)
      set(dep "${dep}:host")
    endif()
  endif()
  list(APPEND deps "${dep}")
endforeach()
foreach(dep IN ITEMS eigen3 xsimd nlohmann-json vcpkg-cmake:host vcpkg-cmake-config:host)
  if(NOT dep IN_LIST deps)
    message(FATAL_ERROR "vcpkg.json: dependency ${dep} missing (have: ${deps})")
  endif()
endforeach()

# --- stand-ins for the vcpkg functions the portfile uses ----------------------------------------
function(vcpkg_cmake_configure)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "SOURCE_PATH" "OPTIONS;OPTIONS_RELEASE;OPTIONS_DEBUG")
  if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
    message(FATAL_ERROR "replay supports release-only ports; the portfile must set "
                        "VCPKG_BUILD_TYPE release (header-only)")
  endif()
  set(build "${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-rel")
  set(cache "${CURRENT_BUILDTREES_DIR}/init.cmake")
  pk_new_cache("${cache}")
  # What vcpkg_cmake_configure itself passes that matters to an install layout.
  pk_cache("${cache}" CMAKE_BUILD_TYPE Release)
  pk_cache("${cache}" CMAKE_INSTALL_PREFIX "${CURRENT_PACKAGES_DIR}")
  pk_cache("${cache}" CMAKE_INSTALL_LIBDIR lib)
  pk_cache("${cache}" CMAKE_INSTALL_BINDIR bin)
  pk_cache("${cache}" CMAKE_ERROR_ON_ABSOLUTE_INSTALL_DESTINATION ON)
  pk_cache("${cache}" FETCHCONTENT_FULLY_DISCONNECTED ON)
  set(options ${arg_OPTIONS} ${arg_OPTIONS_RELEASE})
  pk_configure("vcpkg_cmake_configure" SOURCE "${arg_SOURCE_PATH}" BUILD "${build}"
               CACHE "${cache}" ARGS ${options})
  string(FIND "${PK_LAST_OUTPUT}" "Manually-specified variables were not used" at)
  if(at GREATER -1)
    string(SUBSTRING "${PK_LAST_OUTPUT}" ${at} -1 unused)
    foreach(opt IN LISTS options)
      if(opt MATCHES "^-D([A-Za-z0-9_]+)")
        set(opt_name "${CMAKE_MATCH_1}")
        if(unused MATCHES "[ \n]${opt_name}[ \n]")
          message(FATAL_ERROR "portfile option ${opt} is not used by the project:\n${unused}")
        endif()
      endif()
    endforeach()
  endif()
  set_property(GLOBAL PROPERTY PK_VCPKG_BUILD "${build}")
endfunction()

function(vcpkg_cmake_install)
  get_property(build GLOBAL PROPERTY PK_VCPKG_BUILD)
  if(NOT build)
    message(FATAL_ERROR "vcpkg_cmake_install() before vcpkg_cmake_configure()")
  endif()
  set(RVA_BUILD_TYPE Release)
  pk_build("vcpkg_cmake_install" BUILD "${build}" TARGET install)
endfunction()

function(vcpkg_cmake_config_fixup)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "PACKAGE_NAME;CONFIG_PATH" "")
  if(NOT arg_PACKAGE_NAME)
    set(arg_PACKAGE_NAME "${PORT}")
  endif()
  if(NOT arg_CONFIG_PATH)
    set(arg_CONFIG_PATH "share/${arg_PACKAGE_NAME}")
  endif()
  set(share "${CURRENT_PACKAGES_DIR}/share/${arg_PACKAGE_NAME}")
  set(config "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}")
  if(NOT EXISTS "${config}")
    message(FATAL_ERROR "vcpkg_cmake_config_fixup: '${config}' does not exist")
  endif()
  if(NOT arg_CONFIG_PATH STREQUAL "share/${arg_PACKAGE_NAME}")
    file(GLOB files "${config}/*")
    file(COPY ${files} DESTINATION "${share}")
    file(REMOVE_RECURSE "${config}")
    # An emptied parent directory named "cmake" goes too (share/cmake here).
    get_filename_component(parent "${config}" DIRECTORY)
    get_filename_component(parent_name "${parent}" NAME)
    if(parent_name STREQUAL "cmake")
      file(REMOVE_RECURSE "${parent}")
    endif()
  endif()
  # The files now sit two levels under the prefix (share/<name>): rewrite the prefix computations
  # CMake generated for their old depth, and any absolute path into the package directory.
  file(GLOB_RECURSE cmake_files "${share}/*.cmake")
  foreach(f IN LISTS cmake_files)
    file(READ "${f}" text)
    set(up "get_filename_component(_IMPORT_PREFIX \"\${_IMPORT_PREFIX}\" PATH)")
    string(REGEX REPLACE
           "get_filename_component\\(_IMPORT_PREFIX \"\\\${CMAKE_CURRENT_LIST_FILE}\" PATH\\)(\nget_filename_component\\(_IMPORT_PREFIX \"\\\${_IMPORT_PREFIX}\" PATH\\))*"
           "get_filename_component(_IMPORT_PREFIX \"\${CMAKE_CURRENT_LIST_FILE}\" PATH)\n${up}\n${up}"
           text "${text}")
    string(REGEX REPLACE
           "get_filename_component\\(PACKAGE_PREFIX_DIR \"\\\${CMAKE_CURRENT_LIST_DIR}/\\.\\./(\\.\\./)*\" ABSOLUTE\\)"
           "get_filename_component(PACKAGE_PREFIX_DIR \"\${CMAKE_CURRENT_LIST_DIR}/../../\" ABSOLUTE)"
           text "${text}")
    string(REPLACE "${CURRENT_INSTALLED_DIR}" "\${_IMPORT_PREFIX}" text "${text}")
    string(REPLACE "${CURRENT_PACKAGES_DIR}" "\${_IMPORT_PREFIX}" text "${text}")
    file(WRITE "${f}" "${text}")
  endforeach()
endfunction()

function(vcpkg_install_copyright)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "" "FILE_LIST")
  set(text "")
  foreach(f IN LISTS arg_FILE_LIST)
    file(READ "${f}" part)
    string(APPEND text "${part}")
  endforeach()
  file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright" "${text}")
endfunction()

# --- run the portfile -----------------------------------------------------------------------------
unset(ENV{RUVECTOR_ATTENTION_SOURCE_PATH})   # the port's default: the tree it sits in
include("${port_dir}/portfile.cmake")

# --- what vcpkg's post-build checks and users rely on ---------------------------------------------
foreach(file IN ITEMS include/ruvector/attention.hpp
                      share/ruvector_attention/ruvector_attentionConfig.cmake
                      share/ruvector_attention/ruvector_attentionConfigVersion.cmake
                      share/ruvector_attention/ruvector_attentionTargets.cmake
                      share/${PORT}/copyright)
  pk_require_file("${CURRENT_PACKAGES_DIR}/${file}" "packaged file")
endforeach()
foreach(dir IN ITEMS debug lib bin share/cmake)
  if(EXISTS "${CURRENT_PACKAGES_DIR}/${dir}")
    message(FATAL_ERROR "the package has ${dir}/, which it should not (header-only, fixed up)")
  endif()
endforeach()
file(GLOB_RECURSE shipped "${CURRENT_PACKAGES_DIR}/share/*")
foreach(f IN LISTS shipped)
  file(READ "${f}" text)
  string(FIND "${text}" "${PK_WORK}" at)
  if(at GREATER -1)
    message(FATAL_ERROR "${f} holds an absolute path into the build (${PK_WORK})")
  endif()
endforeach()

# vcpkg then copies the package into installed/<triplet>: a relocation, as for every user.
file(COPY "${CURRENT_PACKAGES_DIR}/" DESTINATION "${CURRENT_INSTALLED_DIR}")
pk_find_package_consumer("consumer" PREFIX "${CURRENT_INSTALLED_DIR}" BUILD "${PK_WORK}/consumer-build")
