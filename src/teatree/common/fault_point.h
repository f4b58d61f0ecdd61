#pragma once

#include <string_view>

namespace teatree {

/// Named moments where crash tests stop a process as kill -9 would, to prove that recovery
/// works at exactly the moments that matter (between a commit and its publication, during
/// an archive upload, …), not only at random ones. Off unless the environment asks:
///
///   TEATREE_FAULT=<point>[:parent]   at <point>, SIGKILL this process (or its parent: how a
///                                    test kills `teatree serve` at a manager's moment)
///   TEATREE_FAULT_ONCE=<file>        only the first process to get there does it (it creates
///                                    <file>), so the restarted process recovers
///
/// The points are listed in docs/operations.md. Costs one comparison when off. Thread-safe.
void FaultPoint(std::string_view point);

}  // namespace teatree
