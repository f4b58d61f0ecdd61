#include "teatree/cli/options.h"

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
}

void AddNatsOptions(CLI::App& command, NatsClientOptions& options) {
  command.add_option("--nats", options.url,
                     "NATS server URL, e.g. nats://host:4222 (default: the one `teatree serve` "
                     "runs for --data-dir)");
  command.add_option("--nats-token", options.token, "NATS authentication token");
  command.add_option("--nats-user", options.user, "NATS user name");
  command.add_option("--nats-password", options.password, "NATS password");
  command.add_option("--nats-nkey", options.nkey, "NATS NKey public key (U...)");
  command.add_option("--nats-nkey-seed", options.nkey_seed_file, "file holding the NKey seed");
  command.add_option("--nats-tls-ca", options.tls_ca_file, "PEM CA file to verify the server");
  command.add_option("--nats-tls-cert", options.tls_cert_file, "PEM client certificate");
  command.add_option("--nats-tls-key", options.tls_key_file, "PEM client key");
}

}  // namespace teatree::cli
