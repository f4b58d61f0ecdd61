#include <filesystem>
#include <nlohmann/json.hpp>

#include "teatree/bus/model_registry.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/control/control_store.h"
#include "teatree/service/commands.h"

// `teatree model`: create, set-class, list.

namespace teatree {

namespace fs = std::filesystem;

namespace {

/// Records the pod class of a model in the catalog, after checking the class exists.
Status RecordPodClass(const ModelCommandOptions& options) {
  auto known = options.classes.Find(options.pod_class);
  if (!known.ok()) return MarkFailure(known.status(), FailureKind::kUsage);
  const std::string url =
      options.control_url.empty()
          ? "sqlite://" + fs::absolute(options.client.data_dir / "control.sqlite").string()
          : options.control_url;
  ARROW_ASSIGN_OR_RAISE(auto control, ControlStore::Open(url));
  return control->SetPodClass(options.model, options.pod_class);
}

}  // namespace

Status RunModelCreate(const ModelCommandOptions& options, std::ostream& out) {
  if (!options.pod_class.empty() && !options.classes.Find(options.pod_class).ok()) {
    return RecordPodClass(options);  // Says which classes there are; creates nothing.
  }
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options.client));
  ARROW_ASSIGN_OR_RAISE(bool created, client->models().Create(options.model, options.engine));
  if (!options.pod_class.empty()) ARROW_RETURN_NOT_OK(RecordPodClass(options));
  if (options.output == OutputFormat::kJson) {
    nlohmann::json json{{"model", options.model}, {"created", created}};
    if (!options.pod_class.empty()) json["pod_class"] = options.pod_class;
    out << DumpJson(json) << std::endl;
  } else {
    out << "model " << options.model << (created ? " created" : " exists already")
        << (options.pod_class.empty() ? "" : ", pod class " + options.pod_class) << std::endl;
  }
  return Status::OK();
}

Status RunModelSetClass(const ModelCommandOptions& options, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options.client));
  ARROW_ASSIGN_OR_RAISE(bool exists, client->models().Exists(options.model));
  if (!exists) {
    return MarkFailure(Status::KeyError("model ", options.model,
                                        " does not exist: create it with `teatree model create "
                                        "--model ",
                                        options.model, " --class ", options.pod_class, "`"),
                       FailureKind::kUsage);
  }
  ARROW_RETURN_NOT_OK(RecordPodClass(options));
  if (options.output == OutputFormat::kJson) {
    out << DumpJson(nlohmann::json{{"model", options.model}, {"pod_class", options.pod_class}})
        << std::endl;
  } else {
    out << "model " << options.model << ": pod class " << options.pod_class
        << " (taken at its manager's next start)" << std::endl;
  }
  return Status::OK();
}

Status RunModelList(const ModelCommandOptions& options, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options.client));
  ARROW_ASSIGN_OR_RAISE(auto names, client->models().List());
  if (options.output == OutputFormat::kJson) {
    out << DumpJson(nlohmann::json{{"models", names}}) << std::endl;
    return Status::OK();
  }
  for (const auto& name : names) out << name << "\n";
  out << std::flush;
  return Status::OK();
}

}  // namespace teatree
