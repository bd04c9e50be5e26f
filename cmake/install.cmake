# Installation: headers, both libraries, a pkg-config file and a CMake
# package config, so outside projects use either
#   pkg-config --cflags --libs mainstack      or      find_package(mainstack)
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mainstack
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mainstack mainstack_static EXPORT mainstackTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mainstackTargets NAMESPACE mainstack::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mainstack)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mainstack-config.cmake.in
  ${PROJECT_BINARY_DIR}/mainstack-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mainstack)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mainstack-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mainstack-config.cmake
              ${PROJECT_BINARY_DIR}/mainstack-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mainstack)

file(RELATIVE_PATH MS_PC_PREFIX_REL "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/mainstack.pc.in
               ${PROJECT_BINARY_DIR}/mainstack.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mainstack.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The JSON Schemas of the context files: `mstack check` falls back to them
# when it runs outside a project tree.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/schemas/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/mainstack/schemas
        FILES_MATCHING PATTERN "*.schema.json")
