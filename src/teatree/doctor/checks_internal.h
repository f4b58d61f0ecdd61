#pragma once

#include "teatree/doctor/doctor.h"

namespace teatree {

// One function per dependency; DoctorChecks() lists them. Exposed for the tests.
Result<CheckOutcome> CheckDuckDB(const DoctorOptions& options);
Result<CheckOutcome> CheckArrow(const DoctorOptions& options);
Result<CheckOutcome> CheckFlight(const DoctorOptions& options);
Result<CheckOutcome> CheckDuckDBArrow(const DoctorOptions& options);
Result<CheckOutcome> CheckNats(const DoctorOptions& options);
Result<CheckOutcome> CheckSqlite(const DoctorOptions& options);
Result<CheckOutcome> CheckPostgres(const DoctorOptions& options);

}  // namespace teatree
