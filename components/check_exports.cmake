# cmake -DPLUGIN=<file.so> -DNM=<nm> -P check_exports.cmake
# Fails unless the plugin's dynamic symbol table defines exactly one
# function of its own: mainstack_component.
execute_process(COMMAND ${NM} -D --defined-only ${PLUGIN}
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${PLUGIN}")
endif()
string(REGEX MATCHALL "[0-9a-f]+ [A-Za-z] [^\n]+" syms "${out}")
set(found 0)
foreach(line ${syms})
  string(REGEX REPLACE "^[0-9a-f]+ [A-Za-z] " "" sym "${line}")
  if(sym STREQUAL "mainstack_component")
    set(found 1)
  elseif(NOT sym MATCHES "^(_init|_fini|_edata|_end|__bss_start)$")
    message(FATAL_ERROR "${PLUGIN} exports '${sym}': only mainstack_component may be exported")
  endif()
endforeach()
if(NOT found)
  message(FATAL_ERROR "${PLUGIN} does not export mainstack_component")
endif()
message(STATUS "${PLUGIN}: exports only mainstack_component")
