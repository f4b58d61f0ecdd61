#pragma once

// Benchmarks that read a published model: one table computed by SQL, applied through the
// DuckDB engine and published as a version file, as a manager would.

#include <filesystem>
#include <string>

#include "bench/bench_util.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/functions/function_registry.h"
#include "teatree/manager/model_manager.h"
#include "teatree/request/codec.h"

namespace teatree::bench {

/// Makes model `model` in `data_dir` with table `table` holding the rows of `sql`, publishes
/// it as a version file and returns that file's path. Exits on any failure.
inline std::filesystem::path PublishComputedTable(const std::filesystem::path& data_dir,
                                                  const std::string& model,
                                                  const std::string& table,
                                                  const std::string& sql) {
  FunctionRegistry functions = FunctionRegistry::WithBuiltins();
  OrDie(functions.Register(
      {.name = "make_table", .sql = sql, .write = FunctionWrite{.table = table}}));
  auto engine = OrDie(DuckEngine::Open(
      {.model_dir = ModelDir(data_dir, model), .model = model, .functions = &functions}));
  auto invoke = OrDie(DecodeRequest(R"({"request_id":"r1","model":")" + model +
                                    R"(","op":"invoke","function":"make_table"})"));
  auto batch = OrDie(engine->ApplyBatch({invoke}));
  if (batch.outcomes[0].status != "applied") {
    OrDie(Status::Invalid("make_table: ", batch.outcomes[0].error));
  }
  auto snapshot = OrDie(engine->PrepareSnapshot());
  const auto file = VersionFilePath(data_dir, model, snapshot.version);
  std::filesystem::create_directories(file.parent_path());
  OrDie(engine->WriteVersionFile(snapshot, file));
  return file;
}

}  // namespace teatree::bench
