#include "teatree/control/control_store.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "teatree/control/control_internal.h"
#include "teatree/control/pg_control_store.h"
#include "teatree/control/sqlite_control_store.h"

namespace teatree {
namespace {

constexpr std::string_view kAcceptedForms =
    "use sqlite:///absolute/path.sqlite, sqlite://relative/path.sqlite or a bare file path";

std::string Lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool IsPostgresScheme(const std::string& scheme) {
  return scheme == "postgresql" || scheme == "postgres";
}

}  // namespace

Result<std::unique_ptr<ControlStore>> ControlStore::Open(const std::string& url) {
  if (url.empty()) return Status::Invalid("control catalog URL is empty: ", kAcceptedForms);
  const auto separator = url.find("://");
  if (separator == std::string::npos) {
    // "sqlite:x.sqlite" is a mistyped URL far more often than a file name with a colon.
    const std::string prefix = Lowercase(url.substr(0, url.find(':')));
    if (url.find(':') != std::string::npos && (prefix == "sqlite" || IsPostgresScheme(prefix))) {
      return Status::Invalid("control catalog URL \"", url, "\" lacks \"//\" after \"", prefix,
                             ":\": ", kAcceptedForms);
    }
    return SqliteControlStore::Open(url);
  }
  const std::string scheme = Lowercase(url.substr(0, separator));
  if (scheme == "sqlite") {
    const std::string path = url.substr(separator + 3);
    if (path.empty()) {
      return Status::Invalid("control catalog URL \"", url, "\" names no file: ", kAcceptedForms);
    }
    return SqliteControlStore::Open(path);
  }
  if (IsPostgresScheme(scheme)) return PgControlStore::Open(url);
  return Status::Invalid("control catalog URL \"", RedactUrl(url), "\" has unknown scheme \"",
                         scheme, "\": ", kAcceptedForms);
}

}  // namespace teatree
