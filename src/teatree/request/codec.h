#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "teatree/common/status.h"
#include "teatree/request/request.h"

namespace teatree {

/// The largest page of a query result, in rows.
inline constexpr int64_t kMaxPageRows = 1000000;
/// How deeply a request's JSON may nest arrays and objects.
inline constexpr int kMaxRequestJsonDepth = 256;
/// The longest request text the codec reads (the queue's message limit is usually lower).
inline constexpr size_t kMaxRequestBytes = size_t{64} << 20;

/// Reads and validates one request from its JSON text: the one request codec every entry
/// point uses. Checks everything that needs no model state: JSON syntax, the envelope
/// (request_id, model, op), that each field is known and allowed for the op, required fields,
/// names (table, columns, function, attachment), the shape of rows, base64 of rows_ipc,
/// source format, page_rows, and the structure of expressions. Column types of rows and
/// expressions are checked later against the table (RowsToRecordBatch, CheckExpression).
/// A top-level field whose value is null counts as absent. Sets payload_hash. Thread-safe.
Result<Request> DecodeRequest(std::string_view json_text);

/// The canonical JSON text of `request`: compact, keys sorted, defaults written out
/// (engine, primary_key, args, page_rows), rows_ipc in base64. DecodeRequest() of it gives
/// back an equal request; equal requests encode to the same bytes. Never fails: text that is
/// not valid UTF-8 is replaced with U+FFFD. Thread-safe.
std::string EncodeRequest(const Request& request);

/// SHA-256 (lowercase hex) of EncodeRequest() without request_id: equal for two requests
/// that ask for the same thing, whatever their ids and field order.
std::string PayloadHash(const Request& request);

}  // namespace teatree
