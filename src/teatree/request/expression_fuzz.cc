// libFuzzer target: the expression parser, the type checker and the Arrow translation. The
// input is the JSON form of an expression; the table has one column of each kind of type.
// Properties: parsing round-trips through ToJson(); what CheckExpression() accepts,
// InferExpressionType() gives the same type for, and ToArrowExpression() translates into an
// Arrow expression that binds to the table's Arrow schema (the Arrow engine runs exactly
// that, so a checked expression Arrow refuses is a failed update at run time).

#include <arrow/compute/expression.h>
#include <arrow/type.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "teatree/common/arrow_runtime.h"
#include "teatree/request/arrow_expression.h"
#include "teatree/request/expression.h"
#include "teatree/request/table_schema.h"

namespace {

const teatree::TableSchema& Table() {
  static const teatree::TableSchema table = [] {
    auto columns = nlohmann::json::parse(R"j([
        {"name":"id","type":"BIGINT"},{"name":"qty","type":"INTEGER"},
        {"name":"amount","type":"DOUBLE"},{"name":"price","type":"DECIMAL(10,2)"},
        {"name":"big","type":"DECIMAL(38,20)"},{"name":"region","type":"VARCHAR"},
        {"name":"paid","type":"BOOLEAN"},{"name":"day","type":"DATE"},
        {"name":"at","type":"TIMESTAMP"},{"name":"at_tz","type":"TIMESTAMPTZ"},
        {"name":"tags","type":"VARCHAR[]"},{"name":"raw","type":"BLOB"}])j");
    return teatree::TableSchema::FromJson("orders", columns, nlohmann::json::array({"id"}))
        .ValueOrDie();
  }();
  return table;
}

[[noreturn]] void Fail(const char* what, const teatree::Expression& expression,
                       const std::string& detail) {
  std::fprintf(
      stderr, "expression_fuzz: %s\nexpression: %s\ndetail: %s\n", what,
      expression.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(),
      detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (auto status = teatree::InitializeArrow(); !status.ok()) status.Abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto json = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  auto expression = teatree::ParseExpression(json);
  if (!expression.ok()) return 0;
  auto reparsed = teatree::ParseExpression(expression->ToJson());
  if (!reparsed.ok() || *reparsed != *expression) {
    Fail("ToJson() does not parse back to the same expression", *expression,
         reparsed.status().ToString());
  }
  (void)expression->ToString();
  const auto& table = Table();
  (void)teatree::CheckPredicate(*expression, table);
  auto type = teatree::CheckExpression(*expression, table);
  if (!type.ok()) return 0;
  auto inferred = teatree::InferExpressionType(*expression, table);
  if (!inferred.ok() || !inferred->has_value() || !(**inferred == *type)) {
    Fail("InferExpressionType() disagrees with CheckExpression()", *expression, type->ToString());
  }
  auto arrow_expression = teatree::ToArrowExpression(*expression, table);
  if (!arrow_expression.ok()) {
    Fail("a checked expression has no Arrow form", *expression,
         arrow_expression.status().ToString());
  }
  auto bound = arrow_expression->Bind(*table.ToArrow());
  if (!bound.ok()) {
    Fail("the Arrow form of a checked expression does not bind", *expression,
         arrow_expression->ToString() + ": " + bound.status().ToString());
  }
  return 0;
}
