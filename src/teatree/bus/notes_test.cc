#include "teatree/bus/notes.h"

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "teatree/bus/test_util_internal.h"
#include "teatree/common/subprocess.h"

namespace teatree {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class NotesTest : public BusTest {};

/// The bodies the stream holds on `subject`, oldest first.
std::vector<std::string> Stored(NatsConnection& connection, const std::string& subject) {
  auto notes = NoteSubscription::Replay(connection, subject).ValueOrDie();
  std::vector<std::string> bodies;
  for (;;) {
    auto note = notes->Next(milliseconds(500)).ValueOrDie();
    if (!note) return bodies;
    bodies.push_back(note->body);
  }
}

TEST_F(NotesTest, ANotificationTheServerDiedWithIsPublishedAgainAndKeptOnce) {
  auto notifier = Notifier::Make(connection()).ValueOrDie();
  ASSERT_TRUE(notifier->Publish("teatree.note.m", "before").ok());
  ASSERT_TRUE(notifier->Flush(seconds(5)).ok());
  // The server takes "lost" into its socket buffer and dies without reading it: its ack
  // never comes, whatever the connection does next.
  ASSERT_TRUE(server_->process().Signal(SIGSTOP).ok());
  ASSERT_TRUE(notifier->Publish("teatree.note.m", "lost").ok());
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(server_->process().Signal(SIGKILL).ok());
  ASSERT_TRUE(server_->Restart().ok());

  Status flushed = notifier->Flush(seconds(20));
  EXPECT_TRUE(flushed.ok()) << flushed.ToString();
  ASSERT_TRUE(notifier->Publish("teatree.note.m", "after").ok());
  EXPECT_TRUE(notifier->Flush(seconds(5)).ok());
  EXPECT_EQ(Stored(connection(), "teatree.note.m"),
            (std::vector<std::string>{"before", "lost", "after"}));
}

}  // namespace
}  // namespace teatree
