# Builds the single-header edition single_include/ruvector/attention.hpp.
#
#   cmake -DSOURCE_DIR=<repo root> -DOUTPUT=<file> -P cmake/amalgamate.cmake
#   (or: cmake --build <build-dir> --target amalgamate)
#
# Starting from include/ruvector/attention.hpp, every `#include <ruvector/...>` or
# `#include "ruvector/..."` line is replaced by the text of that header the first time it is met and
# dropped afterwards. `#pragma once` lines of the inlined headers are dropped; the output gets one
# `#pragma once` under a banner. Every other #include (standard library, Eigen, xsimd, nlohmann)
# stays as written. The output has no timestamp: the same sources always give the same bytes, so a
# test can compare it with the committed copy.
cmake_minimum_required(VERSION 3.21)

if(NOT SOURCE_DIR)
  get_filename_component(SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
if(NOT OUTPUT)
  set(OUTPUT "${SOURCE_DIR}/single_include/ruvector/attention.hpp")
endif()
set(_rva_root "${SOURCE_DIR}/include")
set(_rva_entry "ruvector/attention.hpp")
if(NOT EXISTS "${_rva_root}/${_rva_entry}")
  message(FATAL_ERROR "amalgamate: ${_rva_root}/${_rva_entry} does not exist")
endif()

# A directive line we act on, including the newline that ends the line before it (the text is
# handled with one artificial leading newline so that the first line needs no special case).
set(_rva_directive_re
    "\n[ \t]*#[ \t]*(include[ \t]*[<\"]ruvector/[^>\"\n]+[>\"]|pragma[ \t]+once)[^\n]*")
set(_rva_include_re "include[ \t]*[<\"](ruvector/[^>\"\n]+)[>\"]")
set(_rva_quoted_re "\n[ \t]*#[ \t]*include[ \t]*\"([^\"\n]+)\"")

set_property(GLOBAL PROPERTY RVA_SEEN "")
set_property(GLOBAL PROPERTY RVA_TEXT "")

function(_rva_emit text)
  set_property(GLOBAL APPEND_STRING PROPERTY RVA_TEXT "${text}")
endfunction()

# Appends the expansion of header `rel` (relative to include/) to RVA_TEXT, starting with "\n".
function(_rva_expand rel)
  set_property(GLOBAL APPEND PROPERTY RVA_SEEN "${rel}")
  file(READ "${_rva_root}/${rel}" content)
  if(NOT content MATCHES "\n$")
    string(APPEND content "\n")
  endif()
  set(rest "\n${content}")

  # Headers must spell their includes from the include root (DESIGN.md section 2); a quoted include
  # relative to the including file would not survive amalgamation, so refuse it here.
  get_filename_component(dir "${_rva_root}/${rel}" DIRECTORY)
  string(REGEX MATCHALL "${_rva_quoted_re}" quoted "${rest}")
  foreach(q IN LISTS quoted)
    string(REGEX MATCH "\"([^\"\n]+)\"" _ "${q}")
    set(target "${CMAKE_MATCH_1}")
    if(NOT target MATCHES "^ruvector/" AND EXISTS "${dir}/${target}")
      message(FATAL_ERROR "amalgamate: ${rel} includes \"${target}\" relative to itself; "
                          "spell it from the include root (<ruvector/...>)")
    endif()
  endforeach()

  while(TRUE)
    string(REGEX MATCH "${_rva_directive_re}" line "${rest}")
    if(line STREQUAL "")
      break()
    endif()
    # The leftmost regex match is also the first occurrence of its text.
    string(FIND "${rest}" "${line}" pos)
    string(LENGTH "${line}" len)
    string(SUBSTRING "${rest}" 0 ${pos} before)
    math(EXPR after "${pos} + ${len}")
    string(SUBSTRING "${rest}" ${after} -1 rest)
    _rva_emit("${before}")

    if(line MATCHES "${_rva_include_re}")
      set(inc "${CMAKE_MATCH_1}")
      cmake_path(NORMAL_PATH inc)
      get_property(seen GLOBAL PROPERTY RVA_SEEN)
      if(NOT inc IN_LIST seen)
        if(NOT EXISTS "${_rva_root}/${inc}")
          message(FATAL_ERROR "amalgamate: ${rel} includes <${inc}>, which is not under ${_rva_root}")
        endif()
        _rva_emit("\n// ---- begin ${inc} ----")
        _rva_expand("${inc}")
        _rva_emit("// ---- end ${inc} ----")
      endif()
    endif()
    # Otherwise: `#pragma once`, or a header already inlined: the line is dropped.
  endwhile()
  _rva_emit("${rest}")
endfunction()

# The version for the banner.
include("${CMAKE_CURRENT_LIST_DIR}/read_version.cmake")
ruvector_attention_read_version("${_rva_root}/ruvector/attention/version.hpp" _rva_version)

_rva_expand("${_rva_entry}")
get_property(_rva_body GLOBAL PROPERTY RVA_TEXT)
string(REGEX REPLACE "^\n+" "" _rva_body "${_rva_body}")
string(REGEX REPLACE "\n+$" "" _rva_body "${_rva_body}")
string(APPEND _rva_body "\n")

set(_rva_banner "\
// ruvector-attention ${_rva_version} -- single-header edition.
//
// GENERATED FILE, do not edit: include/ruvector/attention.hpp with every ruvector/ header it
// includes inlined once, made by cmake/amalgamate.cmake.
// Regenerate with: cmake --build <build-dir> --target amalgamate
//
// Needs C++20 and, on the include path, Eigen >= 3.4, xsimd and nlohmann_json.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 ruvector-attention contributors
#pragma once

")

set(_rva_tmp "${OUTPUT}.tmp")
file(WRITE "${_rva_tmp}" "${_rva_banner}${_rva_body}")
file(COPY_FILE "${_rva_tmp}" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${_rva_tmp}")
get_property(_rva_seen GLOBAL PROPERTY RVA_SEEN)
list(LENGTH _rva_seen _rva_count)
message(STATUS "amalgamate: ${_rva_count} headers -> ${OUTPUT}")
