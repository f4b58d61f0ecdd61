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

int64_t VersionOf(const arrow::Schema& schema) {
  if (!schema.metadata()) return 0;
  auto version = schema.metadata()->Get(kVersionMetadataKey);
  return version.ok() ? std::stoll(*version) : 0;
}

}  // namespace teatree
