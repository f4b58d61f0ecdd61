#include "teatree/request/request.h"

#include "teatree/request/message_internal.h"

namespace teatree {
namespace {

constexpr std::pair<Op, std::string_view> kOps[] = {
    {Op::kCreateTable, "create_table"},
    {Op::kAppend, "append"},
    {Op::kUpsert, "upsert"},
    {Op::kUpdate, "update"},
    {Op::kDelete, "delete"},
    {Op::kInvoke, "invoke"},
    {Op::kQuery, "query"},
    {Op::kSnapshot, "snapshot"},
    {Op::kAttach, "attach"},
    {Op::kDropTable, "drop_table"},
    {Op::kAlterTable, "alter_table"},
};

}  // namespace

std::string_view OpName(Op op) {
  for (const auto& [candidate, name] : kOps) {
    if (candidate == op) return name;
  }
  return "unknown";
}

Result<Op> ParseOp(std::string_view name) {
  std::vector<std::string> names;
  for (const auto& [op, op_name] : kOps) {
    if (op_name == name) return op;
    names.emplace_back(op_name);
  }
  return Status::Invalid("unknown op ", request_internal::Quoted(name), ": use one of ",
                         request_internal::Join(names));
}

}  // namespace teatree
