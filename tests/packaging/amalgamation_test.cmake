# amalgamation_up_to_date: single_include/ruvector/attention.hpp must be byte-for-byte what
# cmake/amalgamate.cmake makes from the current include/ tree.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")
pk_begin(amalgamation)

set(fresh "${PK_WORK}/attention.hpp")
set(committed "${RVA_SOURCE_DIR}/single_include/ruvector/attention.hpp")
pk_run("amalgamate" COMMAND "${CMAKE_COMMAND}" "-DSOURCE_DIR=${RVA_SOURCE_DIR}" "-DOUTPUT=${fresh}"
                            -P "${RVA_SOURCE_DIR}/cmake/amalgamate.cmake")

set(stale "single_include is stale: run cmake --build ${RVA_BINARY_DIR} --target amalgamate")
if(NOT EXISTS "${committed}")
  message(FATAL_ERROR "${stale}\n(${committed} does not exist)")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${fresh}" "${committed}"
                RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "${stale}\n(fresh amalgamation for comparison: ${fresh})")
endif()
message(STATUS "single_include/ruvector/attention.hpp is up to date")
