// Archive throughput: the same tables written as Parquet by Archive::WriteTable to an
// S3-protocol server on loopback (moto, a separate process) versus to a local directory,
// the baseline. MB are the Parquet files' sizes.
#include <arrow/api.h>

#include <string>

#include "bench/bench_util.h"
#include "teatree/archive/archive.h"
#include "teatree/archive/s3_test_server.h"
#include "teatree/common/temp_dir.h"

namespace teatree::bench {
namespace {

/// `rows` rows of an orders-like table: ids, amounts, a low-cardinality region, a text note.
std::shared_ptr<arrow::Table> Orders(int64_t rows) {
  arrow::Int64Builder ids;
  arrow::DoubleBuilder amounts;
  arrow::StringBuilder regions, notes;
  static const char* const kRegions[] = {"eu", "us", "apac", "latam"};
  for (int64_t i = 0; i < rows; ++i) {
    OrDie(ids.Append(i));
    OrDie(amounts.Append(static_cast<double>(i % 10'007) * 0.37));
    OrDie(regions.Append(kRegions[i % 4]));
    OrDie(notes.Append("order " + std::to_string(i * 7919 % 1'000'003)));
  }
  return arrow::Table::Make(
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::utf8()), arrow::field("note", arrow::utf8())}),
      {OrDie(ids.Finish()), OrDie(amounts.Finish()), OrDie(regions.Finish()),
       OrDie(notes.Finish())});
}

/// state.range(0) rows per table, 4 versions per iteration, to S3 and to a local directory.
void BM_ArchiveToS3VersusLocal(benchmark::State& state) {
  auto dir = OrDie(TempDir::Make("teatree-bench-archive-"));
  auto s3 = OrDie(S3TestServer::Start(TEATREE_PYTHON, dir->path() / "s3.log"));
  OrDie(s3->CreateBucket("bench"));
  auto remote = OrDie(Archive::Open(s3->ArchiveUrl("bench", "archive")));
  auto local = OrDie(Archive::Open((dir->path() / "archive").string()));
  const auto table = Orders(state.range(0));
  Stopwatch to_s3, to_local;
  double megabytes = 0;
  int64_t version = 0;
  // Writes the table as the next version to `archive`, timed by `watch`.
  auto write = [&](Archive& archive, Stopwatch& watch) {
    Result<ArchivedFile> file;
    watch.Time([&] {
      arrow::TableBatchReader rows(*table);
      file = archive.WriteTable("m", version, "orders", rows);
    });
    return file;
  };
  for (auto _ : state) {
    for (int i = 0; i < 4; ++i) {
      ++version;
      auto remote_file = write(*remote, to_s3);
      auto local_file = remote_file.ok() ? write(*local, to_local) : remote_file;
      if (!local_file.ok()) {
        state.SkipWithError(local_file.status().ToString().c_str());
        return;
      }
      megabytes += static_cast<double>(remote_file->bytes) / 1e6;
    }
  }
  ReportAgainstBaseline(state, "MB", megabytes, to_s3, to_local);
  state.counters["file_MB"] = megabytes / static_cast<double>(version);
}
BENCHMARK(BM_ArchiveToS3VersusLocal)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace teatree::bench
