#include "teatree/launch/kube_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

fs::path Write(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

TEST(KubeConfigTest, ReadsTheCurrentContext) {
  auto dir = TempDir::Make("teatree-kubeconfig-").ValueOrDie();
  Write(dir->path() / "ca.pem", "CA PEM\n");
  // "Q0VSVA==" is base64 of "CERT".
  auto path = Write(dir->path() / "config", R"(apiVersion: v1
kind: Config
current-context: test
clusters:
- name: other
  cluster: {server: "https://10.0.0.1:443"}
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: ca.pem
contexts:
- name: test
  context: {cluster: local, user: launcher, namespace: teatree}
users:
- name: launcher
  user:
    token: abc123
    client-certificate-data: Q0VSVA==
)");
  auto config = LoadKubeConfig(path).ValueOrDie();
  EXPECT_EQ(config.server, "https://127.0.0.1:6443");
  EXPECT_EQ(config.ca_pem, "CA PEM\n");
  EXPECT_EQ(config.name_space, "teatree");
  EXPECT_EQ(config.BearerToken().ValueOrDie(), "abc123");
  EXPECT_EQ(config.client_cert_pem, "CERT");
}

TEST(KubeConfigTest, SaysWhatItCannotUse) {
  auto dir = TempDir::Make("teatree-kubeconfig-").ValueOrDie();
  auto plugin = Write(dir->path() / "plugin", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {exec: {command: aws}}}]
)");
  auto loaded = LoadKubeConfig(plugin);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("plugin"), std::string::npos);
  EXPECT_FALSE(LoadKubeConfig(plugin, "nope").ok());
  auto broken = Write(dir->path() / "broken", "clusters: [\n");
  EXPECT_NE(LoadKubeConfig(broken).status().message().find("not valid"), std::string::npos);
  EXPECT_FALSE(LoadKubeConfig(dir->path() / "absent").ok());
}

TEST(KubeConfigTest, InAPodTheServiceAccountIsUsed) {
  auto dir = TempDir::Make("teatree-account-").ValueOrDie();
  Write(dir->path() / "ca.crt", "CA\n");
  Write(dir->path() / "token", "t0ken\n");
  Write(dir->path() / "namespace", "teatree");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_NE(InClusterConfig(dir->path()).status().message().find("--kubeconfig"),
            std::string::npos);
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto config = InClusterConfig(dir->path()).ValueOrDie();
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  EXPECT_EQ(config.server, "https://10.96.0.1:443");
  EXPECT_EQ(config.name_space, "teatree");
  EXPECT_EQ(config.BearerToken().ValueOrDie(), "t0ken");  // Read at each use: rotated.
  Write(dir->path() / "token", "rotated\n");
  EXPECT_EQ(config.BearerToken().ValueOrDie(), "rotated");
}

}  // namespace
}  // namespace teatree
