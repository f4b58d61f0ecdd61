#include "teatree/common/failure.h"

#include <memory>
#include <string>

namespace teatree {
namespace {

constexpr const char* kTypeId = "teatree::FailureDetail";

class FailureDetail final : public arrow::StatusDetail {
 public:
  explicit FailureDetail(FailureKind kind) : kind_(kind) {}
  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override {
    return kind_ == FailureKind::kUsage ? "usage" : "unavailable";
  }
  FailureKind kind() const { return kind_; }

 private:
  FailureKind kind_;
};

}  // namespace

Status MarkFailure(Status status, FailureKind kind) {
  if (status.ok()) return status;
  return status.WithDetail(std::make_shared<FailureDetail>(kind));
}

std::optional<FailureKind> FailureKindOf(const Status& status) {
  const auto& detail = status.detail();
  if (!detail || std::string(detail->type_id()) != kTypeId) return std::nullopt;
  return static_cast<const FailureDetail&>(*detail).kind();
}

}  // namespace teatree
