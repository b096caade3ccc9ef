# cmake/toolchain-mingw64.cmake: cross-compiling lamina for 64-bit Windows
# with MinGW-w64 (Debian's gcc-mingw-w64-x86-64) from Linux:
#
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-mingw64.cmake
#   cmake --build build-mingw          # lamina.dll, liblamina.dll.a, liblamina.a
#
# or `tools/build.sh windows`. OpenCL: cmake/mingw_opencl.cmake makes an
# import library for OpenCL.dll from the Linux ICD loader's exported symbols
# and uses the host's Khronos headers, unless OpenCL_LIBRARY /
# OpenCL_INCLUDE_DIR are given (e.g. a Windows OpenCL SDK).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(LAMINA_MINGW_PREFIX x86_64-w64-mingw32 CACHE STRING "MinGW-w64 tool prefix")
set(CMAKE_C_COMPILER ${LAMINA_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${LAMINA_MINGW_PREFIX}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${LAMINA_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# No libgcc DLL to ship beside lamina.dll.
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc")
