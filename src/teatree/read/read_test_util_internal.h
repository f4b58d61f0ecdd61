#pragma once

// What the read path's tests share: a live model with a few typed rows, and a certificate.

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/manager/model_manager.h"
#include "teatree/read/model_directory.h"
#include "teatree/request/codec.h"

namespace teatree::testing {

/// A model "sales" with a table "orders" (BIGINT key, DECIMAL, TIMESTAMPTZ, VARCHAR[]) of two
/// rows at version 2, published, read live through models_.
class LiveModelFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-read-test-").ValueOrDie();
    manager_ = ModelManager::Open({.data_dir = dir_->path(),
                                   .model = "sales",
                                   .archive_url = "none",
                                   .publish_interval = std::chrono::milliseconds(1)})
                   .ValueOrDie();
    Apply(R"({"request_id":"c1","model":"sales","op":"create_table","table":"orders","schema":[)"
          R"j({"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(12,2)"},)j"
          R"({"name":"at","type":"TIMESTAMPTZ"},{"name":"tags","type":"VARCHAR[]"}],)"
          R"("primary_key":["id"]})");
    Apply(R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
          R"([1,"12.50","2026-01-02T03:04:05+02:00",["a","b"]],[2,null,null,null]]})");
    models_ = std::make_unique<SingleModel>(ModelReads::Live(
        {.data_dir = dir_->path(), .model = "sales"}, [this] { return manager_->LiveReader(); }));
  }

  void TearDown() override {
    StopServers();
    models_.reset();
    manager_.reset();
  }

  /// Servers over models_ stop here, before the model closes.
  virtual void StopServers() {}

  /// Applies one request and waits until its version is published.
  void Apply(const std::string& line) {
    auto result = manager_->Apply({DecodeRequest(line).ValueOrDie()}).ValueOrDie();
    ASSERT_EQ(result.outcomes[0].status, "applied") << result.outcomes[0].error;
    ASSERT_TRUE(manager_->WaitPublished(manager_->version(), std::chrono::seconds(30)).ok());
  }

  /// Makes a self-signed certificate for 127.0.0.1 and localhost with openssl.
  void MakeCertificate(std::filesystem::path* cert, std::filesystem::path* key) {
    *cert = dir_->path() / "cert.pem";
    *key = dir_->path() / "key.pem";
    const std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
        "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
        key->string() + " -out " + cert->string() + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << "openssl is needed to make a certificate";
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<SingleModel> models_;
};

}  // namespace teatree::testing
