#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

class NatsConnection;

/// The models that exist, in the JetStream KV bucket teatree_models (one key per model, the
/// value its engine). A model exists on purpose: `teatree model create`, or the first
/// create_table of a model, registers it; a request for any other model is refused before
/// it is queued, and no manager is started for it. The bucket's stream bounds how many
/// models it holds (SetMaxModels), so the bound holds against concurrent creators too.
/// Thread-safe; the connection must outlive the registry.
class ModelRegistry {
 public:
  /// Opens the bucket, creating it if absent.
  static Result<std::unique_ptr<ModelRegistry>> Open(NatsConnection& connection);
  ~ModelRegistry();

  /// At most `max_models` models (0: no bound). Models beyond it stay (the bound becomes
  /// their count); new ones are refused.
  Status SetMaxModels(int64_t max_models);
  /// Whether `model` exists.
  Result<bool> Exists(const std::string& model);
  /// Registers `model` with `engine` ("duckdb", "arrow" or "" for the default); true if it is
  /// new, false if it existed already. Refused past the bound, with a message that says so.
  Result<bool> Create(const std::string& model, const std::string& engine);
  /// The registered models, sorted.
  Result<std::vector<std::string>> List();

  /// Refuses a request for `model` unless the model exists or the request creates it
  /// (`creates`: a create_table), registering it then: the check of every entry point that
  /// queues requests. The error says how to create the model.
  Status Admit(const std::string& model, bool creates, const std::string& engine);

 private:
  struct Impl;
  explicit ModelRegistry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
