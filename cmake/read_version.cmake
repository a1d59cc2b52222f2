# ruvector_attention_read_version(<header> <out-var>)
# Sets <out-var> to "MAJOR.MINOR.PATCH" from the RUVECTOR_ATTENTION_VERSION_{MAJOR,MINOR,PATCH}
# #define lines of <header> (include/ruvector/attention/version.hpp, the single source of the
# version). Used by CMakeLists.txt and cmake/amalgamate.cmake.
function(ruvector_attention_read_version header out_var)
  file(STRINGS "${header}" lines
       REGEX "^#[ \t]*define[ \t]+RUVECTOR_ATTENTION_VERSION_(MAJOR|MINOR|PATCH)[ \t]+[0-9]+")
  set(version "")
  foreach(part IN ITEMS MAJOR MINOR PATCH)
    if(NOT lines MATCHES "#[ \t]*define[ \t]+RUVECTOR_ATTENTION_VERSION_${part}[ \t]+([0-9]+)")
      message(FATAL_ERROR "Cannot parse RUVECTOR_ATTENTION_VERSION_${part} from ${header}")
    endif()
    list(APPEND version "${CMAKE_MATCH_1}")
  endforeach()
  list(JOIN version "." version)
  set(${out_var} "${version}" PARENT_SCOPE)
endfunction()
