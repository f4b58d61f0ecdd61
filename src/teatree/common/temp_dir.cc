#include "teatree/common/temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace teatree {

Result<std::unique_ptr<TempDir>> TempDir::Make(std::string_view prefix) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Status::IOError("cannot create temporary directory ", pattern, ": ",
                           std::strerror(errno), " (check TMPDIR and free disk space)");
  }
  return std::unique_ptr<TempDir>(new TempDir(pattern));
}

TempDir::~TempDir() {
  std::error_code ignored;  // Best effort: a destructor cannot report failure.
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace teatree
