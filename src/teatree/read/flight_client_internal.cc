#include "teatree/read/flight_client_internal.h"

#include <arrow/util/key_value_metadata.h>

#include "teatree/common/file_util.h"
#include "teatree/read/flight_read_server.h"

namespace teatree {

Result<std::unique_ptr<arrow::flight::FlightClient>> ConnectFlight(
    const std::string& url, const std::filesystem::path& tls_root) {
  ARROW_ASSIGN_OR_RAISE(auto location, arrow::flight::Location::Parse(url));
  auto options = arrow::flight::FlightClientOptions::Defaults();
  if (!tls_root.empty()) {
    ARROW_ASSIGN_OR_RAISE(options.tls_root_certs, ReadFileToString(tls_root));
  }
  return arrow::flight::FlightClient::Connect(location, options);
}

Status WithoutTransportNoise(const Status& status) {
  if (status.ok()) return status;
  std::string message = status.message();
  if (const size_t debug = message.find(". gRPC client debug context:");
      debug != std::string::npos) {
    message.erase(debug);
  }
  for (;;) {
    const size_t at = message.rfind(". Detail: ");
    if (at == std::string::npos) break;
    const std::string_view word = std::string_view(message).substr(at + 10);
    if (word.empty() ||
        word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") !=
            std::string_view::npos) {
      break;
    }
    message.erase(at);
  }
  return message == status.message() ? status : status.WithMessage(message);
}

int64_t VersionOf(const arrow::Schema& schema) {
  if (!schema.metadata()) return 0;
  auto version = schema.metadata()->Get(kVersionMetadataKey);
  return version.ok() ? std::stoll(*version) : 0;
}

}  // namespace teatree
