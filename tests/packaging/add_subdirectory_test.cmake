# add_subdirectory_consumer: a project that add_subdirectory()s the source tree builds and runs
# examples/quickstart.cpp; the library's own tests, examples and benchmarks are not built.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")
pk_begin(add_subdirectory)
pk_require_file("${RVA_QUICKSTART}" "examples/quickstart.cpp")

set(build "${PK_WORK}/build")
set(cache "${PK_WORK}/init.cmake")
pk_new_cache("${cache}")
pk_cache("${cache}" RUVECTOR_ATTENTION_SOURCE_DIR "${RVA_SOURCE_DIR}")
pk_cache("${cache}" RUVECTOR_QUICKSTART_SOURCE "${RVA_QUICKSTART}")
pk_consumer("consumer" SOURCE "${PK_DIR}/add_subdirectory_consumer" BUILD "${build}"
            CACHE "${cache}" RUN quickstart)

# The consumer's CMakeLists already refuses the tests at configure time; check the build tree too.
foreach(dir IN ITEMS tests benchmarks examples)
  if(EXISTS "${build}/ruvector_attention/${dir}")
    message(FATAL_ERROR "${build}/ruvector_attention/${dir} exists: the library's ${dir} were "
                        "configured in a subproject build")
  endif()
endforeach()
file(GLOB_RECURSE built_tests LIST_DIRECTORIES false "${build}/test_*")
if(built_tests)
  message(FATAL_ERROR "the library's test programs were built in a subproject build: ${built_tests}")
endif()
