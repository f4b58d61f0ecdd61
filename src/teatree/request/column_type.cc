#include "teatree/request/column_type.h"

#include <arrow/api.h>

#include <algorithm>
#include <cctype>

#include "teatree/request/message_internal.h"

namespace teatree {
namespace {

using Kind = ColumnType::Kind;

constexpr int kMaxDecimalPrecision = 38;
constexpr int kMaxListDepth = 8;

struct Keyword {
  std::string_view name;
  Kind kind;
};

constexpr Keyword kKeywords[] = {
    {"BOOLEAN", Kind::kBoolean},
    {"INTEGER", Kind::kInteger},
    {"BIGINT", Kind::kBigint},
    {"DOUBLE", Kind::kDouble},
    {"VARCHAR", Kind::kVarchar},
    {"BLOB", Kind::kBlob},
    {"DATE", Kind::kDate},
    {"TIMESTAMP", Kind::kTimestamp},
    {"TIMESTAMPTZ", Kind::kTimestampTz},
};

constexpr std::string_view kValidTypes =
    "use BOOLEAN, INTEGER, BIGINT, DOUBLE, DECIMAL(p,s), VARCHAR, BLOB, DATE, TIMESTAMP, "
    "TIMESTAMPTZ, or a list of one of these written LIST(T) or T[]";

// Recursive-descent parser over the upper-cased text of a type.
class TypeParser {
 public:
  TypeParser(std::string_view original, std::string upper)
      : original_(original), text_(std::move(upper)) {}

  Result<ColumnType> Parse() {
    ARROW_ASSIGN_OR_RAISE(ColumnType type, ParseType(0));
    SkipSpace();
    if (pos_ != text_.size()) return Unknown();
    return type;
  }

 private:
  Result<ColumnType> ParseType(int depth) {
    if (depth > kMaxListDepth) return TooDeep();
    SkipSpace();
    std::string_view word = Word();
    ColumnType type;
    if (word == "LIST") {
      if (!Consume('(')) return Unknown();
      ARROW_ASSIGN_OR_RAISE(ColumnType element, ParseType(depth + 1));
      if (!Consume(')')) return Unknown();
      type = ColumnType::List(std::move(element));
      ++depth;
    } else if (word == "DECIMAL") {
      ARROW_ASSIGN_OR_RAISE(type, ParseDecimalArguments());
    } else {
      const Keyword* keyword = nullptr;
      for (const auto& candidate : kKeywords) {
        if (candidate.name == word) keyword = &candidate;
      }
      if (keyword == nullptr) return Unknown();
      type = ColumnType::Of(keyword->kind);
    }
    while (Consume('[')) {
      if (!Consume(']')) return Unknown();
      if (++depth > kMaxListDepth) return TooDeep();
      type = ColumnType::List(std::move(type));
    }
    return type;
  }

  Result<ColumnType> ParseDecimalArguments() {
    int precision = 18, scale = 3;
    if (Consume('(')) {
      if (!Number(&precision)) return Unknown();
      scale = 0;
      if (Consume(',') && !Number(&scale)) return Unknown();
      if (!Consume(')')) return Unknown();
    }
    if (precision < 1 || precision > kMaxDecimalPrecision || scale < 0 || scale > precision) {
      return Status::Invalid("column type ", request_internal::Quoted(original_),
                             " is invalid: DECIMAL(p,s) needs a precision p from 1 to ",
                             kMaxDecimalPrecision, " and a scale s from 0 to p");
    }
    return ColumnType::Decimal(precision, scale);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  std::string_view Word() {
    size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      ++pos_;
    }
    return std::string_view(text_).substr(start, pos_ - start);
  }
  bool Number(int* out) {
    SkipSpace();
    size_t start = pos_;
    int value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      value = std::min(value * 10 + (text_[pos_++] - '0'), 100000);  // no overflow
    }
    *out = value;
    return pos_ > start;
  }
  Status Unknown() const {
    return Status::Invalid("unknown column type ", request_internal::Quoted(original_), ": ",
                           kValidTypes);
  }
  Status TooDeep() const {
    return Status::Invalid("column type ", request_internal::Quoted(original_),
                           " is nested too deeply: lists may nest at most ", kMaxListDepth,
                           " levels");
  }

  std::string_view original_;
  std::string text_;
  size_t pos_ = 0;
};

std::string_view KeywordOf(Kind kind) {
  for (const auto& keyword : kKeywords) {
    if (keyword.kind == kind) return keyword.name;
  }
  return "?";
}

Status UnsupportedArrow(const arrow::DataType& type, std::string_view why) {
  return Status::Invalid("Arrow type ", type.ToString(), " is not supported", why,
                         ": use boolean, int32, int64, double, decimal128, string, binary, "
                         "date32, timestamp[us], timestamp[us, tz=UTC] or a list of these");
}

}  // namespace

std::string ColumnType::ToString() const {
  switch (kind) {
    case Kind::kDecimal:
      return "DECIMAL(" + std::to_string(precision) + "," + std::to_string(scale) + ")";
    case Kind::kList:
      return (element ? element->ToString() : std::string("?")) + "[]";
    default:
      return std::string(KeywordOf(kind));
  }
}

std::shared_ptr<arrow::DataType> ColumnType::ToArrow() const {
  switch (kind) {
    case Kind::kBoolean:
      return arrow::boolean();
    case Kind::kInteger:
      return arrow::int32();
    case Kind::kBigint:
      return arrow::int64();
    case Kind::kDouble:
      return arrow::float64();
    case Kind::kDecimal:
      return arrow::decimal128(precision, scale);
    case Kind::kVarchar:
      return arrow::utf8();
    case Kind::kBlob:
      return arrow::binary();
    case Kind::kDate:
      return arrow::date32();
    case Kind::kTimestamp:
      return arrow::timestamp(arrow::TimeUnit::MICRO);
    case Kind::kTimestampTz:
      return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    case Kind::kList:
      return arrow::list(element ? element->ToArrow() : arrow::null());
  }
  return arrow::null();
}

bool ColumnType::operator==(const ColumnType& other) const {
  if (kind != other.kind) return false;
  if (kind == Kind::kDecimal) return precision == other.precision && scale == other.scale;
  if (kind == Kind::kList) {
    if (!element || !other.element) return element == other.element;
    return *element == *other.element;
  }
  return true;
}

bool ColumnType::is_numeric() const {
  return kind == Kind::kInteger || kind == Kind::kBigint || kind == Kind::kDouble ||
         kind == Kind::kDecimal;
}

bool ColumnType::is_temporal() const {
  return kind == Kind::kDate || kind == Kind::kTimestamp || kind == Kind::kTimestampTz;
}

Result<ColumnType> ParseColumnType(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return TypeParser(text, std::move(upper)).Parse();
}

Result<ColumnType> ColumnTypeFromArrow(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BOOL:
      return ColumnType::Of(Kind::kBoolean);
    case arrow::Type::INT32:
      return ColumnType::Of(Kind::kInteger);
    case arrow::Type::INT64:
      return ColumnType::Of(Kind::kBigint);
    case arrow::Type::DOUBLE:
      return ColumnType::Of(Kind::kDouble);
    case arrow::Type::DECIMAL128: {
      const auto& decimal = static_cast<const arrow::Decimal128Type&>(type);
      return ColumnType::Decimal(decimal.precision(), decimal.scale());
    }
    case arrow::Type::STRING:
      return ColumnType::Of(Kind::kVarchar);
    case arrow::Type::BINARY:
      return ColumnType::Of(Kind::kBlob);
    case arrow::Type::DATE32:
      return ColumnType::Of(Kind::kDate);
    case arrow::Type::TIMESTAMP: {
      const auto& timestamp = static_cast<const arrow::TimestampType&>(type);
      if (timestamp.unit() != arrow::TimeUnit::MICRO) {
        return UnsupportedArrow(type, " (timestamps must be in microseconds)");
      }
      return ColumnType::Of(timestamp.timezone().empty() ? Kind::kTimestamp : Kind::kTimestampTz);
    }
    case arrow::Type::LIST: {
      const auto& list = static_cast<const arrow::ListType&>(type);
      ARROW_ASSIGN_OR_RAISE(ColumnType element, ColumnTypeFromArrow(*list.value_type()));
      return ColumnType::List(std::move(element));
    }
    default:
      return UnsupportedArrow(type, "");
  }
}

}  // namespace teatree
