#include "teatree/read/version_wait.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/read/model_directory.h"

namespace teatree {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How often a wait looks again without being told: with notifications only to cover one that
/// came before the subscription reached NATS; without, it is all there is.
constexpr milliseconds kRecheckWithNotes{250};
constexpr milliseconds kRecheckAlone{50};

/// Where the model stands now: its reads and their version, or why it has none.
struct Standing {
  Result<ModelReads*> reads;
  Result<int64_t> version;
};

Standing Look(ModelDirectory& models, const std::string& model, VersionSource source) {
  Standing now{models.Find(model), int64_t{0}};
  if (!now.reads.ok()) {
    now.version = now.reads.status();
    return now;
  }
  ModelReads& reads = **now.reads;
  now.version =
      source == VersionSource::kServed ? reads.CurrentVersion() : reads.PublishedVersion();
  return now;
}

/// Whether `note` may mean the model moved to `min_version`: an outcome or a publication at
/// that version or later (a malformed note is looked at too: looking is cheap).
bool MayHaveMoved(const Note& note, int64_t min_version) {
  auto json = ParseJson(note.body, "a notification").ValueOr(nlohmann::json());
  if (!json.is_object() || !json.contains("version") || !json["version"].is_number_integer()) {
    return true;
  }
  return json["version"].get<int64_t>() >= min_version;
}

Status TimedOut(const std::string& model, const VersionWanted& wanted, VersionSource source,
                const Standing& last) {
  if (!last.version.ok()) return last.version.status();  // Not served at all, say why.
  int64_t published = *last.version;
  if (source == VersionSource::kServed && last.reads.ok()) {
    published = (*last.reads)->PublishedVersion().ValueOr(0);
  }
  return Unavailable(
      "model ", model, " has no version ", wanted.min_version, " or newer after ",
      wanted.wait.count(), " ms: ",
      source == VersionSource::kServed
          ? "it reads at version " + std::to_string(*last.version) + ", newest published "
          : "newest published ",
      published,
      ". The write may still be queued, applying or publishing (teatree status shows the "
      "backlog and the lag): read again, or wait longer with wait_ms (at most ",
      kMaxVersionWait.count(), ")");
}

}  // namespace

Result<ModelReads*> ReadsAtLeast(ModelDirectory& models, const std::string& model,
                                 const std::optional<VersionWanted>& wanted, VersionSource source,
                                 NatsConnection* nats) {
  if (!wanted) return models.Find(model);
  const auto deadline = Clock::now() + wanted->wait;
  // Usually the version is there (a live read after its outcome): no subscription then.
  if (Standing now = Look(models, model, source);
      now.version.ok() && *now.version >= wanted->min_version) {
    return now.reads;
  }
  // Subscribed before looking again: a notification after that look cannot be missed.
  std::unique_ptr<NoteSubscription> notes;
  if (nats != nullptr) notes = NoteSubscription::Live(*nats, NoteSubject(model)).ValueOr(nullptr);
  for (;;) {
    const milliseconds recheck = notes ? kRecheckWithNotes : kRecheckAlone;
    Standing now = Look(models, model, source);
    if (now.version.ok() && *now.version >= wanted->min_version) return now.reads;
    // Errors other than "not there yet" end the wait: waiting will not mend them.
    if (!now.version.ok() && !now.version.status().IsKeyError()) return now.version.status();
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return TimedOut(model, *wanted, source, now);
    const auto until = Clock::now() + std::min(left, recheck);
    if (!notes) {
      std::this_thread::sleep_until(until);
      continue;
    }
    // Notes that cannot matter (older versions) do not cost a look.
    while (Clock::now() < until) {
      auto note = notes->Next(std::chrono::duration_cast<milliseconds>(until - Clock::now()) +
                              milliseconds(1));
      if (!note.ok()) {
        notes.reset();  // NATS went away: look on our own from now on.
        break;
      }
      if (*note && MayHaveMoved(**note, wanted->min_version)) break;
    }
  }
}

}  // namespace teatree
