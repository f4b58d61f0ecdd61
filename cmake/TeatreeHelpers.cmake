# One way to declare Teatree's libraries, tests and benchmarks.

add_library(teatree_warnings INTERFACE)
# Options structs are filled with designated initializers that leave the rest at their
# defaults; GCC's -Wmissing-field-initializers would flag exactly that idiom.
target_compile_options(teatree_warnings INTERFACE -Wall -Wextra -Werror
                                                  -Wno-missing-field-initializers)

if(TEATREE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(TEATREE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TEATREE_FUZZ needs clang's libFuzzer: configure with the fuzz preset")
  endif()
  # Coverage feedback from all of Teatree's code, not only the targets' own files; libFuzzer's
  # main() is linked into the fuzz targets alone (teatree_add_fuzz_target).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# teatree_add_module(<name> SOURCES <files...> DEPS <targets...>)
# A static library teatree_<name> (alias teatree::<name>) rooted at src/, so code includes
# "teatree/<module>/<file>.h". <name> uses '_' where the directory has '/'.
function(teatree_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(teatree_${name} STATIC ${ARG_SOURCES})
  add_library(teatree::${name} ALIAS teatree_${name})
  target_include_directories(teatree_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src
                                                     ${CMAKE_BINARY_DIR}/generated)
  target_link_libraries(teatree_${name} PUBLIC ${ARG_DEPS} PRIVATE teatree_warnings)
  if(TEATREE_FUZZ)
    # The fuzz build compiles only what its targets link.
    set_target_properties(teatree_${name} PROPERTIES EXCLUDE_FROM_ALL TRUE)
  endif()
endfunction()

# teatree_add_test(<name> SOURCES <files...> DEPS <targets...> [LABELS <labels...>])
# A GoogleTest executable registered with CTest, one CTest test per TEST().
function(teatree_add_test name)
  if(NOT TEATREE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} teatree_test_main teatree_warnings)
  set(properties TIMEOUT 600)
  if(ARG_LABELS)
    list(APPEND properties LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${properties})
endfunction()

# teatree_add_benchmark(<name> SOURCES <files...> DEPS <targets...> [CUSTOM_MAIN])
# A Google Benchmark executable in build/bench/; `make bench` runs every one. It uses the
# shared main (bench/bench_main.cc) unless CUSTOM_MAIN says its sources bring their own.
function(teatree_add_benchmark name)
  if(NOT TEATREE_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "CUSTOM_MAIN" "" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_CUSTOM_MAIN)
    list(APPEND ARG_SOURCES ${CMAKE_SOURCE_DIR}/bench/bench_main.cc)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark teatree_warnings)
endfunction()

# teatree_add_fuzz_target(<name> SOURCES <files...> DEPS <targets...> CORPUS <dir>
#                         [FLAGS <libFuzzer flags...>])
# A libFuzzer executable in build-fuzz/fuzz/ (only with TEATREE_FUZZ), its checked-in seed
# corpus <dir> (relative to the current source directory), and a CTest test `fuzz.<name>`
# that runs it for a few seconds from those seeds under the sanitizers; `make fuzz` runs
# every target for longer (scripts/fuzz), with FLAGS added to libFuzzer's command line.
function(teatree_add_fuzz_target name)
  if(NOT TEATREE_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "CORPUS" "SOURCES;DEPS;FLAGS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} teatree_warnings)
  cmake_path(ABSOLUTE_PATH ARG_CORPUS BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  list(JOIN ARG_FLAGS " " flags)
  set_property(GLOBAL APPEND PROPERTY TEATREE_FUZZ_TARGETS
               "${name}\t$<TARGET_FILE:${name}>\t${ARG_CORPUS}\t${flags}")
  add_test(NAME fuzz.${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/fuzz --fresh ${CMAKE_BINARY_DIR} 5 ${name})
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

# Writes build-fuzz/fuzz/targets.tsv (name, executable, seed corpus, flags), what
# scripts/fuzz runs.
function(teatree_write_fuzz_manifest)
  if(NOT TEATREE_FUZZ)
    return()
  endif()
  get_property(targets GLOBAL PROPERTY TEATREE_FUZZ_TARGETS)
  list(JOIN targets "\n" lines)
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fuzz/targets.tsv CONTENT "${lines}\n")
endfunction()
