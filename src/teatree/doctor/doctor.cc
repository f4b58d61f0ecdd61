#include "teatree/doctor/doctor.h"

#include <iomanip>

#include "teatree/doctor/checks_internal.h"

namespace teatree {

const std::vector<DoctorCheck>& DoctorChecks() {
  static const std::vector<DoctorCheck> checks = {
      {"duckdb", CheckDuckDB},       {"arrow", CheckArrow},
      {"arrow-flight", CheckFlight}, {"duckdb+arrow", CheckDuckDBArrow},
      {"nats", CheckNats},           {"sqlite", CheckSqlite},
      {"postgresql", CheckPostgres},
  };
  return checks;
}

Status RunDoctor(const DoctorOptions& options, std::ostream& out) {
  std::string failed;
  for (const auto& check : DoctorChecks()) {
    Result<CheckOutcome> outcome = check.run(options);
    out << std::left << std::setw(14) << check.part;
    if (outcome.ok()) {
      out << std::setw(34) << outcome->version << "ok    " << outcome->detail << "\n";
    } else {
      out << std::setw(34) << "-"
          << "FAIL  " << outcome.status().message() << "\n";
      failed += (failed.empty() ? "" : ", ") + check.part;
    }
    out.flush();
  }
  if (!failed.empty()) return Status::Invalid("doctor: these parts failed: ", failed);
  return Status::OK();
}

}  // namespace teatree
