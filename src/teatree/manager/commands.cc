#include "teatree/manager/commands.h"

#include <arrow/api.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "teatree/archive/archive.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/sql_quote.h"
#include "teatree/common/table_format.h"
#include "teatree/control/control_store.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/manager/version_publisher.h"
#include "teatree/request/codec.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// Applies batches for every model met in the input, opening each model once.
class BatchRunner {
 public:
  BatchRunner(const ApplyOptions& options, std::ostream& out) : options_(options), out_(out) {}

  Status Add(Request request) {
    if (!pending_.empty() && pending_.front().model != request.model) {
      ARROW_RETURN_NOT_OK(Flush());
    }
    pending_.push_back(std::move(request));
    if (pending_.size() >= options_.batch_size) return Flush();
    return Status::OK();
  }

  Status Flush() {
    if (pending_.empty()) return Status::OK();
    ARROW_ASSIGN_OR_RAISE(ModelManager * manager, Manager(pending_.front().model));
    ARROW_ASSIGN_OR_RAISE(auto result, manager->Apply(pending_));
    for (const auto& outcome : result.outcomes) ARROW_RETURN_NOT_OK(Print(outcome));
    out_.flush();  // Printed lines are committed: crash tests rely on it.
    applied_ += pending_.size();
    pending_.clear();
    return Status::OK();
  }

  Status Finish(std::ostream& progress) {
    ARROW_RETURN_NOT_OK(Flush());
    for (auto& [model, manager] : managers_) {
      if (options_.wait_published && manager->version() > 0) {
        ARROW_RETURN_NOT_OK(manager->WaitPublished(manager->version(), std::chrono::minutes(10)));
      }
      ARROW_RETURN_NOT_OK(manager->Close());
      progress << "model " << model << ": version " << manager->version() << ", published "
               << manager->published_version() << "\n";
    }
    return Status::OK();
  }

  Status Print(const RequestOutcome& outcome) {
    if (options_.output != "text") {
      out_ << DumpJson(outcome.ToJson()) << "\n";
      return Status::OK();
    }
    out_ << std::left << std::setw(12) << outcome.request_id << " " << std::setw(13)
         << OpName(outcome.op) << " ";
    if (!outcome.applied()) {
      out_ << "REJECTED  " << outcome.error << "\n";
      return Status::OK();
    }
    out_ << std::setw(9) << (outcome.duplicate ? "duplicate" : "applied") << " v" << std::setw(4)
         << outcome.version << std::right << std::setw(7) << outcome.rows << " rows " << std::fixed
         << std::setprecision(1) << std::setw(7) << outcome.duration_ms << " ms\n";
    if (outcome.result != nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto text, FormatTable(*outcome.result, 20));
      std::istringstream lines(text);
      for (std::string line; std::getline(lines, line);) out_ << "    " << line << "\n";
    }
    return Status::OK();
  }

  size_t applied() const { return applied_; }
  std::string Summary() const {
    std::string text;
    for (const auto& [model, manager] : managers_) {
      text += (text.empty() ? "" : ", ") + model + " v" + std::to_string(manager->version());
    }
    return text;
  }

 private:
  Result<ModelManager*> Manager(const std::string& model) {
    auto it = managers_.find(model);
    if (it != managers_.end()) return it->second.get();
    ManagerOptions manager_options = options_.manager;
    manager_options.model = model;
    ARROW_ASSIGN_OR_RAISE(auto manager, ModelManager::Open(manager_options));
    return managers_.emplace(model, std::move(manager)).first->second.get();
  }

  const ApplyOptions& options_;
  std::ostream& out_;
  std::vector<Request> pending_;
  std::map<std::string, std::unique_ptr<ModelManager>> managers_;
  size_t applied_ = 0;
};

void PrintDecodeFailure(const ApplyOptions& options, size_t line, const Status& status,
                        std::ostream& out) {
  if (options.output == "text") {
    out << "line " << std::left << std::setw(7) << line << " " << std::setw(13) << "-"
        << " REJECTED  " << status.message() << "\n";
    return;
  }
  out << DumpJson(
             nlohmann::json{{"line", line}, {"status", "rejected"}, {"error", status.message()}})
      << "\n";
}

}  // namespace

Status RunApply(const ApplyOptions& options, std::ostream& out, std::ostream& progress) {
  std::ifstream file;
  if (options.file != "-") {
    file.open(options.file);
    if (!file) return Status::IOError("cannot read requests file ", options.file.string());
  }
  std::istream& in = options.file == "-" ? std::cin : file;
  BatchRunner runner(options, out);
  auto last_report = Clock::now();
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    auto request = DecodeRequest(line);
    if (!request.ok()) {
      ARROW_RETURN_NOT_OK(runner.Flush());  // Keep outcome lines in input order.
      PrintDecodeFailure(options, number, request.status(), out);
      continue;
    }
    ARROW_RETURN_NOT_OK(runner.Add(std::move(*request)));
    if (Clock::now() - last_report > std::chrono::seconds(2)) {
      progress << "applied " << runner.applied() << " requests (" << runner.Summary() << ")\n";
      last_report = Clock::now();
    }
  }
  return runner.Finish(progress);
}

Status RunVersions(const fs::path& data_dir, const std::string& model, OutputFormat output,
                   std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto versions, ListVersionFiles(data_dir, model));
  if (versions.empty() && !fs::exists(ModelDir(data_dir, model))) {
    return Status::KeyError("model ", model, " does not exist in ", data_dir.string());
  }
  nlohmann::json list = nlohmann::json::array();
  if (output == OutputFormat::kText) {
    out << std::left << std::setw(10) << "version" << std::setw(14) << "bytes"
        << "sha256\n";
  }
  for (int64_t version : versions) {
    const fs::path file = VersionFilePath(data_dir, model, version);
    std::error_code ec;
    const auto bytes = fs::file_size(file, ec);
    std::string checksum;
    std::ifstream(file.string() + ".sha256") >> checksum;
    if (output == OutputFormat::kJson) {
      list.push_back({{"version", version}, {"bytes", ec ? 0 : bytes}, {"sha256", checksum}});
    } else {
      out << std::setw(10) << version << std::setw(14) << (ec ? 0 : bytes) << checksum << "\n";
    }
  }
  if (output == OutputFormat::kJson) {
    out << DumpJson(nlohmann::json{{"model", model}, {"versions", list}}) << "\n";
  }
  return Status::OK();
}

Status RunCatalog(const fs::path& data_dir, OutputFormat output, std::ostream& out) {
  const fs::path path = data_dir / "control.sqlite";
  if (!fs::exists(path)) {
    return Status::KeyError("no control catalog at ", path.string(),
                            ": apply some requests first (teatree apply --data-dir ",
                            data_dir.string(), " --file …)");
  }
  ARROW_ASSIGN_OR_RAISE(auto control,
                        ControlStore::Open("sqlite://" + fs::absolute(path).string()));
  ARROW_ASSIGN_OR_RAISE(auto models, control->ListModels());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& model : models) {
    nlohmann::json tables = nlohmann::json::array();
    if (output == OutputFormat::kText) {
      out << "model " << model.id << "  engine " << model.engine << "  status " << model.status
          << "  version " << model.current_version << "  published " << model.published_version
          << "\n";
    }
    ARROW_ASSIGN_OR_RAISE(auto content, control->ListContent(model.id));
    for (const auto& record : content) {
      if (record.version != model.published_version) continue;
      tables.push_back({{"table", record.table_name},
                        {"rows", record.rows},
                        {"archive_uri", record.archive_uri}});
      if (output == OutputFormat::kText) {
        out << "  " << std::left << std::setw(24) << record.table_name << std::right
            << std::setw(12) << record.rows << " rows  " << record.archive_uri << "\n";
      }
    }
    list.push_back({{"model", model.id},
                    {"engine", model.engine},
                    {"status", model.status},
                    {"version", model.current_version},
                    {"published_version", model.published_version},
                    {"tables", tables}});
  }
  if (output == OutputFormat::kJson) out << DumpJson(nlohmann::json{{"models", list}}) << "\n";
  return Status::OK();
}

Status RunInspect(const fs::path& file, const std::string& sql, std::ostream& out) {
  if (!fs::exists(file)) return Status::KeyError("no such file: ", file.string());
  ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({.path = file.string(), .read_only = true}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  if (!sql.empty()) {
    ARROW_ASSIGN_OR_RAISE(bool select, connection->IsSingleSelect(sql));
    if (!select) return Status::Invalid("inspect runs one SELECT statement; got: ", sql);
    ARROW_ASSIGN_OR_RAISE(auto table, connection->QueryTable(sql));
    ARROW_ASSIGN_OR_RAISE(auto text, FormatTable(*table));
    out << text;
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto version,
                        connection->QueryTable("SELECT version FROM _teatree_version"));
  ARROW_ASSIGN_OR_RAISE(auto scalar, version->column(0)->GetScalar(0));
  out << file.string() << ": Teatree model version " << scalar->ToString() << "\n";
  ARROW_ASSIGN_OR_RAISE(auto tables,
                        connection->QueryTable("SELECT name FROM _teatree_tables ORDER BY name"));
  std::string counts;
  for (int64_t i = 0; i < tables->num_rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto name, tables->column(0)->GetScalar(i));
    counts += (counts.empty() ? "" : " UNION ALL ") + std::string("SELECT ") +
              SqlStringLiteral(name->ToString()) + " AS \"table\", count(*) AS \"rows\" FROM " +
              SqlIdentifier(name->ToString());
  }
  if (counts.empty()) return Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto table, connection->QueryTable(counts));
  ARROW_ASSIGN_OR_RAISE(auto text, FormatTable(*table));
  out << text;
  return Status::OK();
}

Status KeepVerifiedVersionFile(const fs::path& tmp, const ExpectedVersionFile& expected,
                               const fs::path& output) {
  ARROW_ASSIGN_OR_RAISE(std::string actual, Sha256File(tmp));
  if (actual != expected.sha256) {
    return Status::IOError("version ", expected.version, " of model ", expected.model,
                           " does not match its checksum (sha256 ", actual, ", expected ",
                           expected.sha256, "): the download or its source is damaged");
  }
  ARROW_ASSIGN_OR_RAISE(int64_t holds, DuckEngine::ReadFileVersion(tmp));
  if (holds != expected.version) {
    return Status::IOError("version ", expected.version, " of model ", expected.model,
                           " holds version ", holds);
  }
  return DurableRename(tmp, output);
}

Status RunPull(const PullOptions& options, std::ostream& out) {
  ARROW_RETURN_NOT_OK(ValidateName("model", options.model));
  ARROW_ASSIGN_OR_RAISE(auto archive, Archive::Open(options.archive_url));
  int64_t version = options.version;
  if (version == 0) {
    ARROW_ASSIGN_OR_RAISE(auto versions, archive->ListVersions(options.model));
    if (versions.empty()) {
      return Status::KeyError("model ", options.model, " has no archived version in ",
                              options.archive_url);
    }
    version = versions.back();
  }
  // Both beside the output under names of their own: the output is whole or absent.
  ARROW_ASSIGN_OR_RAISE(const fs::path tmp, CreateTempFileBeside(options.output));
  auto tmp_checksum = CreateTempFileBeside(options.output);
  if (!tmp_checksum.ok()) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return tmp_checksum.status();
  }
  auto fetch = [&]() -> Status {
    const std::string name = kMirroredVersionFile;
    Status got = archive->GetFile(options.model, version, name, tmp);
    if (got.IsKeyError()) {
      return got.WithMessage(got.message(),
                             ": its manager mirrors version files only with --mirror-versions");
    }
    ARROW_RETURN_NOT_OK(got);
    ARROW_RETURN_NOT_OK(archive->GetFile(options.model, version, name + ".sha256", *tmp_checksum));
    std::string expected;
    std::ifstream(*tmp_checksum) >> expected;
    return KeepVerifiedVersionFile(tmp, {options.model, version, expected}, options.output);
  };
  Status status = fetch();
  std::error_code ignored;
  fs::remove(tmp, ignored);
  fs::remove(*tmp_checksum, ignored);
  ARROW_RETURN_NOT_OK(status);
  const auto bytes = fs::file_size(options.output, ignored);
  if (options.output_format == OutputFormat::kJson) {
    ARROW_ASSIGN_OR_RAISE(auto sha256, Sha256File(options.output));
    out << DumpJson(nlohmann::json{{"model", options.model},
                                   {"path", options.output.string()},
                                   {"version", version},
                                   {"bytes", bytes},
                                   {"sha256", sha256}})
        << std::endl;
    return Status::OK();
  }
  out << "pulled model " << options.model << " version " << version << " (" << bytes
      << " bytes, sha256 verified) to " << options.output.string() << std::endl;
  return Status::OK();
}

}  // namespace teatree
