# libFuzzer harnesses (tests/fuzz/fuzz_*.c), built only with -DBG_FUZZ=ON and
# clang. Include it after the pkg_check_modules() calls and enable_testing().
#
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DBG_FUZZ=ON [-DFUZZ_SECONDS=30]
#   cmake --build build-fuzz --target fuzz          # every harness
#   ctest --test-dir build-fuzz -L fuzz             # each one for FUZZ_SECONDS
#
# Each harness compiles the src/*.c files it needs into itself with
# -fsanitize=fuzzer-no-link,address,undefined (bgcore is built without
# coverage instrumentation, so linking it would leave the core blind to the
# fuzzer), and links with -fsanitize=fuzzer,address,undefined. UBSan does not
# recover: undefined behaviour aborts, so libFuzzer counts it as a crash.
#
# ctest runs fuzz.<name> as
#   fuzz_<name> <build>/fuzz/corpus/fuzz_<name> <src>/tests/fuzz/corpus/fuzz_<name>
# The first directory is a copy of the committed seeds (refreshed on every
# build) into which libFuzzer writes what it finds; the committed corpus is
# only read. Crash, leak, timeout and OOM inputs land in
# <build>/fuzz/crashes/fuzz_<name>/. Any of them fails the test.
#
# Cache variables: FUZZ_SECONDS (per harness, default 30), FUZZ_TIMEOUT (one
# input, seconds, default 10), FUZZ_RSS_MB (default 2048).

option(BG_FUZZ "Build libFuzzer harnesses and register them as ctest label 'fuzz' (clang only)" OFF)
if(NOT BG_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(WARNING "BG_FUZZ=ON needs clang (configure with -DCMAKE_C_COMPILER=clang); "
                  "the C compiler is ${CMAKE_C_COMPILER_ID}: no fuzz targets")
  return()
endif()

set(FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzz harness runs under ctest")
set(FUZZ_TIMEOUT 10 CACHE STRING "Seconds one input may take before libFuzzer calls it a hang")
set(FUZZ_RSS_MB 2048 CACHE STRING "Memory (MB) a fuzz harness may use before libFuzzer calls it an OOM")

foreach(dep LUA CURL CJSON)
  if(NOT TARGET PkgConfig::${dep})
    message(FATAL_ERROR "cmake/fuzz.cmake: include it after pkg_check_modules(${dep} ...)")
  endif()
endforeach()

set(BG_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -g)
set(BG_FUZZ_LINK_FLAGS -fsanitize=fuzzer,address,undefined)
add_custom_target(fuzz)

# bg_fuzz_target(NAME SOURCES src/a.c ... [LIBS lib ...]) builds
# tests/fuzz/fuzz_NAME.c with those core sources and registers fuzz.NAME.
function(bg_fuzz_target name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  set(target fuzz_${name})
  set(sources ${CMAKE_SOURCE_DIR}/tests/fuzz/${target}.c)
  foreach(s ${F_SOURCES})
    list(APPEND sources ${CMAKE_SOURCE_DIR}/${s})
  endforeach()
  add_executable(${target} ${sources})
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(${target} PRIVATE BG_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_compile_options(${target} PRIVATE ${BG_FUZZ_FLAGS})
  target_link_options(${target} PRIVATE ${BG_FUZZ_LINK_FLAGS})
  target_link_libraries(${target} PRIVATE ${F_LIBS})

  set(seeds ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${target})
  set(work ${CMAKE_BINARY_DIR}/fuzz/corpus/${target})
  set(crashes ${CMAKE_BINARY_DIR}/fuzz/crashes/${target})
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E make_directory ${work} ${crashes}
    COMMAND ${CMAKE_COMMAND} -E copy_directory ${seeds} ${work}
    VERBATIM)
  add_dependencies(fuzz ${target})

  add_test(NAME fuzz.${name}
    COMMAND ${target} -max_total_time=${FUZZ_SECONDS} -timeout=${FUZZ_TIMEOUT}
            -rss_limit_mb=${FUZZ_RSS_MB} -print_final_stats=1
            -artifact_prefix=${crashes}/ ${work} ${seeds}
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  # Loading the corpus and the final merge take a little beyond the budget.
  math(EXPR limit "${FUZZ_SECONDS} + ${FUZZ_TIMEOUT} + 60")
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT ${limit})
endfunction()

# What each core unit drags in: run_spec_free and the run reader live in
# run.c, which calls the engine client (docker.c), which frees its transport
# (transport_curl.c); the Lua loaders need profiles, settings and luajson.
set(bg_fuzz_run_sources
  src/sandbox/run.c src/docker/docker.c src/docker/transport_curl.c src/docker/frame.c
  src/proto/proto.c src/common/buf.c src/common/err.c src/common/log.c)
set(bg_fuzz_script_sources
  src/script/script.c src/script/luajson.c src/script/capalloc.c src/core/profile.c src/core/config.c
  src/common/jsonstr.c src/common/utf8.c)

bg_fuzz_target(request
  SOURCES src/core/request.c src/common/base64.c ${bg_fuzz_script_sources}
          ${bg_fuzz_run_sources}
  LIBS PkgConfig::LUA PkgConfig::CJSON PkgConfig::CURL)
bg_fuzz_target(utf8 SOURCES src/common/utf8.c src/common/buf.c)
bg_fuzz_target(frame SOURCES src/docker/frame.c)
bg_fuzz_target(proto
  SOURCES ${bg_fuzz_run_sources}
  LIBS PkgConfig::CJSON PkgConfig::CURL)
bg_fuzz_target(profiles
  SOURCES ${bg_fuzz_script_sources} src/core/request.c src/common/base64.c
          ${bg_fuzz_run_sources}
  LIBS PkgConfig::LUA PkgConfig::CJSON PkgConfig::CURL)
bg_fuzz_target(base64 SOURCES src/common/base64.c src/common/buf.c)
bg_fuzz_target(wire
  SOURCES src/cluster/wire.c src/common/base64.c ${bg_fuzz_run_sources}
  LIBS PkgConfig::CJSON PkgConfig::CURL)
