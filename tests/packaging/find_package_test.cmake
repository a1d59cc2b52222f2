# find_package_consumer: install the project into a prefix, then build and run the
# find_package_consumer project (examples/quickstart.cpp) against that prefix.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")
pk_begin(find_package)

set(prefix "${PK_WORK}/prefix")
pk_install_project("install" BUILD "${PK_WORK}/project-build" PREFIX "${prefix}")

foreach(file IN ITEMS include/ruvector/attention.hpp include/ruvector/attention/version.hpp
                      share/cmake/ruvector_attention/ruvector_attentionConfig.cmake
                      share/cmake/ruvector_attention/ruvector_attentionConfigVersion.cmake
                      share/cmake/ruvector_attention/ruvector_attentionTargets.cmake)
  pk_require_file("${prefix}/${file}" "installed file")
endforeach()

pk_find_package_consumer("consumer" PREFIX "${prefix}" BUILD "${PK_WORK}/consumer-build")
