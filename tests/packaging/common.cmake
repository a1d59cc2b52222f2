# Shared steps of the packaging tests. Each test is a cmake -P script run by CTest as
#   cmake -DRVA_ENV=<build>/tests/packaging/packaging_env.cmake -P <script>
# and includes this file. RVA_* settings (compiler, flags, generator, dependency locations) come
# from packaging_env.cmake, so nested builds use the same toolchain as the build that runs them.
cmake_minimum_required(VERSION 3.21)

if(NOT RVA_ENV OR NOT EXISTS "${RVA_ENV}")
  message(FATAL_ERROR "Run with -DRVA_ENV=<build>/tests/packaging/packaging_env.cmake")
endif()
include("${RVA_ENV}")
set(PK_DIR "${CMAKE_CURRENT_LIST_DIR}")

# pk_begin(<name>): PK_WORK = <build>/tests/packaging/work/<name>, emptied first, so every run of
# a test starts from scratch. Step logs go there too.
macro(pk_begin name)
  set(PK_WORK "${RVA_WORK_DIR}/${name}")
  file(REMOVE_RECURSE "${PK_WORK}")
  file(MAKE_DIRECTORY "${PK_WORK}")
endmacro()

# pk_require_file(<path> <what>): fails the test with a clear message when <path> is missing.
function(pk_require_file path what)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "${what} not found: ${path}")
  endif()
endfunction()

# pk_run(<step> [WORKING_DIRECTORY <dir>] [LOG <file>] COMMAND <command>...)
# Runs one command; on failure the test fails with the step name and the command's output (the full
# output is kept in <LOG>, by default <PK_WORK>/<step>.log).
function(pk_run step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "WORKING_DIRECTORY;LOG" "COMMAND")
  if(NOT arg_WORKING_DIRECTORY)
    set(arg_WORKING_DIRECTORY "${PK_WORK}")
  endif()
  if(NOT arg_LOG)
    string(MAKE_C_IDENTIFIER "${step}" log_name)
    set(arg_LOG "${PK_WORK}/${log_name}.log")
  endif()
  list(JOIN arg_COMMAND " " shown)
  string(TIMESTAMP t0 "%s")
  execute_process(
    COMMAND ${arg_COMMAND}
    WORKING_DIRECTORY "${arg_WORKING_DIRECTORY}"
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
  string(TIMESTAMP t1 "%s")
  math(EXPR secs "${t1} - ${t0}")
  file(WRITE "${arg_LOG}" "$ ${shown}\n${out}")
  if(NOT rc STREQUAL "0")
    string(LENGTH "${out}" n)
    if(n GREATER 20000)
      math(EXPR from "${n} - 20000")
      string(SUBSTRING "${out}" ${from} -1 out)
      set(out "[... first ${from} characters cut; full log: ${arg_LOG}]\n${out}")
    endif()
    message(FATAL_ERROR "[${step}] failed (${rc}) after ${secs}s\n$ ${shown}\n${out}")
  endif()
  message(STATUS "[${step}] ok (${secs}s)")
  set(PK_LAST_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

# pk_new_cache(<file>): starts an initial-cache script (-C) for a nested configure, holding this
# build's toolchain, flags and dependency locations. Add entries with pk_cache().
function(pk_new_cache file)
  file(WRITE "${file}" "# initial cache written by tests/packaging/common.cmake\n")
  foreach(var IN ITEMS CMAKE_CXX_COMPILER CMAKE_BUILD_TYPE CMAKE_CXX_FLAGS CMAKE_EXE_LINKER_FLAGS
                       CMAKE_MAKE_PROGRAM CMAKE_TOOLCHAIN_FILE CMAKE_PREFIX_PATH)
    string(REPLACE "CMAKE_" "RVA_" rva "${var}")
    if(var STREQUAL "CMAKE_CXX_COMPILER" OR NOT "${${rva}}" STREQUAL "")
      pk_cache("${file}" ${var} "${${rva}}")
    endif()
  endforeach()
  foreach(pkg IN ITEMS Eigen3 xsimd nlohmann_json)
    if(RVA_${pkg}_DIR)
      pk_cache("${file}" ${pkg}_DIR "${RVA_${pkg}_DIR}")
    endif()
  endforeach()
  # Never pick a package up from (or leave one in) the user package registry.
  pk_cache("${file}" CMAKE_FIND_USE_PACKAGE_REGISTRY OFF)
  pk_cache("${file}" CMAKE_EXPORT_NO_PACKAGE_REGISTRY ON)
endfunction()

# pk_cache(<file> <name> <value>): appends one cache entry (value kept verbatim, lists included).
function(pk_cache file name value)
  file(APPEND "${file}" "set(${name} [==[${value}]==] CACHE STRING \"\" FORCE)\n")
endfunction()

# pk_configure(<step> SOURCE <dir> BUILD <dir> CACHE <init-file> [ARGS <extra cmake args>...])
function(pk_configure step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "SOURCE;BUILD;CACHE" "ARGS")
  set(cmd "${CMAKE_COMMAND}" -S "${arg_SOURCE}" -B "${arg_BUILD}" -G "${RVA_GENERATOR}")
  if(RVA_GENERATOR_PLATFORM)
    list(APPEND cmd -A "${RVA_GENERATOR_PLATFORM}")
  endif()
  if(RVA_GENERATOR_TOOLSET)
    list(APPEND cmd -T "${RVA_GENERATOR_TOOLSET}")
  endif()
  pk_run("${step}" COMMAND ${cmd} -C "${arg_CACHE}" ${arg_ARGS})
  set(PK_LAST_OUTPUT "${PK_LAST_OUTPUT}" PARENT_SCOPE)
endfunction()

# pk_build(<step> BUILD <dir> [TARGET <target>])
function(pk_build step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "BUILD;TARGET" "")
  set(cmd "${CMAKE_COMMAND}" --build "${arg_BUILD}")
  if(RVA_BUILD_TYPE)
    list(APPEND cmd --config "${RVA_BUILD_TYPE}")
  endif()
  if(arg_TARGET)
    list(APPEND cmd --target "${arg_TARGET}")
  endif()
  pk_run("${step}" COMMAND ${cmd})
endfunction()

# pk_run_built(<step> BUILD <dir> NAME <executable>): runs a program built in <dir>; it must exit 0.
function(pk_run_built step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "BUILD;NAME" "")
  set(exe_name "${arg_NAME}${CMAKE_EXECUTABLE_SUFFIX}")
  set(exe "")
  foreach(candidate IN ITEMS "${arg_BUILD}/${exe_name}" "${arg_BUILD}/${RVA_BUILD_TYPE}/${exe_name}")
    if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
      set(exe "${candidate}")
      break()
    endif()
  endforeach()
  if(NOT exe)
    message(FATAL_ERROR "[${step}] ${exe_name} was not built in ${arg_BUILD}")
  endif()
  pk_run("${step}" WORKING_DIRECTORY "${arg_BUILD}" COMMAND "${exe}")
  message(STATUS "[${step}] output:\n${PK_LAST_OUTPUT}")
endfunction()

# pk_install_project(<step> BUILD <dir> PREFIX <dir> [ARGS <extra cmake args>...])
# Configures a fresh build of the source tree with tests, examples and benchmarks off and installs it.
function(pk_install_project step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "BUILD;PREFIX" "ARGS")
  set(cache "${arg_BUILD}-init.cmake")
  pk_new_cache("${cache}")
  pk_cache("${cache}" CMAKE_INSTALL_PREFIX "${arg_PREFIX}")
  foreach(opt IN ITEMS TESTS EXAMPLES BENCHMARKS)
    pk_cache("${cache}" RUVECTOR_ATTENTION_BUILD_${opt} OFF)
  endforeach()
  pk_configure("${step}: configure" SOURCE "${RVA_SOURCE_DIR}" BUILD "${arg_BUILD}" CACHE "${cache}"
               ARGS ${arg_ARGS})
  pk_build("${step}: build" BUILD "${arg_BUILD}")
  set(cmd "${CMAKE_COMMAND}" --install "${arg_BUILD}")
  if(RVA_BUILD_TYPE)
    list(APPEND cmd --config "${RVA_BUILD_TYPE}")
  endif()
  pk_run("${step}: install" COMMAND ${cmd})
endfunction()

# pk_consumer(<step> SOURCE <dir> BUILD <dir> CACHE <init-file> RUN <executable>)
# Configures and builds a consumer project, then runs the program it built.
function(pk_consumer step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "SOURCE;BUILD;CACHE;RUN" "")
  pk_configure("${step}: configure" SOURCE "${arg_SOURCE}" BUILD "${arg_BUILD}" CACHE "${arg_CACHE}")
  pk_build("${step}: build" BUILD "${arg_BUILD}")
  pk_run_built("${step}: run" BUILD "${arg_BUILD}" NAME "${arg_RUN}")
endfunction()

# pk_find_package_consumer(<step> PREFIX <dir> BUILD <dir>)
# Builds tests/packaging/find_package_consumer against the package installed in <prefix> and runs
# the quickstart it builds. The consumer checks that the package came from <prefix>.
function(pk_find_package_consumer step)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "PREFIX;BUILD" "")
  pk_require_file("${RVA_QUICKSTART}" "examples/quickstart.cpp")
  set(cache "${arg_BUILD}-init.cmake")
  pk_new_cache("${cache}")
  set(prefix_path "${arg_PREFIX}")
  if(RVA_PREFIX_PATH)
    list(APPEND prefix_path ${RVA_PREFIX_PATH})
  endif()
  pk_cache("${cache}" CMAKE_PREFIX_PATH "${prefix_path}")
  pk_cache("${cache}" RUVECTOR_QUICKSTART_SOURCE "${RVA_QUICKSTART}")
  pk_cache("${cache}" RUVECTOR_EXPECTED_PREFIX "${arg_PREFIX}")
  pk_consumer("${step}" SOURCE "${PK_DIR}/find_package_consumer" BUILD "${arg_BUILD}"
              CACHE "${cache}" RUN quickstart)
endfunction()

# pk_compile_command(<var>): the compiler command line (GCC/Clang syntax) of this build for a TU
# that uses the library: -std=c++20, this build's flags, the dev warning flags, and -isystem for
# the dependencies. Add -I for the library (include/ or single_include/) yourself.
function(pk_compile_command var)
  set(cmd "${RVA_CXX_COMPILER}" -std=c++20)
  separate_arguments(flags UNIX_COMMAND "${RVA_CXX_FLAGS} ${RVA_CXX_CONFIG_FLAGS}")
  list(APPEND cmd ${flags} ${RVA_WARNING_FLAGS})
  foreach(def IN LISTS RVA_DEP_DEFINITIONS)
    if(NOT def STREQUAL "")
      list(APPEND cmd "-D${def}")
    endif()
  endforeach()
  foreach(dir IN LISTS RVA_DEP_INCLUDE_DIRS)
    list(APPEND cmd -isystem "${dir}")
  endforeach()
  set(${var} "${cmd}" PARENT_SCOPE)
endfunction()
