// libFuzzer target: the read path's statement check on arbitrary SQL text. It must answer OK
// or a Status, never crash; and what it accepts must really be one read. The oracle is DuckDB
// itself, on a database opened with external access disabled: a statement the check accepts
// must bind there as exactly one SELECT statement, and binding must not need file, URL or
// other-database access (a Permission Error). Statements are bound, never run, so a costly
// query cannot stall the fuzzer.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/model_sql.h"
#include "teatree/engine/duckdb/read_only_sql.h"

namespace {

struct Fixture {
  std::shared_ptr<teatree::DuckDatabase> db;
  std::unique_ptr<teatree::DuckConnection> checked;  // Runs the check.
  std::unique_ptr<teatree::DuckConnection> oracle;   // Binds what the check accepts.
  std::unique_ptr<teatree::ReadOnlyCheck> check;
};

Fixture& Get() {
  static Fixture* fixture = [] {
    auto made = new Fixture();
    made->db = teatree::DuckDatabase::Open(
                   {.settings = {{"enable_external_access", "false"}, {"threads", "1"}}})
                   .ValueOrDie();
    made->checked = made->db->Connect().ValueOrDie();
    made->oracle = made->db->Connect().ValueOrDie();
    auto created = made->checked->Execute(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DECIMAL(12,2), region VARCHAR, "
        "\"at\" TIMESTAMPTZ, tags VARCHAR[]); "
        "INSERT INTO orders VALUES (1, 12.50, 'emea', '2026-01-02 03:04:05+02', ['a','b']), "
        "(2, NULL, NULL, NULL, NULL)");
    if (!created.ok()) created.Abort();
    // The check reads the model's tables from Teatree's bookkeeping, as on a model file.
    auto registered =
        made->checked->Execute(std::string(teatree::kBookkeepingSql) +
                               "; INSERT INTO _teatree_tables VALUES ('orders', '{}')");
    if (!registered.ok()) registered.Abort();
    made->check = teatree::ReadOnlyCheck::Make(*made->checked).ValueOrDie();
    return made;
  }();
  return *fixture;
}

[[noreturn]] void Fail(const char* what, const std::string& sql, const std::string& detail) {
  std::fprintf(stderr, "read_only_sql_fuzz: %s\nsql: %s\ndetail: %s\n", what, sql.c_str(),
               detail.c_str());
  std::abort();
}

}  // namespace

// DuckDB keeps pointers to some of its heap objects inside memory it maps itself, which
// LeakSanitizer does not scan, so those objects look leaked after each query. Leaks whose
// allocation passed through libduckdb are not reported; Teatree's own are.
extern "C" const char* __lsan_default_suppressions() { return "leak:libduckdb.so\n"; }
extern "C" const char* __lsan_default_options() { return "print_suppressions=0"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The check takes a C string's worth of SQL (DuckDB's C API stops at a NUL).
  std::string sql(reinterpret_cast<const char*>(data), size);
  sql = sql.substr(0, sql.find('\0'));
  Fixture& fixture = Get();
  if (!fixture.check->Check(sql).ok()) return 0;
  auto select = fixture.oracle->IsSingleSelect(sql);
  if (select.ok() && !*select) Fail("accepted what is not exactly one SELECT", sql, "");
  if (!select.ok() && select.status().message().find("Permission Error") != std::string::npos) {
    Fail("accepted a statement that reaches outside the database", sql, select.status().ToString());
  }
  return 0;
}
