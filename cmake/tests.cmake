# One cmocka executable per module: bg_unit_test(NAME) builds
# tests/unit/test_NAME.c against the core and registers it with ctest.
function(bg_unit_test name)
  add_executable(test_${name} ${CMAKE_SOURCE_DIR}/tests/unit/test_${name}.c)
  target_link_libraries(test_${name} PRIVATE bgcore PkgConfig::CMOCKA)
  target_compile_definitions(test_${name} PRIVATE BG_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_test(NAME unit.${name} COMMAND test_${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 60)
endfunction()

file(GLOB unit_sources ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${unit_sources})
  get_filename_component(stem ${src} NAME_WE)
  string(REGEX REPLACE "^test_" "" name ${stem})
  bg_unit_test(${name})
endforeach()

find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME unit.supervisor_host
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/unit/supervisor_host_test.py ${SUPERVISOR_BIN})
set_tests_properties(unit.supervisor_host PROPERTIES LABELS unit TIMEOUT 120)

# Integration tests: a real engine, real images, the real binary.
file(GLOB integration_tests ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
foreach(t ${integration_tests})
  get_filename_component(stem ${t} NAME_WE)
  add_test(NAME integration.${stem} COMMAND ${Python3_EXECUTABLE} ${t})
  set_tests_properties(integration.${stem} PROPERTIES LABELS integration TIMEOUT 900
    ENVIRONMENT "BG_BINARY=$<TARGET_FILE:bg-compiler>;BG_SOURCE_DIR=${CMAKE_SOURCE_DIR};BG_SANITIZED=$<BOOL:${BG_SANITIZE}>"
    RUN_SERIAL TRUE)
endforeach()
