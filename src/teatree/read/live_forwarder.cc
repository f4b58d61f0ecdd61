#include "teatree/read/live_forwarder.h"

#include <arrow/api.h>
#include <arrow/flight/api.h>

#include "teatree/common/failure.h"
#include "teatree/read/flight_client_internal.h"
#include "teatree/read/model_directory.h"

namespace teatree {
namespace flight = arrow::flight;
namespace {

/// A manager that is gone (or not there yet) shows as unavailable: read locally then. A
/// manager that answered TimedOut waited for a min_version in vain: its answer stands (the
/// local copy, older still, would only wait again).
bool Unreachable(const Status& status) {
  auto detail = flight::FlightStatusDetail::UnwrapStatus(status);
  if (detail && detail->code() == flight::FlightStatusCode::TimedOut) return false;
  return status.IsIOError() || (detail && detail->code() == flight::FlightStatusCode::Unavailable);
}

/// An error the manager answered, as this server passes it on: the manager's message, and a
/// wait for a min_version that ran out marked as such (HTTP says 503, Flight TimedOut).
Status FromManager(const Status& status) {
  auto detail = flight::FlightStatusDetail::UnwrapStatus(status);
  Status clean = WithoutTransportNoise(status);
  if (detail && detail->code() == flight::FlightStatusCode::TimedOut) {
    return MarkFailure(Status::IOError(clean.message()), FailureKind::kUnavailable);
  }
  return clean;
}

flight::FlightCallOptions CallWith(const std::string& authorization) {
  flight::FlightCallOptions call;
  if (!authorization.empty()) call.headers.emplace_back("authorization", authorization);
  return call;
}

}  // namespace

LiveForwarder::LiveForwarder(ModelDirectory& models, std::filesystem::path tls_root)
    : models_(models), tls_root_(std::move(tls_root)) {}

LiveForwarder::~LiveForwarder() = default;

std::string LiveForwarder::EndpointFor(const ReadTicket& ticket) {
  return ticket.at_version ? "" : models_.LiveEndpoint(ticket.model);
}

Result<flight::FlightClient*> LiveForwarder::ClientFor(const std::string& url) {
  std::lock_guard lock(mutex_);
  auto& client = clients_[url];
  if (!client) {
    auto connected = ConnectFlight(url, tls_root_);
    if (!connected.ok()) {
      clients_.erase(url);
      return connected.status();
    }
    client = std::move(connected).ValueUnsafe();
  }
  return client.get();
}

Result<std::optional<ReadStream>> LiveForwarder::Read(const ReadTicket& ticket,
                                                      const std::string& authorization) {
  const std::string url = EndpointFor(ticket);
  if (url.empty()) return std::nullopt;
  auto client = ClientFor(url);
  if (!client.ok()) return std::nullopt;
  auto stream = (*client)->DoGet(CallWith(authorization), flight::Ticket{ticket.ToJson()});
  if (!stream.ok()) {
    if (Unreachable(stream.status())) return std::nullopt;
    return FromManager(stream.status());
  }
  // The manager's first answer comes with the schema: its refusal shows here.
  auto schema = (*stream)->GetSchema();
  if (!schema.ok()) return FromManager(schema.status());
  ReadStream forwarded{.version = VersionOf(**schema)};
  ARROW_ASSIGN_OR_RAISE(auto reader, flight::MakeRecordBatchReader(std::move(*stream)));
  // The reader shares the stream; a unique_ptr is what ReadStream carries.
  struct Owned final : arrow::RecordBatchReader {
    std::shared_ptr<arrow::RecordBatchReader> inner;
    std::shared_ptr<arrow::Schema> schema() const override { return inner->schema(); }
    Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
      return inner->ReadNext(out);
    }
  };
  auto owned = std::make_unique<Owned>();
  owned->inner = std::move(reader);
  forwarded.reader = std::move(owned);
  return forwarded;
}

Result<std::shared_ptr<arrow::Schema>> LiveForwarder::Describe(const ReadTicket& ticket,
                                                               const std::string& authorization) {
  const std::string url = EndpointFor(ticket);
  if (url.empty()) return nullptr;
  auto client = ClientFor(url);
  if (!client.ok()) return nullptr;
  auto result = (*client)->GetSchema(CallWith(authorization),
                                     flight::FlightDescriptor::Command(ticket.ToJson()));
  if (!result.ok()) {
    if (Unreachable(result.status())) return nullptr;
    return FromManager(result.status());
  }
  arrow::ipc::DictionaryMemo memo;
  return (*result)->GetSchema(&memo);
}

}  // namespace teatree
