# Install rules: headers, shared + static libraries, a CMake package
# (find_package(lamina) gives lamina::lamina; COMPONENTS static adds
# lamina::lamina_static) and a pkg-config file (pkg-config --cflags --libs
# lamina; --static for the archive).
#
# The two libraries are separate exports: the shared one needs only OpenCL
# from its users, while the static one carries CLBlast and cJSON as link
# dependencies, which need their development packages. Keeping them apart
# lets a user without those packages use the shared library.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS lamina EXPORT laminaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT laminaTargets NAMESPACE lamina::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)
install(TARGETS lamina_static EXPORT laminaStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT laminaStaticTargets NAMESPACE lamina::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/laminaConfig.cmake.in
  ${CMAKE_BINARY_DIR}/laminaConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/laminaConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/laminaConfig.cmake ${CMAKE_BINARY_DIR}/laminaConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)

# pkg-config: the static library's private dependencies go in Libs.private
# as plain linker flags, not Requires.private, so that `pkg-config --cflags
# lamina` needs no clblast.pc or libcjson.pc and adds none of their include
# dirs (-I/usr/include/cjson). "-L<dir>" is left out for the linker's own dirs.
set(LAMINA_PC_LIBS_PRIVATE "")
set(LAMINA_PC_DEPS ${LAMINA_PRIVATE_DEPS})
list(REMOVE_ITEM LAMINA_PC_DEPS Threads::Threads)
foreach(dep ${LAMINA_PC_DEPS})
  get_target_property(loc ${dep} LOCATION)
  if(loc)
    get_filename_component(dir "${loc}" DIRECTORY)
    get_filename_component(lib "${loc}" NAME_WE)
    string(REGEX REPLACE "^lib" "" lib "${lib}")
    if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
      string(APPEND LAMINA_PC_LIBS_PRIVATE " -L${dir}")
    endif()
    string(APPEND LAMINA_PC_LIBS_PRIVATE " -l${lib}")
  else()
    string(APPEND LAMINA_PC_LIBS_PRIVATE " -l${dep}")
  endif()
endforeach()
string(STRIP "${LAMINA_PC_LIBS_PRIVATE} -lm ${CMAKE_THREAD_LIBS_INIT}" LAMINA_PC_LIBS_PRIVATE)
file(RELATIVE_PATH LAMINA_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_SOURCE_DIR}/cmake/lamina.pc.in ${CMAKE_BINARY_DIR}/lamina.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/lamina.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
