#include "teatree/cli/options.h"

#include <spdlog/spdlog.h>

namespace teatree::cli {

void AddModelOptions(CLI::App& command, ManagerOptions& options) {
  command.add_option("--data-dir,-d", options.data_dir, "data directory")->capture_default_str();
  command.add_option("--control", options.control_url,
                     "control catalog URL (default: sqlite://<data-dir>/control.sqlite)");
  command.add_option("--archive", options.archive_url,
                     "archive directory or URL for Parquet copies of each version "
                     "(default: <data-dir>/archive; none disables)");
  command.add_option("--input-dir", options.input_dirs,
                     "directory that source and attach paths may point into (repeatable; "
                     "default: <data-dir>/input)");
  command.add_flag("--mirror-versions", options.mirror_versions,
                   "also copy each version file into the archive (for teatree pull "
                   "--from-archive)");
  command.add_option("--functions", options.functions_file,
                     "JSON file of SQL functions for invoke (besides the built-ins)");
  command.add_option("--plugin", options.plugins,
                     "shared library of native functions for invoke and reads (repeatable; "
                     "see docs/functions.md)");
  command.add_option("--memory-limit", options.memory_limit,
                     "DuckDB memory limit of a model (its writer and live reads), e.g. 4GB");
  command
      .add_option("--publish", options.publish,
                  "which versions get a version file: auto (each as soon as the publisher "
                  "is free, pacing it by what a publication costs; the writer never waits), "
                  "every (each batch's, for --at-version of any version kept; the next batch "
                  "waits for it) or coalesce (the newest, at most every 500 ms)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, PublishPolicy>{{"every", PublishPolicy::kEvery},
                                               {"coalesce", PublishPolicy::kCoalesce},
                                               {"auto", PublishPolicy::kAuto}},
          CLI::ignore_case))
      ->default_str("auto");
  command
      .add_option("--keep-versions", options.keep_versions,
                  "version files kept whatever their age (the newest N)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  command
      .add_option_function<int64_t>(
          "--keep-versions-for-s",
          [&options](int64_t seconds) { options.retention_grace = std::chrono::seconds(seconds); },
          "keep older version files this many seconds after a newer one is published, for "
          "--at-version reads and pulls (default 60)")
      ->default_str("60")
      ->check(CLI::NonNegativeNumber);
  command
      .add_option_function<int64_t>(
          "--hot-mb", [&options](int64_t mb) { options.hot_bytes = mb << 20; },
          "MiB of an Arrow-engine model's newest data kept as memory-mapped Arrow IPC copies "
          "beside its Parquet, for native functions and rewrites (0: none; default 1024)")
      ->default_str("1024")
      ->check(CLI::NonNegativeNumber);
}

void AddNatsOptions(CLI::App& command, NatsClientOptions& options) {
  command.add_option("--nats", options.url,
                     "NATS server URL, e.g. nats://host:4222 (default: the one `teatree serve` "
                     "runs for --data-dir)");
  AddNatsAuthOptions(command, options);
}

void AddNatsAuthOptions(CLI::App& command, NatsClientOptions& options) {
  command.add_option("--nats-token", options.token,
                     "NATS authentication token (better: --nats-token-file, or the variable)");
  command.add_option("--nats-token-file", options.token_file,
                     "file whose first line is the NATS token");
  command.add_option("--nats-user", options.user, "NATS user name");
  command.add_option("--nats-password", options.password,
                     "NATS password (better: --nats-password-file, or the variable)");
  command.add_option("--nats-password-file", options.password_file,
                     "file whose first line is the NATS password");
  command.add_option("--nats-creds", options.creds_file,
                     "NATS .creds file (user JWT and NKey seed, as nsc writes it)");
  command.add_option("--nats-nkey", options.nkey, "NATS NKey public key (U...)");
  command.add_option("--nats-nkey-seed", options.nkey_seed_file, "file holding the NKey seed");
  command.add_option("--nats-tls-ca", options.tls_ca_file, "PEM CA file to verify the server");
  command.add_option("--nats-tls-cert", options.tls_cert_file, "PEM client certificate");
  command.add_option("--nats-tls-key", options.tls_key_file, "PEM client key");
}

void AddStreamReplicasOption(CLI::App& command, NatsClientOptions& options) {
  command
      .add_option("--stream-replicas", options.stream_replicas,
                  "copies JetStream keeps of Teatree's streams and buckets: 3 on a 3-node NATS "
                  "cluster (existing streams are scaled to it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 5));
}

void AddReadServingOptions(CLI::App& command, ReadServingOptions& options) {
  command.add_option("--listen", options.listen.host, "address the read servers listen on")
      ->capture_default_str();
  command.add_option("--advertise-host", options.listen.advertise_host,
                     "host name or address clients are told to use in the URLs handed out "
                     "(status, Flight endpoints, the catalog); default: --listen, or this "
                     "machine's host name when that is 0.0.0.0 or ::");
  command.add_option("--flight-port", options.listen.port, "Arrow Flight port (0: a free one)")
      ->capture_default_str();
  command.add_option("--http-port", options.http_port, "HTTP port (0: a free one; -1: no HTTP)")
      ->capture_default_str();
  command.add_option("--token-file", options.listen.token_file,
                     "require a bearer token from this file on every read and HTTP submit: one "
                     "a line, optionally with its rights and models (docs/reads.md)");
  command.add_option("--tls-cert", options.listen.tls_cert, "PEM certificate: serve over TLS");
  command.add_option("--tls-key", options.listen.tls_key, "PEM private key of --tls-cert");
  command
      .add_option_function<int64_t>(
          "--query-timeout-s",
          [&options](int64_t seconds) { options.limits.timeout = std::chrono::seconds(seconds); },
          "stop a read after this many seconds (0: no limit; default 60)")
      ->default_str("60")
      ->check(CLI::NonNegativeNumber);
  command
      .add_option_function<int64_t>(
          "--max-result-mb", [&options](int64_t mb) { options.limits.max_result_bytes = mb << 20; },
          "fail a read whose result grows past this many MiB of Arrow data (0: no limit; "
          "default 8192)")
      ->default_str("8192")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--query-memory-limit", options.memory_limit,
                     "DuckDB memory limit for reads of version files, e.g. 2GB");
  command
      .add_option_function<int64_t>(
          "--http-max-body-mb",
          [&options](int64_t mb) { options.http.max_body_bytes = static_cast<size_t>(mb) << 20; },
          "refuse HTTP request bodies larger than this many MiB with 413 (default 64)")
      ->default_str("64")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--http-max-connections", options.http.max_connections,
                  "HTTP connections served at once, a thread each; more wait")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      .add_option("--http-max-streams-per-client", options.http.max_streams_per_client,
                  "result and notification streams one client address may hold open (429 past it)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      .add_option_function<int64_t>(
          "--http-io-timeout-s",
          [&options](int64_t seconds) { options.http.io_timeout = std::chrono::seconds(seconds); },
          "drop an HTTP client that sends nothing, or stops reading, for this long (default 10)")
      ->default_str("10")
      ->check(CLI::PositiveNumber);
}

std::vector<std::string> ReadServingArgs(const ReadServingOptions& options) {
  std::vector<std::string> args{
      "--listen",
      options.listen.host,
      "--query-timeout-s",
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(options.limits.timeout).count()),
      "--max-result-mb",
      std::to_string(options.limits.max_result_bytes >> 20)};
  auto add = [&](const char* flag, const std::string& value) {
    if (!value.empty()) args.insert(args.end(), {flag, value});
  };
  add("--advertise-host", options.listen.advertise_host);
  add("--token-file", options.listen.token_file.string());
  add("--tls-cert", options.listen.tls_cert.string());
  add("--tls-key", options.listen.tls_key.string());
  add("--query-memory-limit", options.memory_limit);
  const HttpLimits& http = options.http;
  args.insert(args.end(),
              {"--http-max-body-mb", std::to_string(http.max_body_bytes >> 20),
               "--http-max-connections", std::to_string(http.max_connections),
               "--http-max-streams-per-client", std::to_string(http.max_streams_per_client),
               "--http-io-timeout-s", std::to_string(http.io_timeout.count())});
  return args;
}

void AddNoteStreamOptions(CLI::App& command, NoteStreamOptions& options) {
  command
      .add_option_function<int64_t>(
          "--notes-max-age-h",
          [&options](int64_t hours) { options.max_age = std::chrono::hours(hours); },
          "keep outcomes, result pages and version notices replayable (watch --since, waits "
          "across restarts) for this many hours (default 168: 7 days)")
      ->default_str("168")
      ->check(CLI::PositiveNumber);
  command
      .add_option_function<int64_t>(
          "--notes-max-mb", [&options](int64_t mb) { options.max_bytes = mb << 20; },
          "bound the kept notifications to this many MiB on the NATS server's disk, the oldest "
          "going first (default 1024)")
      ->default_str("1024")
      ->check(CLI::PositiveNumber);
}

std::vector<std::string> NatsAuthArgs(const NatsClientOptions& options) {
  std::vector<std::string> args;
  auto add = [&](const char* flag, const std::string& value) {
    if (!value.empty()) args.insert(args.end(), {flag, value});
  };
  add("--nats-token", options.token);
  add("--nats-token-file", options.token_file);
  add("--nats-user", options.user);
  add("--nats-password", options.password);
  add("--nats-password-file", options.password_file);
  add("--nats-creds", options.creds_file);
  add("--nats-nkey", options.nkey);
  add("--nats-nkey-seed", options.nkey_seed_file);
  add("--nats-tls-ca", options.tls_ca_file);
  add("--nats-tls-cert", options.tls_cert_file);
  add("--nats-tls-key", options.tls_key_file);
  return args;
}

std::vector<std::string> NoteStreamArgs(const NoteStreamOptions& options) {
  return {"--notes-max-age-h",
          std::to_string(std::chrono::duration_cast<std::chrono::hours>(options.max_age).count()),
          "--notes-max-mb", std::to_string(options.max_bytes >> 20)};
}

void AddLogOptions(CLI::App& command, LogOptions& options) {
  command
      .add_option("--log-level", options.level,
                  "trace, debug, info (default), warning, error, critical or off")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, spdlog::level::level_enum>{{"trace", spdlog::level::trace},
                                                           {"debug", spdlog::level::debug},
                                                           {"info", spdlog::level::info},
                                                           {"warning", spdlog::level::warn},
                                                           {"warn", spdlog::level::warn},
                                                           {"error", spdlog::level::err},
                                                           {"critical", spdlog::level::critical},
                                                           {"off", spdlog::level::off}},
          CLI::ignore_case))
      ->default_str("info");
  command
      .add_option("--log-format", options.format,
                  "text (default) or json: one JSON object a line, with the model and request "
                  "id where the line names them")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, LogFormat>{{"text", LogFormat::kText}, {"json", LogFormat::kJson}},
          CLI::ignore_case))
      ->default_str("text");
  command.add_option("--log-file", options.file,
                     "write the log to this file, rotated by size, instead of stderr");
  command
      .add_option_function<int64_t>(
          "--log-max-mb", [&options](int64_t mb) { options.max_bytes = mb << 20; },
          "rotate a log file once it passes this many MiB (--log-file, and the files serve "
          "writes for its managers)")
      ->default_str("64")
      ->check(CLI::PositiveNumber);
  command.add_option("--log-keep", options.keep, "rotated log files kept besides the current one")
      ->default_str("5")
      ->check(CLI::Range(1, 1000));
}

std::vector<std::string> LogArgs(const LogOptions& options) {
  const auto level = spdlog::level::to_string_view(options.level);
  return {"--log-level",  std::string(level.data(), level.size()),
          "--log-format", options.format == LogFormat::kJson ? "json" : "text",
          "--log-max-mb", std::to_string(options.max_bytes >> 20),
          "--log-keep",   std::to_string(options.keep)};
}

void AddReadClientOptions(CLI::App& command, ReadClientOptions& options) {
  command.add_option("--url", options.url,
                     "read server, e.g. grpc://host:8815 (default: the `teatree serve` of "
                     "--data-dir)");
  command.add_option("--token", options.token, "bearer token for a server with --token-file")
      ->envname("TEATREE_TOKEN");
  command.add_option("--tls-root", options.tls_root,
                     "PEM root certificate to trust (for a self-signed server)");
}

void AddOutputOption(CLI::App& command, OutputFormat& output, const std::string& hint) {
  command
      .add_option_function<std::string>(
          "--output",
          [&output](const std::string& name) {
            output = name == "json" ? OutputFormat::kJson : OutputFormat::kText;
          },
          "text (default): lines for people; json: JSON for scripts (docs/cli.md)")
      ->check(
          [hint](const std::string& name) -> std::string {
            if (name == "text" || name == "json") return "";
            return "text or json, not \"" + name + "\"" + hint;
          },
          "text|json");
}

}  // namespace teatree::cli
