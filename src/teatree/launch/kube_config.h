#pragma once

#include <filesystem>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

/// Where the Kubernetes API server is and how to authenticate to it: what kubectl reads from
/// a kubeconfig file, or a pod from its service account.
struct KubeConfig {
  /// "https://host:port".
  std::string server;
  /// PEM of the CA that signed the API server's certificate; empty: the system's.
  std::string ca_pem;
  /// A bearer token, or the file holding it (re-read on each use: in a pod, the service
  /// account's token is rotated).
  std::string token;
  std::filesystem::path token_file;
  /// A client certificate and key (PEM), as kubeconfig's client-certificate(-data).
  std::string client_cert_pem;
  std::string client_key_pem;
  /// The namespace of the context, or the pod's own.
  std::string name_space = "default";

  /// The bearer token to send, "" when none.
  Result<std::string> BearerToken() const;
};

/// Reads a kubeconfig file (the context `context`, or its current-context): server, CA,
/// token or client certificate (inline `*-data` or files, relative to the kubeconfig's
/// directory), namespace. Exec and auth-provider plugins are not supported: the error says so.
Result<KubeConfig> LoadKubeConfig(const std::filesystem::path& path,
                                  const std::string& context = "");

/// The configuration of a pod's service account (KUBERNETES_SERVICE_HOST/PORT and the files
/// under `account_dir`); an error outside a cluster.
Result<KubeConfig> InClusterConfig(
    const std::filesystem::path& account_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

}  // namespace teatree
