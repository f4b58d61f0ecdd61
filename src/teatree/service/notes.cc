#include "teatree/service/notes.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/base64.h>

#include <algorithm>

#include "teatree/common/json_text.h"
#include "teatree/request/request.h"

namespace teatree {

std::string OutcomeNote(const std::string& model, const RequestOutcome& outcome, int64_t pages) {
  nlohmann::json note = outcome.ToJson();
  note["type"] = "outcome";
  note["model"] = model;
  if (outcome.duplicate) note["duplicate"] = true;
  if (pages > 0) note["pages"] = pages;
  return DumpJson(note);
}

std::string RejectedNote(const std::string& model, const std::string& request_id,
                         const std::string& op, const std::string& error) {
  return DumpJson(nlohmann::json{{"type", "outcome"},
                                 {"model", model},
                                 {"request_id", request_id},
                                 {"op", op},
                                 {"status", "rejected"},
                                 {"version", nullptr},
                                 {"rows", 0},
                                 {"duration_ms", 0},
                                 {"error", error}});
}

std::string VersionNote(const std::string& model, int64_t version) {
  return DumpJson(
      nlohmann::json{{"type", "version_published"}, {"model", model}, {"version", version}});
}

Result<std::vector<std::string>> ResultPages(const std::string& model,
                                             const std::string& request_id,
                                             const arrow::Table& result, int64_t page_rows) {
  page_rows = page_rows > 0 ? page_rows : kDefaultPageRows;
  ARROW_ASSIGN_OR_RAISE(auto combined, result.CombineChunksToBatch());
  const int64_t total = combined->num_rows();
  const int64_t count = std::max<int64_t>(1, (total + page_rows - 1) / page_rows);
  std::vector<std::string> pages;
  for (int64_t page = 0; page < count; ++page) {
    auto slice = combined->Slice(page * page_rows, page_rows);
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeStreamWriter(sink, slice->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*slice));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
    pages.push_back(
        DumpJson(nlohmann::json{{"type", "page"},
                                {"model", model},
                                {"request_id", request_id},
                                {"page", page + 1},
                                {"rows", slice->num_rows()},
                                {"final", page + 1 == count},
                                {"format", "arrow_ipc_base64"},
                                {"data", arrow::util::base64_encode(buffer->ToString())}}));
  }
  return pages;
}

Result<std::shared_ptr<arrow::Table>> AssemblePages(const std::vector<nlohmann::json>& pages) {
  if (pages.empty()) return Status::Invalid("no result pages to assemble");
  std::vector<const nlohmann::json*> ordered;
  ordered.reserve(pages.size());
  for (const auto& page : pages) ordered.push_back(&page);
  std::sort(ordered.begin(), ordered.end(),
            [](const auto* a, const auto* b) { return a->value("page", 0) < b->value("page", 0); });
  for (size_t i = 0; i < ordered.size(); ++i) {
    if (ordered[i]->value("page", 0) != static_cast<int64_t>(i + 1)) {
      return Status::Invalid("result page ", i + 1, " is missing");
    }
  }
  if (!ordered.back()->value("final", false)) {
    return Status::Invalid("the final result page has not arrived");
  }
  arrow::RecordBatchVector batches;
  std::shared_ptr<arrow::Schema> schema;
  for (const auto* page : ordered) {
    ARROW_ASSIGN_OR_RAISE(std::string bytes, arrow::util::base64_decode(page->value("data", "")));
    auto input = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(bytes));
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input));
    schema = reader->schema();
    ARROW_ASSIGN_OR_RAISE(auto page_batches, reader->ToRecordBatches());
    for (auto& batch : page_batches) {
      ARROW_RETURN_NOT_OK(batch->ValidateFull());
      batches.push_back(std::move(batch));
    }
  }
  return arrow::Table::FromRecordBatches(schema, batches);
}

}  // namespace teatree
