// The Arrow engine's version publish: a 1,000-row append to a model of about N MB (write one
// Parquet data file, publish the next manifest), beside the baseline of publishing by copying
// the model's data (copy + fsync of its files), which is what a whole-file version pays and
// what the DuckDB engine's publisher does (publish_benchmark). Goal: at most 10 ms at 1 GB.
// Also timed, once each: the version file the manager's publisher writes for replicas (a
// linked .duckdb file of views over the Parquet files), and the self-contained export that
// `teatree pull` ships.
#include <arrow/api.h>

#include <random>

#include "bench/bench_util.h"
#include "teatree/common/file_util.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/arrow/manifest_store.h"
#include "teatree/engine/arrow/version_reads.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;

TableSchema Readings() {
  return OrDie(TableSchema::FromJson(
      "readings",
      nlohmann::json::parse(R"([{"name":"id","type":"BIGINT"},{"name":"a","type":"DOUBLE"},
                                {"name":"b","type":"DOUBLE"},{"name":"c","type":"DOUBLE"}])"),
      nlohmann::json::array({"id"})));
}

/// `rows` rows from `first_id` on; the doubles are random, so Parquet cannot shrink them.
std::shared_ptr<arrow::Table> MakeRows(int64_t first_id, int64_t rows, std::mt19937_64& random) {
  arrow::Int64Builder ids;
  arrow::DoubleBuilder a, b, c;
  OrDie(ids.Reserve(rows));
  for (auto* builder : {&a, &b, &c}) OrDie(builder->Reserve(rows));
  std::uniform_real_distribution<double> value(0, 1);
  for (int64_t i = 0; i < rows; ++i) {
    ids.UnsafeAppend(first_id + i);
    a.UnsafeAppend(value(random));
    b.UnsafeAppend(value(random));
    c.UnsafeAppend(value(random));
  }
  return arrow::Table::Make(Readings().ToArrow(), {OrDie(ids.Finish()), OrDie(a.Finish()),
                                                   OrDie(b.Finish()), OrDie(c.Finish())});
}

/// state.range(0): the model's size in MB, built from 64 MB files before timing.
void BM_PublishAppendVersusCopy(benchmark::State& state) {
  constexpr int64_t kRowsPerFile = 2'000'000;  // About 64 MB of Parquet.
  const TableSchema table = Readings();
  auto dir = OrDie(TempDir::Make("teatree-bench-manifest-"));
  auto store = OrDie(ManifestStore::Open(dir->path() / "model"));
  std::mt19937_64 random(7);
  Manifest manifest{.version = 0};
  manifest.tables["readings"] = TableManifest{.schema = table};
  int64_t next_id = 0;
  int64_t bytes = 0;
  while (bytes < state.range(0) << 20) {
    auto file = OrDie(store->WriteDataFile(table, *MakeRows(next_id, kRowsPerFile, random)));
    next_id += kRowsPerFile;
    bytes += file.bytes;
    manifest.tables["readings"].files.push_back(std::move(file));
  }
  ++manifest.version;
  OrDie(store->Publish(manifest));

  Stopwatch publish, copy;
  for (auto _ : state) {
    auto rows = MakeRows(next_id, 1000, random);
    next_id += 1000;
    publish.Time([&] {
      auto file = OrDie(store->WriteDataFile(table, *rows));
      manifest.tables["readings"].files.push_back(std::move(file));
      ++manifest.version;
      OrDie(store->Publish(manifest));
    });
    const fs::path copies = dir->path() / "copy";
    fs::create_directories(copies);
    copy.Time([&] {
      for (const auto& file : manifest.tables["readings"].files) {
        const fs::path target = copies / fs::path(file.path).filename();
        OrDie(CopyFileFast(dir->path() / "model" / file.path, target).status());
        OrDie(SyncFile(target));
      }
    });
    fs::remove_all(copies);
  }
  Stopwatch link_file, export_file;
  link_file.Time(
      [&] { OrDie(LinkVersionFile(store->model_dir(), manifest, dir->path() / "linked.duckdb")); });
  state.counters["link_version_file_ms"] = link_file.seconds() * 1000;
  export_file.Time([&] {
    OrDie(ExportVersionFile(store->model_dir(), manifest, dir->path() / "version.duckdb"));
  });
  state.counters["export_duckdb_file_ms"] = export_file.seconds() * 1000;
  const double iterations = static_cast<double>(state.iterations());
  state.counters["model_MB"] = static_cast<double>(bytes) / (1 << 20);
  state.counters["publish_ms"] = publish.seconds() * 1000 / iterations;
  state.counters["copy_ms"] = copy.seconds() * 1000 / iterations;
  state.counters["ratio"] = copy.seconds() / publish.seconds();
}
BENCHMARK(BM_PublishAppendVersusCopy)
    ->ArgName("MB")
    ->Arg(100)
    ->Arg(1000)
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace teatree::bench
