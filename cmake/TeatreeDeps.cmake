# Locates Teatree's third-party dependencies and exposes each as one interface target:
#   teatree_dep::duckdb  teatree_dep::arrow (arrow, compute, acero, dataset, parquet, s3)
#   teatree_dep::flight  teatree_dep::nats   teatree_dep::sqlite teatree_dep::pqxx
#   teatree_dep::json    teatree_dep::cli    teatree_dep::log    teatree_dep::http (cpp-httplib)
#   teatree_dep::metrics (prometheus-cpp)  teatree_dep::yaml (yaml-cpp, for kubeconfig files)
#
# DuckDB and Arrow: a user's own installation is used when CMake finds one
# (-DDUCKDB_ROOT=/prefix, -DArrow_DIR=/prefix/lib/cmake/Arrow); otherwise the copies that
# scripts/bootstrap unpacked under TEATREE_CACHE, at the versions in scripts/versions.env.

set(TEATREE_CACHE "$ENV{TEATREE_CACHE}" CACHE PATH "scripts/bootstrap's download cache")
if(NOT TEATREE_CACHE)
  set(TEATREE_CACHE "$ENV{HOME}/.cache/teatree")
endif()

# Reads KEY=VALUE pins from scripts/versions.env into TEATREE_PIN_<KEY>.
file(STRINGS ${CMAKE_SOURCE_DIR}/scripts/versions.env _pins REGEX "^[A-Z0-9_]+=")
foreach(_pin IN LISTS _pins)
  string(REGEX MATCH "^([A-Z0-9_]+)=(.*)$" _ "${_pin}")
  set(TEATREE_PIN_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
endforeach()

set(_bootstrap_hint "run scripts/bootstrap (or make test), which installs it")

# --- DuckDB (C API only) -------------------------------------------------------------
set(_duckdb_bootstrap ${TEATREE_CACHE}/duckdb-${TEATREE_PIN_DUCKDB_LIB_VERSION})
find_path(DUCKDB_INCLUDE_DIR duckdb.h HINTS ${DUCKDB_ROOT}/include ${_duckdb_bootstrap}/include)
find_library(DUCKDB_LIBRARY duckdb HINTS ${DUCKDB_ROOT}/lib ${_duckdb_bootstrap}/lib)
if(NOT DUCKDB_INCLUDE_DIR OR NOT DUCKDB_LIBRARY)
  message(FATAL_ERROR "DuckDB not found (duckdb.h and libduckdb.so): ${_bootstrap_hint}, "
                      "or pass -DDUCKDB_ROOT=<prefix>")
endif()
add_library(teatree_dep_duckdb INTERFACE)
target_include_directories(teatree_dep_duckdb SYSTEM INTERFACE ${DUCKDB_INCLUDE_DIR})
target_link_libraries(teatree_dep_duckdb INTERFACE ${DUCKDB_LIBRARY})
add_library(teatree_dep::duckdb ALIAS teatree_dep_duckdb)
message(STATUS "DuckDB: ${DUCKDB_LIBRARY}")
set(TEATREE_RUNTIME_LIBS ${DUCKDB_LIBRARY})

# --- Arrow C++ --------------------------------------------------------------------------
add_library(teatree_dep_arrow INTERFACE)
add_library(teatree_dep_flight INTERFACE)
# The system's OpenSSL goes first, ahead of Arrow: the pyarrow wheel's libparquet exports an
# OpenSSL of its own, and whichever comes first in load order serves every OpenSSL call in
# the process. Were it libparquet's, nats.c (TLS to NATS) and our own SHA-256 would call into
# a mix of the two libraries and crash (X509_STORE_set_default_paths did).
# A link option, so that it comes before every library on the command line, and needed even
# where nothing calls it directly.
find_package(OpenSSL REQUIRED)
target_link_options(teatree_dep_arrow INTERFACE
  "LINKER:--push-state,--no-as-needed,${OPENSSL_SSL_LIBRARY},${OPENSSL_CRYPTO_LIBRARY},--pop-state")
find_package(Arrow CONFIG QUIET)
if(Arrow_FOUND)
  find_package(ArrowDataset CONFIG REQUIRED)
  find_package(ArrowFlight CONFIG REQUIRED)
  target_link_libraries(teatree_dep_arrow INTERFACE ArrowDataset::arrow_dataset_shared)
  target_link_libraries(teatree_dep_flight INTERFACE ArrowFlight::arrow_flight_shared)
  message(STATUS "Arrow: ${Arrow_DIR} (${ARROW_VERSION})")
else()
  set(_arrow_bootstrap ${TEATREE_CACHE}/arrow-${TEATREE_PIN_ARROW_VERSION})
  if(NOT EXISTS ${_arrow_bootstrap}/include/arrow/api.h)
    message(FATAL_ERROR "Arrow C++ not found: ${_bootstrap_hint}, or pass -DArrow_DIR=<dir>")
  endif()
  target_include_directories(teatree_dep_arrow SYSTEM INTERFACE ${_arrow_bootstrap}/include)
  foreach(_lib parquet arrow_dataset arrow_acero arrow_compute arrow_s3 arrow)
    target_link_libraries(teatree_dep_arrow INTERFACE ${_arrow_bootstrap}/lib/lib${_lib}.so)
  endforeach()
  target_link_libraries(teatree_dep_flight INTERFACE ${_arrow_bootstrap}/lib/libarrow_flight.so
                                                     teatree_dep_arrow)
  # What `make install` copies into lib/: the files the links above resolve to.
  foreach(_lib parquet arrow_dataset arrow_acero arrow_compute arrow_s3 arrow arrow_flight)
    list(APPEND TEATREE_RUNTIME_LIBS
         ${_arrow_bootstrap}/lib/lib${_lib}.so.${TEATREE_PIN_ARROW_SO_VERSION})
  endforeach()
  message(STATUS "Arrow: ${_arrow_bootstrap}")
endif()
add_library(teatree_dep::arrow ALIAS teatree_dep_arrow)
add_library(teatree_dep::flight ALIAS teatree_dep_flight)

# --- Debian packages ------------------------------------------------------------------
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx libpq)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
add_library(teatree_dep::yaml ALIAS PkgConfig::YAMLCPP)
find_package(prometheus-cpp CONFIG REQUIRED)
add_library(teatree_dep::http ALIAS PkgConfig::HTTPLIB)
add_library(teatree_dep_metrics INTERFACE)
target_link_libraries(teatree_dep_metrics INTERFACE prometheus-cpp::core)
add_library(teatree_dep::metrics ALIAS teatree_dep_metrics)
add_library(teatree_dep::nats ALIAS PkgConfig::NATS)
add_library(teatree_dep::sqlite ALIAS PkgConfig::SQLITE)
add_library(teatree_dep::pqxx ALIAS PkgConfig::PQXX)
add_library(teatree_dep::json ALIAS nlohmann_json::nlohmann_json)
add_library(teatree_dep::cli ALIAS CLI11::CLI11)
add_library(teatree_dep_log INTERFACE)
target_link_libraries(teatree_dep_log INTERFACE spdlog::spdlog fmt::fmt)
add_library(teatree_dep::log ALIAS teatree_dep_log)

if(TEATREE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TEATREE_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

# --- Runtime programs -----------------------------------------------------------------
# The nats-server that `teatree` spawns when no --nats URL is given: teatree runs the one in
# libexec/teatree/ beside its own bin/ directory (TEATREE_NATS_SERVER overrides it; PATH's
# is the last resort). The build tree gets a link there, `make install` a copy.
find_program(TEATREE_NATS_SERVER nats-server
             HINTS ${TEATREE_CACHE}/nats-server-${TEATREE_PIN_NATS_SERVER_VERSION}/bin
             NO_DEFAULT_PATH)
if(TEATREE_NATS_SERVER)
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/libexec/teatree)
  file(CREATE_LINK ${TEATREE_NATS_SERVER} ${CMAKE_BINARY_DIR}/libexec/teatree/nats-server
       SYMBOLIC)
  message(STATUS "nats-server: ${TEATREE_NATS_SERVER}")
else()
  message(STATUS "nats-server: not in ${TEATREE_CACHE}; teatree uses PATH's")
endif()

# The Python client test environment scripts/bootstrap made for python/requirements.lock.
file(SHA256 ${CMAKE_SOURCE_DIR}/python/requirements.lock _lock_hash)
string(SUBSTRING "${_lock_hash}" 0 12 _lock_hash)
set(_venv_python ${TEATREE_CACHE}/venv-${_lock_hash}/bin/python)
if(EXISTS ${_venv_python})
  set(TEATREE_PYTHON ${_venv_python})
else()
  message(WARNING "Python test environment not found (${_venv_python}): the pytest suite is "
                  "skipped; ${_bootstrap_hint}")
  set(TEATREE_PYTHON "")
endif()
# Re-configure when a pin or the Python lock changes.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_SOURCE_DIR}/scripts/versions.env ${CMAKE_SOURCE_DIR}/python/requirements.lock)
