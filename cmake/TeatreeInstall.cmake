# `make install PREFIX=DIR` (cmake --install): a tree that runs from wherever it is moved to,
# without the build machine's cache:
#   bin/teatree                  RUNPATH $ORIGIN/../lib
#   lib/                         libduckdb and the Arrow libraries teatree links
#   libexec/teatree/nats-server  the pinned server teatree starts for `serve`
# The Debian libraries teatree links (nats.c, libpq, SQLite, spdlog, ...) come from the
# system, as packages; `make image` adds them to the image.

if(TEATREE_FUZZ)
  return()
endif()

set_target_properties(teatree PROPERTIES INSTALL_RPATH "$ORIGIN/../lib")
install(TARGETS teatree RUNTIME DESTINATION bin)
install(FILES ${TEATREE_RUNTIME_LIBS} DESTINATION lib)
if(TARGET ArrowFlight::arrow_flight_shared)  # An Arrow installation of the user's own.
  install(IMPORTED_RUNTIME_ARTIFACTS Arrow::arrow_shared ArrowDataset::arrow_dataset_shared
          ArrowFlight::arrow_flight_shared DESTINATION lib)
endif()
if(TEATREE_NATS_SERVER)
  install(PROGRAMS ${TEATREE_NATS_SERVER} DESTINATION libexec/teatree)
endif()
# `cmake --install --strip` (make install) strips the libraries too: a fifth of their size.
foreach(_lib IN LISTS TEATREE_RUNTIME_LIBS)
  get_filename_component(_name ${_lib} NAME)
  install(CODE "if(CMAKE_INSTALL_DO_STRIP)
    execute_process(COMMAND ${CMAKE_STRIP} --strip-unneeded
                    \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/${_name}\")
  endif()")
endforeach()
