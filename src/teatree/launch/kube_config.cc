#include "teatree/launch/kube_config.h"

#include <arrow/util/base64.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "teatree/common/file_util.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

/// The first line of a file, without its line break.
Result<std::string> FirstLine(const fs::path& path) {
  ARROW_ASSIGN_OR_RAISE(std::string text, ReadFileToString(path));
  return text.substr(0, text.find_first_of("\r\n"));
}

/// The entry of a kubeconfig list (clusters, users, contexts) called `name`.
YAML::Node Named(const YAML::Node& list, const std::string& name) {
  if (!list.IsSequence()) return YAML::Node();
  for (const auto& entry : list) {
    if (entry["name"] && entry["name"].as<std::string>() == name) return entry;
  }
  return YAML::Node();
}

/// The PEM from `<key>-data` (base64) or the file `<key>` (relative to `base`); "" if neither.
Result<std::string> PemOf(const YAML::Node& node, const std::string& key, const fs::path& base) {
  if (const auto data = node[key + "-data"])
    return arrow::util::base64_decode(data.as<std::string>());
  if (const auto file = node[key]) {
    fs::path path = file.as<std::string>();
    return ReadFileToString(path.is_absolute() ? path : base / path);
  }
  return std::string();
}

Result<KubeConfig> Parse(const YAML::Node& root, const fs::path& path, std::string context) {
  if (context.empty() && root["current-context"]) {
    context = root["current-context"].as<std::string>();
  }
  const auto where = "kubeconfig " + path.string();
  if (context.empty()) {
    return Status::Invalid(where, " names no current-context: pass a context or set one with ",
                           "`kubectl config use-context`");
  }
  const YAML::Node ctx = Named(root["contexts"], context)["context"];
  if (!ctx) return Status::Invalid(where, " has no context '", context, "'");
  const YAML::Node cluster = Named(root["clusters"], ctx["cluster"].as<std::string>(""))["cluster"];
  if (!cluster || !cluster["server"]) {
    return Status::Invalid(where, ": the cluster of context '", context, "' has no server");
  }
  const YAML::Node user = Named(root["users"], ctx["user"].as<std::string>(""))["user"];
  const fs::path base = path.parent_path();
  KubeConfig config;
  config.server = cluster["server"].as<std::string>();
  if (ctx["namespace"]) config.name_space = ctx["namespace"].as<std::string>();
  ARROW_ASSIGN_OR_RAISE(config.ca_pem, PemOf(cluster, "certificate-authority", base));
  if (user) {
    if (user["exec"] || user["auth-provider"]) {
      return Status::NotImplemented(
          where, ": the user of context '", context,
          "' authenticates through a plugin (exec or auth-provider), which Teatree does not run: "
          "use a service account token or a client certificate");
    }
    if (user["token"]) config.token = user["token"].as<std::string>();
    if (user["tokenFile"]) config.token_file = user["tokenFile"].as<std::string>();
    ARROW_ASSIGN_OR_RAISE(config.client_cert_pem, PemOf(user, "client-certificate", base));
    ARROW_ASSIGN_OR_RAISE(config.client_key_pem, PemOf(user, "client-key", base));
  }
  return config;
}

}  // namespace

Result<std::string> KubeConfig::BearerToken() const {
  if (!token.empty() || token_file.empty()) return token;
  return FirstLine(token_file);
}

Result<KubeConfig> LoadKubeConfig(const fs::path& path, const std::string& context) {
  ARROW_ASSIGN_OR_RAISE(std::string text, ReadFileToString(path));
  try {
    return Parse(YAML::Load(text), path, context);
  } catch (const YAML::Exception& e) {
    return Status::Invalid("kubeconfig ", path.string(), " is not valid: ", e.what());
  }
}

Result<KubeConfig> InClusterConfig(const fs::path& account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr) {
    return Status::Invalid(
        "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set): pass "
        "--kubeconfig FILE");
  }
  KubeConfig config;
  const std::string h = host;
  config.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  ARROW_ASSIGN_OR_RAISE(config.ca_pem, ReadFileToString(account_dir / "ca.crt"));
  config.token_file = account_dir / "token";
  ARROW_ASSIGN_OR_RAISE(config.name_space, FirstLine(account_dir / "namespace"));
  return config;
}

}  // namespace teatree
