#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

struct DoctorOptions {
  /// nats-server binary to try; empty means the default (see NatsServerOptions::binary).
  std::string nats_server;
  /// A PostgreSQL URI to connect to; empty checks only that the client libraries load and
  /// that an unreachable server is reported as a clear error.
  std::string postgres_url;
};

/// What a successful check found: the versions in use and what was exercised.
struct CheckOutcome {
  std::string version;
  std::string detail;
};

/// A self-check that proves one dependency works by using it.
struct DoctorCheck {
  std::string part;
  std::function<Result<CheckOutcome>(const DoctorOptions&)> run;
};

/// Every check, in the order `teatree doctor` runs them.
const std::vector<DoctorCheck>& DoctorChecks();

/// Runs every check and prints one line per part: its version and "ok", or the error and
/// how to fix it. Returns an error naming the failed parts when any failed.
Status RunDoctor(const DoctorOptions& options, std::ostream& out);

/// The foundation's end-to-end example: DuckDB writes a table, Arrow (Acero) computes on
/// it through the C data interface, and the result is printed.
Status RunQuickDemo(std::ostream& out);

}  // namespace teatree
