#pragma once

namespace teatree {

/// How a command prints what it did: for people, or one JSON document (or one per line) for
/// scripts. docs/cli.md gives each command's JSON.
enum class OutputFormat {
  kText,
  kJson,
};

}  // namespace teatree
