#pragma once

#include <optional>
#include <string>

#include "teatree/common/status.h"
#include "teatree/read/read_ticket.h"

namespace teatree {

class ModelDirectory;
class ModelReads;
class NatsConnection;

/// Which version of a model a wait is for.
enum class VersionSource {
  /// What a read of the newest sees: the live model in its manager, the newest version file
  /// in a replica (queries, model descriptions).
  kServed,
  /// The newest published version file (pulls, version lists, `submit --wait=published`).
  kPublished,
};

/// Read your writes on the server side: the reads of `model` from `models` once they have
/// version `wanted->min_version` or newer (at once without `wanted`). The wait wakes on the
/// model's notifications (teatree.note.<model>: every outcome after its batch committed, every
/// version_published after its file is in place) when `nats` is given, and looks again on its
/// own every so often (a notification may come before the subscription does, and a replica
/// without NATS has only that). It lasts at most wanted->wait (capped by kMaxVersionWait when
/// the ticket was parsed); then it fails, marked FailureKind::kUnavailable, saying which
/// version the server has and what to do. A model not served (yet) counts as version 0 until
/// then, and its own error comes back at the end. Thread-safe; blocks the calling thread.
Result<ModelReads*> ReadsAtLeast(ModelDirectory& models, const std::string& model,
                                 const std::optional<VersionWanted>& wanted, VersionSource source,
                                 NatsConnection* nats);

}  // namespace teatree
