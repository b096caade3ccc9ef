# cmake/mingw_opencl.cmake: OpenCL for the MinGW-w64 cross build (included
# by CMakeLists.txt when WIN32 AND CMAKE_CROSSCOMPILING).
#
# Debian ships no Windows OpenCL ICD loader. Every Windows OpenCL driver
# installs OpenCL.dll, whose exports are the Khronos API, the same names the
# Linux ICD loader (libOpenCL.so.1) exports. So the import library is made
# here: the loader's defined "cl*" functions (nm -D) become a .def file, and
# dlltool turns it into libOpenCL.dll.a (x86-64 has one calling convention,
# so the names need no @N decoration). The headers are the host's Khronos
# headers (opencl-headers), copied into the build tree so that the cross
# compiler does not see the rest of /usr/include.
set(LAMINA_OPENCL_ICD_SO /usr/lib/x86_64-linux-gnu/libOpenCL.so.1 CACHE FILEPATH
    "Linux ICD loader whose exports define the Windows OpenCL import library")
set(LAMINA_OPENCL_HEADERS /usr/include/CL CACHE PATH "Khronos OpenCL headers (CL/ folder)")

if(NOT OpenCL_INCLUDE_DIR)
  if(NOT EXISTS ${LAMINA_OPENCL_HEADERS}/cl.h)
    message(FATAL_ERROR "mingw_opencl: no ${LAMINA_OPENCL_HEADERS}/cl.h (apt-get install opencl-headers, "
                        "or pass -DOpenCL_INCLUDE_DIR=)")
  endif()
  file(COPY ${LAMINA_OPENCL_HEADERS}/ DESTINATION ${CMAKE_BINARY_DIR}/opencl/include/CL)
  set(OpenCL_INCLUDE_DIR ${CMAKE_BINARY_DIR}/opencl/include CACHE PATH "OpenCL headers" FORCE)
endif()

if(NOT OpenCL_LIBRARY)
  find_program(LAMINA_HOST_NM NAMES nm)
  find_program(LAMINA_DLLTOOL NAMES ${LAMINA_MINGW_PREFIX}-dlltool x86_64-w64-mingw32-dlltool dlltool)
  if(NOT LAMINA_HOST_NM OR NOT LAMINA_DLLTOOL OR NOT EXISTS ${LAMINA_OPENCL_ICD_SO})
    message(FATAL_ERROR "mingw_opencl: need nm, ${LAMINA_MINGW_PREFIX}-dlltool and "
                        "${LAMINA_OPENCL_ICD_SO} (ocl-icd-libopencl1), or -DOpenCL_LIBRARY=")
  endif()
  execute_process(COMMAND ${LAMINA_HOST_NM} -D --defined-only ${LAMINA_OPENCL_ICD_SO}
                  OUTPUT_VARIABLE nm_out RESULT_VARIABLE nm_rc)
  if(NOT nm_rc EQUAL 0)
    message(FATAL_ERROR "mingw_opencl: nm -D ${LAMINA_OPENCL_ICD_SO} failed")
  endif()
  string(REGEX MATCHALL "[0-9a-fA-F]+ T cl[A-Za-z0-9_]+" lines "${nm_out}")
  set(def "LIBRARY OpenCL.dll\nEXPORTS\n")
  set(count 0)
  foreach(line ${lines})
    string(REGEX REPLACE ".* T " "" name "${line}")
    string(APPEND def "  ${name}\n")
    math(EXPR count "${count} + 1")
  endforeach()
  set(dir ${CMAKE_BINARY_DIR}/opencl)
  file(WRITE ${dir}/OpenCL.def "${def}")
  execute_process(COMMAND ${LAMINA_DLLTOOL} -d ${dir}/OpenCL.def -D OpenCL.dll -l ${dir}/libOpenCL.dll.a
                  RESULT_VARIABLE dt_rc)
  if(NOT dt_rc EQUAL 0 OR NOT EXISTS ${dir}/libOpenCL.dll.a)
    message(FATAL_ERROR "mingw_opencl: ${LAMINA_DLLTOOL} could not make libOpenCL.dll.a")
  endif()
  message(STATUS "mingw_opencl: libOpenCL.dll.a with ${count} functions from ${LAMINA_OPENCL_ICD_SO}")
  set(OpenCL_LIBRARY ${dir}/libOpenCL.dll.a CACHE FILEPATH "OpenCL import library" FORCE)
endif()
