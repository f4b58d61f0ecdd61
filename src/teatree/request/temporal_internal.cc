#include "teatree/request/temporal_internal.h"

namespace teatree::request_internal {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;

// Reads exactly `count` decimal digits at text[pos].
bool Digits(std::string_view text, size_t pos, size_t count, int* out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  *out = value;
  return true;
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t year, int month, int day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

bool ParseDatePrefix(std::string_view text, int64_t* days) {
  int year, month, day;
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') return false;
  if (!Digits(text, 0, 4, &year) || !Digits(text, 5, 2, &month) || !Digits(text, 8, 2, &day)) {
    return false;
  }
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) {
    return false;
  }
  *days = DaysFromCivil(year, month, day);
  return true;
}

// Parses "[.ffffff]" at text[*pos] into microseconds.
bool ParseFraction(std::string_view text, size_t* pos, int64_t* micros) {
  *micros = 0;
  if (*pos >= text.size() || text[*pos] != '.') return true;
  size_t digits = 0;
  int64_t value = 0;
  for (++*pos; *pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9'; ++*pos) {
    if (++digits > 6) return false;
    value = value * 10 + (text[*pos] - '0');
  }
  if (digits == 0) return false;
  for (; digits < 6; ++digits) value *= 10;
  *micros = value;
  return true;
}

// Parses the zone offset that ends the text: "Z", "+hh", "+hh:mm", "+hhmm" (or '-').
bool ParseOffset(std::string_view rest, int64_t* offset_seconds) {
  if (rest == "Z" || rest == "z") {
    *offset_seconds = 0;
    return true;
  }
  if (rest.size() < 3 || (rest[0] != '+' && rest[0] != '-')) return false;
  int hours = 0, minutes = 0;
  if (!Digits(rest, 1, 2, &hours)) return false;
  if (rest.size() == 6 && rest[3] == ':') {
    if (!Digits(rest, 4, 2, &minutes)) return false;
  } else if (rest.size() == 5) {
    if (!Digits(rest, 3, 2, &minutes)) return false;
  } else if (rest.size() != 3) {
    return false;
  }
  if (hours > 23 || minutes > 59) return false;
  *offset_seconds = (rest[0] == '-' ? -1 : 1) * (int64_t{hours} * 3600 + int64_t{minutes} * 60);
  return true;
}

}  // namespace

bool ParseDate(std::string_view text, int32_t* days) {
  int64_t value;
  if (text.size() != 10 || !ParseDatePrefix(text, &value)) return false;
  *days = static_cast<int32_t>(value);
  return true;
}

bool ParseTimestamp(std::string_view text, ZoneOffset zone, int64_t* micros) {
  int64_t days;
  int hour, minute, second;
  if (text.size() < 19 || !ParseDatePrefix(text, &days)) return false;
  if ((text[10] != ' ' && text[10] != 'T') || text[13] != ':' || text[16] != ':') return false;
  if (!Digits(text, 11, 2, &hour) || !Digits(text, 14, 2, &minute) ||
      !Digits(text, 17, 2, &second) || hour > 23 || minute > 59 || second > 59) {
    return false;
  }
  size_t pos = 19;
  int64_t fraction;
  if (!ParseFraction(text, &pos, &fraction)) return false;
  int64_t offset_seconds = 0;
  if (zone == ZoneOffset::kRequired) {
    if (!ParseOffset(text.substr(pos), &offset_seconds)) return false;
  } else if (pos != text.size()) {
    return false;
  }
  const int64_t seconds =
      days * 86400 + int64_t{hour} * 3600 + int64_t{minute} * 60 + second - offset_seconds;
  *micros = seconds * kMicrosPerSecond + fraction;
  return true;
}

}  // namespace teatree::request_internal
