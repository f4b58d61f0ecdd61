// Doctor checks for Arrow C++: compute, Acero, Parquet, IPC, the S3 filesystem and Flight.
#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/filesystem/s3fs.h>
#include <arrow/flight/client.h>
#include <arrow/flight/server.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>

#include "teatree/archive/s3_runtime.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/temp_dir.h"
#include "teatree/doctor/checks_internal.h"

namespace teatree {
namespace {

Result<std::shared_ptr<arrow::Table>> SampleTable() {
  arrow::StringBuilder regions;
  arrow::DoubleBuilder amounts;
  const char* names[] = {"eu", "us", "apac"};
  for (int i = 0; i < 300; ++i) {
    ARROW_RETURN_NOT_OK(regions.Append(names[i % 3]));
    ARROW_RETURN_NOT_OK(amounts.Append(i));
  }
  ARROW_ASSIGN_OR_RAISE(auto region_array, regions.Finish());
  ARROW_ASSIGN_OR_RAISE(auto amount_array, amounts.Finish());
  auto schema = arrow::schema(
      {arrow::field("region", arrow::utf8()), arrow::field("amount", arrow::float64())});
  return arrow::Table::Make(schema, {region_array, amount_array});
}

Status CheckAceroGroupBy(const std::shared_ptr<arrow::Table>& table) {
  namespace ac = arrow::acero;
  ac::Declaration plan = ac::Declaration::Sequence({
      {"table_source", ac::TableSourceNodeOptions(table)},
      {"aggregate",
       ac::AggregateNodeOptions({{"hash_sum", nullptr, "amount", "total"}}, {"region"})},
  });
  ARROW_ASSIGN_OR_RAISE(auto result, ac::DeclarationToTable(std::move(plan)));
  if (result->num_rows() != 3) {
    return Status::Invalid("Acero group-by returned ", result->num_rows(), " groups, expected 3");
  }
  return Status::OK();
}

Status CheckParquetRoundTrip(const std::shared_ptr<arrow::Table>& table, const std::string& path) {
  {
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path));
    ARROW_RETURN_NOT_OK(
        parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 1024));
    ARROW_RETURN_NOT_OK(out->Close());
  }
  ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(in, arrow::default_memory_pool()));
  ARROW_ASSIGN_OR_RAISE(auto back, reader->ReadTable());
  if (!back->Equals(*table)) return Status::Invalid("Parquet round trip changed the table");
  return Status::OK();
}

Status CheckIpcRoundTrip(const std::shared_ptr<arrow::Table>& table, const std::string& path) {
  {
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path));
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(out, table->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteTable(*table));
    ARROW_RETURN_NOT_OK(writer->Close());
  }
  ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(in));
  ARROW_ASSIGN_OR_RAISE(auto back, reader->ToTable());
  if (!back->Equals(*table)) return Status::Invalid("Arrow IPC round trip changed the table");
  return Status::OK();
}

Status CheckS3FromUri() {
  ARROW_RETURN_NOT_OK(EnsureS3Runtime());
  // An explicit region and endpoint: constructing the filesystem touches no network.
  ARROW_ASSIGN_OR_RAISE(auto options,
                        arrow::fs::S3Options::FromUri("s3://teatree-doctor/prefix?region=us-east-1&"
                                                      "endpoint_override=127.0.0.1:9&scheme=http"));
  ARROW_ASSIGN_OR_RAISE(auto fs, arrow::fs::S3FileSystem::Make(options));
  if (fs->type_name() != "s3") return Status::Invalid("S3 filesystem reports ", fs->type_name());
  return Status::OK();
}

/// Answers ListFlights with nothing: enough to prove the server and client talk.
class EmptyFlightServer final : public arrow::flight::FlightServerBase {
  Status ListFlights(const arrow::flight::ServerCallContext&, const arrow::flight::Criteria*,
                     std::unique_ptr<arrow::flight::FlightListing>* listings) override {
    *listings = std::make_unique<arrow::flight::SimpleFlightListing>(
        std::vector<arrow::flight::FlightInfo>{});
    return Status::OK();
  }
};

}  // namespace

Result<CheckOutcome> CheckArrow(const DoctorOptions&) {
  ARROW_RETURN_NOT_OK(InitializeArrow());
  ARROW_ASSIGN_OR_RAISE(auto dir, TempDir::Make("teatree-doctor-"));
  ARROW_ASSIGN_OR_RAISE(auto table, SampleTable());
  ARROW_RETURN_NOT_OK(CheckAceroGroupBy(table));
  ARROW_RETURN_NOT_OK(CheckParquetRoundTrip(table, (dir->path() / "t.parquet").string()));
  ARROW_RETURN_NOT_OK(CheckIpcRoundTrip(table, (dir->path() / "t.arrow").string()));
  ARROW_RETURN_NOT_OK(CheckS3FromUri());
  return CheckOutcome{arrow::GetBuildInfo().version_string,
                      "Acero group-by; Parquet and IPC round trips; S3 filesystem from a URI"};
}

Result<CheckOutcome> CheckFlight(const DoctorOptions&) {
  namespace fl = arrow::flight;
  ARROW_ASSIGN_OR_RAISE(auto location, fl::Location::ForGrpcTcp("127.0.0.1", 0));
  EmptyFlightServer server;
  ARROW_RETURN_NOT_OK(server.Init(fl::FlightServerOptions(location)));
  ARROW_ASSIGN_OR_RAISE(auto bound, fl::Location::ForGrpcTcp("127.0.0.1", server.port()));
  ARROW_ASSIGN_OR_RAISE(auto client, fl::FlightClient::Connect(bound));
  ARROW_ASSIGN_OR_RAISE(auto listing, client->ListFlights());
  ARROW_ASSIGN_OR_RAISE(auto first, listing->Next());
  if (first != nullptr) return Status::Invalid("empty Flight server listed a flight");
  ARROW_RETURN_NOT_OK(client->Close());
  ARROW_RETURN_NOT_OK(server.Shutdown());
  ARROW_RETURN_NOT_OK(server.Wait());
  return CheckOutcome{
      arrow::GetBuildInfo().version_string,
      "Flight server started on " + bound.ToString() + ", ListFlights answered, stopped"};
}

}  // namespace teatree
