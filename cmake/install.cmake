# `make install` / `cmake --install`: libdblock (static and shared), its
# headers (with the UAPI header as <linux/dblock.h>), pkg-config and CMake
# package files, the tools, man pages, the udev rule and the systemd unit.
# Included at the end of the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

# Empty: derived from the prefix at every configure, so that reconfiguring a
# build directory with another prefix (make install PREFIX=/usr after
# /usr/local) moves them too.  udev does not read rules under /usr/local:
# outside /usr, /etc; systemd reads units under /usr/lib and /usr/local/lib.
set(DBLOCK_UDEV_RULES_DIR "" CACHE PATH
    "Where to install 60-dblock.rules (empty: /usr/lib/udev/rules.d for the prefix /usr, else /etc/udev/rules.d)")
set(DBLOCK_SYSTEMD_UNIT_DIR "" CACHE PATH
    "Where to install dblock@.service (empty: PREFIX/lib/systemd/system)")
if(DBLOCK_UDEV_RULES_DIR)
  set(dblock_udev_dir ${DBLOCK_UDEV_RULES_DIR})
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(dblock_udev_dir /usr/lib/udev/rules.d)
else()
  set(dblock_udev_dir /etc/udev/rules.d)
endif()
if(DBLOCK_SYSTEMD_UNIT_DIR)
  set(dblock_unit_dir ${DBLOCK_SYSTEMD_UNIT_DIR})
else()
  set(dblock_unit_dir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()

install(TARGETS dblock dblock_shared EXPORT dblockTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY libdblock/include/dblock DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(FILES include/uapi/linux/dblock.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/linux)

# find_package(dblock) -> dblock::dblock (shared), dblock::dblock_static.
set(dblock_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/dblock)
install(EXPORT dblockTargets NAMESPACE dblock:: DESTINATION ${dblock_cmake_dir})
configure_package_config_file(packaging/cmake/dblockConfig.cmake.in
  ${PROJECT_BINARY_DIR}/packaging/dblockConfig.cmake INSTALL_DESTINATION ${dblock_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/packaging/dblockConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/packaging/dblockConfig.cmake
              ${PROJECT_BINARY_DIR}/packaging/dblockConfigVersion.cmake
        DESTINATION ${dblock_cmake_dir})

# pkg-config: paths relative to ${prefix}, so that a DESTDIR tree works with
# PKG_CONFIG_SYSROOT_DIR or --define-prefix.
configure_file(packaging/pkgconfig/dblock.pc.in ${PROJECT_BINARY_DIR}/packaging/dblock.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/dblock.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS dblockctl dblock-serve dblock_sample_ramdisk
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES docs/man/dblockctl.8 docs/man/dblock-serve.8 docs/man/dblock_sample_ramdisk.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

install(FILES packaging/udev/60-dblock.rules DESTINATION ${dblock_udev_dir})
configure_file(packaging/systemd/dblock@.service.in
  ${PROJECT_BINARY_DIR}/packaging/dblock@.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/dblock@.service
        DESTINATION ${dblock_unit_dir})
install(FILES packaging/systemd/example.conf docs/install.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
