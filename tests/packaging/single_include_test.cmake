# single_include_quickstart: examples/quickstart.cpp built against the committed single header
# alone (include path: single_include/ plus the dependencies, never include/), then run.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")
pk_begin(single_include)
pk_require_file("${RVA_QUICKSTART}" "examples/quickstart.cpp")
pk_require_file("${RVA_SOURCE_DIR}/single_include/ruvector/attention.hpp"
                "single_include/ruvector/attention.hpp (cmake --build <build> --target amalgamate)")

pk_compile_command(cmd)
set(exe "${PK_WORK}/quickstart_single_include${CMAKE_EXECUTABLE_SUFFIX}")
separate_arguments(link_flags UNIX_COMMAND "${RVA_EXE_LINKER_FLAGS}")
pk_run("compile" COMMAND ${cmd} -I "${RVA_SOURCE_DIR}/single_include" "${RVA_QUICKSTART}"
                         ${link_flags} -o "${exe}")
pk_run("run" COMMAND "${exe}")
message(STATUS "quickstart output:\n${PK_LAST_OUTPUT}")
