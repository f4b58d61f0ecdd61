#pragma once

// Flags several `teatree` commands share.

#include <CLI/CLI.hpp>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/notes.h"
#include "teatree/common/logging.h"
#include "teatree/common/output_format.h"
#include "teatree/manager/model_manager.h"
#include "teatree/read/read_client.h"
#include "teatree/read/read_servers.h"

namespace teatree::cli {

/// --data-dir, --control, --archive, --input-dir, --functions, --memory-limit: where a
/// model's files live and what it may use.
void AddModelOptions(CLI::App& command, ManagerOptions& options);

/// --nats and its authentication and TLS flags.
void AddNatsOptions(CLI::App& command, NatsClientOptions& options);

/// The authentication and TLS flags alone (--nats-token, --nats-creds, --nats-tls-ca, ...).
void AddNatsAuthOptions(CLI::App& command, NatsClientOptions& options);

/// The same flags, for the managers a process starts (whose launcher moves the secrets among
/// them to the managers' environment).
std::vector<std::string> NatsAuthArgs(const NatsClientOptions& options);

/// --listen, --flight-port, --http-port, --token-file, --tls-cert/--tls-key and the read limits of
/// a process that serves reads.
/// --stream-replicas, for the commands that create Teatree's streams (serve, manager,
/// dispatcher).
void AddStreamReplicasOption(CLI::App& command, NatsClientOptions& options);

void AddReadServingOptions(CLI::App& command, ReadServingOptions& options);

/// The serving flags a process passes on to the managers it starts (all but the port).
std::vector<std::string> ReadServingArgs(const ReadServingOptions& options);

/// --notes-max-age-h and --notes-max-mb: how long and how much of the notifications stay
/// replayable.
void AddNoteStreamOptions(CLI::App& command, NoteStreamOptions& options);

/// The same flags, for the managers a process starts.
std::vector<std::string> NoteStreamArgs(const NoteStreamOptions& options);

/// --log-level, --log-format, --log-file, --log-max-mb and --log-keep.
void AddLogOptions(CLI::App& command, LogOptions& options);

/// The same flags but --log-file, for the managers a process starts (each gets its own file).
std::vector<std::string> LogArgs(const LogOptions& options);

/// --url, --token and --tls-root of a read client.
void AddReadClientOptions(CLI::App& command, ReadClientOptions& options);

/// --output text|json of a command that prints; `hint` is added to the message for any other
/// value (e.g. where a flag that used to be --output went).
void AddOutputOption(CLI::App& command, OutputFormat& output, const std::string& hint = "");

}  // namespace teatree::cli
