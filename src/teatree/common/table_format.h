#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace arrow {
class RecordBatch;
class Schema;
class Table;
}  // namespace arrow

namespace teatree {

/// Renders a table as aligned text for a terminal: a header row, a rule, one line per row;
/// numbers right-aligned, NULL shown as "NULL". Rows past `max_rows` are summarized.
Result<std::string> FormatTable(const arrow::Table& table, int64_t max_rows = 100);

/// The ways `teatree query` and the HTTP query endpoint write results.
enum class ResultFormat {
  kTable,  // FormatTable's aligned text
  kCsv,    // RFC 4180 CSV with a header row
  kJson,   // a JSON array of row objects; lists as arrays, decimals and times as strings
  kArrow,  // an Arrow IPC stream
};

/// "table", "csv", "json" or "arrow"; anything else is refused naming those.
Result<ResultFormat> ParseResultFormat(std::string_view name);

/// Writes a result in a ResultFormat batch by batch, so that it can be sent as it is read:
/// Write() returns the text or bytes for each batch, Finish() the end (kTable holds every
/// row until Finish(), since aligning columns needs them all). One thread at a time.
class ResultWriter {
 public:
  static Result<std::unique_ptr<ResultWriter>> Make(ResultFormat format,
                                                    const std::shared_ptr<arrow::Schema>& schema);
  ~ResultWriter();
  Result<std::string> Write(const std::shared_ptr<arrow::RecordBatch>& rows);
  Result<std::string> Finish();

 private:
  struct State;
  explicit ResultWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/// `table` written in `format` (every row, also for kTable).
Result<std::string> WriteResult(const arrow::Table& table, ResultFormat format);

}  // namespace teatree
