#pragma once

#include <arrow/c/abi.h>
#include <duckdb.h>

#include <memory>
#include <vector>

#include "teatree/engine/duckdb/duckdb_database.h"

namespace teatree {

struct DuckDatabase::Impl {
  duckdb_database database = nullptr;
  ~Impl() { duckdb_close(&database); }
};

struct DuckConnection::Impl {
  std::shared_ptr<DuckDatabase> database;  // Shared by all connections: keeps it open.
  duckdb_connection connection = nullptr;
  // Streams behind views made by RegisterArrowView; released after the connection closes.
  std::vector<std::unique_ptr<ArrowArrayStream>> streams;

  ~Impl() {
    duckdb_disconnect(&connection);
    for (auto& stream : streams) {
      if (stream->release != nullptr) stream->release(stream.get());
    }
  }
};

}  // namespace teatree
