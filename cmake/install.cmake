# Install rules: headers, shared + static libraries, a CMake package
# (find_package(lamina) gives lamina::lamina and lamina::lamina_static) and a
# pkg-config file (pkg-config --cflags --libs lamina).
include(CMakePackageConfigHelpers)

install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS lamina lamina_static EXPORT laminaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT laminaTargets NAMESPACE lamina::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/laminaConfig.cmake.in
  ${CMAKE_BINARY_DIR}/laminaConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/laminaConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/laminaConfig.cmake ${CMAKE_BINARY_DIR}/laminaConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)

file(RELATIVE_PATH LAMINA_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_SOURCE_DIR}/cmake/lamina.pc.in ${CMAKE_BINARY_DIR}/lamina.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/lamina.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
