#include "teatree/bus/nats_connection.h"

#include <nats/nats.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"

namespace teatree {
namespace {

using OptionsHandle = bus_internal::Handle<natsOptions, natsOptions_Destroy>;

std::vector<std::string_view> SplitUrls(std::string_view urls) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t comma = urls.find(',');
    std::string_view part = urls.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    parts.push_back(part);
    if (comma == std::string_view::npos) return parts;
    urls.remove_prefix(comma + 1);
  }
}

// nats.c accepts almost any string and only fails later with "no server available", so a
// typo like nats//host would read as an unreachable server. Check the shape first.
bool WellFormedUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "nats" && scheme != "tls") return false;
  std::string_view rest = url.substr(scheme_end + 3);
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  const std::string_view host = rest.substr(0, colon);
  if (host.empty() || host.find_first_of("/?# ") != std::string_view::npos) return false;
  if (colon == std::string_view::npos) return true;  // nats.c's default port 4222.
  const std::string_view port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return value >= 1 && value <= 65535;
}

// The URLs with any user:password@ replaced, for error messages.
std::string Redacted(std::string_view urls) {
  std::string out;
  for (std::string_view url : SplitUrls(urls)) {
    if (!out.empty()) out += ',';
    const size_t start = url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3;
    if (const size_t at = url.rfind('@'); at != std::string_view::npos && at >= start) {
      out += std::string(url.substr(0, start)) + "***" + std::string(url.substr(at));
    } else {
      out += url;
    }
  }
  return out;
}

Status ValidateUrls(const std::string& urls) {
  if (urls.empty()) {
    return Status::Invalid("no NATS URL given: use nats://host:port (or tls://host:port)");
  }
  for (std::string_view url : SplitUrls(urls)) {
    if (!WellFormedUrl(url)) {
      return Status::Invalid("NATS URL \"", Redacted(url),
                             "\" is malformed: use nats://host:port or tls://host:port (port "
                             "1-65535), comma-separated for several servers");
    }
  }
  return Status::OK();
}

bool UsesTls(const NatsClientOptions& options) {
  return options.tls || !options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
         options.url.find("tls://") != std::string::npos;
}

// nats.c reads the seed file only when it connects, and then reports a failed connection.
Status CheckReadable(const std::string& path, const std::string& what) {
  std::ifstream file(path);
  if (file) return Status::OK();
  return Status::IOError("cannot read the ", what, " ", path, ": ", std::strerror(errno),
                         "; check the path and its permissions");
}

Status ValidateCredentials(const NatsClientOptions& options) {
  const int methods = static_cast<int>(!options.token.empty()) +
                      static_cast<int>(!options.user.empty()) +
                      static_cast<int>(!options.nkey.empty() || !options.nkey_seed_file.empty());
  if (methods > 1) {
    return Status::Invalid(
        "NATS credentials conflict: give only one of a token, a user/password or an nkey");
  }
  if (!options.password.empty() && options.user.empty()) {
    return Status::Invalid("a NATS password was given without a user: set the user too");
  }
  if (options.nkey.empty() != options.nkey_seed_file.empty()) {
    return Status::Invalid(
        "NATS nkey authentication needs both the public key (U...) and the "
        "seed file; got only the ",
        options.nkey.empty() ? "seed file" : "public key");
  }
  if (!options.nkey_seed_file.empty()) {
    ARROW_RETURN_NOT_OK(CheckReadable(options.nkey_seed_file, "NATS nkey seed file"));
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Status::Invalid(
        "a TLS client certificate needs both the certificate and the key "
        "file; got only the ",
        options.tls_cert_file.empty() ? "key file" : "certificate file");
  }
  return Status::OK();
}

/// The first line of a file that holds a secret (without its line end).
Result<std::string> SecretFromFile(const std::string& path, const char* what) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Status::Invalid("cannot read the NATS ", what, " from ", path,
                           ": the file must exist, be readable and hold it on its first line");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Status ApplyCredentials(natsOptions* nats_options, const NatsClientOptions& options) {
  std::string token = options.token;
  if (token.empty() && !options.token_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(token, SecretFromFile(options.token_file, "token"));
  }
  if (!token.empty()) {
    ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetToken(nats_options, token.c_str()), "NATS token"));
  }
  std::string password = options.password;
  if (password.empty() && !options.password_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(password, SecretFromFile(options.password_file, "password"));
  }
  if (!options.user.empty()) {
    ARROW_RETURN_NOT_OK(
        FromNats(natsOptions_SetUserInfo(nats_options, options.user.c_str(), password.c_str()),
                 "NATS user/password"));
  }
  if (!options.creds_file.empty()) {
    ARROW_RETURN_NOT_OK(FromNats(
        natsOptions_SetUserCredentialsFromFiles(nats_options, options.creds_file.c_str(), nullptr),
        "NATS credentials file " + options.creds_file));
  }
  if (!options.nkey.empty()) {
    ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetNKeyFromSeed(nats_options, options.nkey.c_str(),
                                                             options.nkey_seed_file.c_str()),
                                 "NATS nkey seed file " + options.nkey_seed_file));
  }
  return Status::OK();
}

Status ApplyTls(natsOptions* nats_options, const NatsClientOptions& options) {
  if (!UsesTls(options)) return Status::OK();
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetSecure(nats_options, true),
                               "cannot enable TLS (is nats.c built with OpenSSL?)"));
  if (!options.tls_ca_file.empty()) {
    const std::string context =
        "cannot load TLS CA file " + options.tls_ca_file + " (it must exist and hold PEM)";
    ARROW_RETURN_NOT_OK(FromNats(
        natsOptions_LoadCATrustedCertificates(nats_options, options.tls_ca_file.c_str()), context));
  }
  if (!options.tls_cert_file.empty()) {
    const std::string context = "cannot load TLS client certificate " + options.tls_cert_file +
                                " with key " + options.tls_key_file +
                                " (both must exist, hold PEM and match)";
    ARROW_RETURN_NOT_OK(
        FromNats(natsOptions_LoadCertificatesChain(nats_options, options.tls_cert_file.c_str(),
                                                   options.tls_key_file.c_str()),
                 context));
  }
  return Status::OK();
}

Result<OptionsHandle> MakeNatsOptions(const NatsClientOptions& options) {
  natsOptions* raw = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_Create(&raw), "cannot create NATS options"));
  OptionsHandle nats_options(raw);
  const std::string context = "invalid NATS options for " + Redacted(options.url);
  // Several servers (a cluster) are given to nats.c one by one: it fails over between them.
  std::vector<std::string> urls;
  for (std::string_view url : SplitUrls(options.url)) urls.emplace_back(url);
  if (urls.size() > 1) {
    std::vector<const char*> servers;
    for (const auto& url : urls) servers.push_back(url.c_str());
    ARROW_RETURN_NOT_OK(FromNats(
        natsOptions_SetServers(raw, servers.data(), static_cast<int>(servers.size())), context));
  } else {
    ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetURL(raw, options.url.c_str()), context));
  }
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetName(raw, options.name.c_str()), context));
  ARROW_RETURN_NOT_OK(
      FromNats(natsOptions_SetTimeout(raw, options.connect_timeout.count()), context));
  ARROW_RETURN_NOT_OK(
      FromNats(natsOptions_SetMaxReconnect(raw, options.max_reconnect_attempts), context));
  ARROW_RETURN_NOT_OK(
      FromNats(natsOptions_SetReconnectWait(raw, options.reconnect_wait.count()), context));
  // Every publish, pull and ack goes out at once: nats.c otherwise leaves them to a flusher
  // thread that waits a millisecond for more, on every hop of a request's way.
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetSendAsap(raw, true), context));
  ARROW_RETURN_NOT_OK(ApplyCredentials(raw, options));
  ARROW_RETURN_NOT_OK(ApplyTls(raw, options));
  return nats_options;
}

Status ConnectError(natsStatus status, const NatsClientOptions& options) {
  Status error = FromNats(status, "cannot connect to NATS at " + Redacted(options.url));
  const std::string& message = error.message();
  if (status == NATS_NOT_PERMITTED || status == NATS_CONNECTION_AUTH_FAILED ||
      message.find("uthorization") != std::string::npos) {
    return error.WithMessage(message,
                             ": the server refused the credentials; check the token, "
                             "user/password or nkey");
  }
  if (status == NATS_NO_SERVER || status == NATS_TIMEOUT || status == NATS_IO_ERROR) {
    return error.WithMessage(message,
                             ": check that the server is running and the host and port are right");
  }
  if (status == NATS_SSL_ERROR || status == NATS_SECURE_CONNECTION_REQUIRED ||
      status == NATS_SECURE_CONNECTION_WANTED || UsesTls(options)) {
    return error.WithMessage(message,
                             ": TLS failed; check that both sides want TLS, the CA file and "
                             "the client certificate the server may require");
  }
  return error;
}

}  // namespace

Result<std::unique_ptr<NatsConnection>> NatsConnection::Connect(const NatsClientOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateUrls(options.url));
  ARROW_RETURN_NOT_OK(ValidateCredentials(options));
  if (options.stream_replicas < 1 || options.stream_replicas > 5) {
    return Status::Invalid("--stream-replicas ", options.stream_replicas,
                           " is out of range: JetStream keeps 1 to 5 copies of a stream (3 on a "
                           "3-node cluster)");
  }
  ARROW_ASSIGN_OR_RAISE(OptionsHandle nats_options, MakeNatsOptions(options));

  natsConnection* connection = nullptr;
  natsStatus status = natsConnection_Connect(&connection, nats_options.get());
  if (status != NATS_OK) return ConnectError(status, options);
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = options.request_timeout.count();
  jsCtx* jetstream = nullptr;
  status = natsConnection_JetStream(&jetstream, connection, &js_options);
  if (status != NATS_OK) {
    natsConnection_Destroy(connection);
    return FromNats(status, "cannot open JetStream context on " + Redacted(options.url));
  }
  return std::unique_ptr<NatsConnection>(
      new NatsConnection(connection, jetstream, options.request_timeout, options.stream_replicas));
}

NatsConnection::~NatsConnection() {
  jsCtx_Destroy(jetstream_);
  natsConnection_Destroy(connection_);
}

bool NatsConnection::connected() {
  return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
}

uint64_t NatsConnection::reconnects() {
  natsStatistics* stats = nullptr;
  if (natsStatistics_Create(&stats) != NATS_OK) return 0;
  uint64_t count = 0;
  if (natsConnection_GetStats(connection_, stats) == NATS_OK) {
    natsStatistics_GetCounts(stats, nullptr, nullptr, nullptr, nullptr, &count);
  }
  natsStatistics_Destroy(stats);
  return count;
}

}  // namespace teatree
