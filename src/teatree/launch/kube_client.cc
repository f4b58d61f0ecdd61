#include "teatree/launch/kube_client.h"

#include <arrow/util/uri.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <mutex>
#include <set>

#include "teatree/common/json_text.h"

namespace teatree {
namespace {

using Json = nlohmann::json;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioDeleter> PemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

/// An X509 store holding every certificate of `pem`.
Result<X509_STORE*> StoreOf(const std::string& pem) {
  auto bio = PemBio(pem);
  X509_STORE* store = X509_STORE_new();
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    ++added;
  }
  if (added == 0) {
    X509_STORE_free(store);
    return Status::Invalid("the Kubernetes CA certificate is not PEM");
  }
  return store;
}

/// The API server's Status object (or body) as an error of the matching kind.
Status ApiError(const std::string& what, int http_status, const std::string& body) {
  auto json = ParseJson(body, "the API server's answer").ValueOr(Json());
  std::string message = json.is_object() ? json.value("message", "") : "";
  if (message.empty()) message = body.substr(0, 300);
  const std::string text = what + ": " + std::to_string(http_status) + " " + message;
  switch (http_status) {
    case 404:
      return Status::KeyError(text);
    case 409:
      return Status::AlreadyExists(text);
    case 401:
    case 403:
      return Status::IOError(text, " (check the service account's Role: docs/deploy.md)");
    default:
      return Status::IOError(text);
  }
}

}  // namespace

struct KubeClient::Impl {
  KubeConfig config;
  std::string host;
  int port = 443;

  // State below is protected by watches_mutex: the connections of the watches in progress.
  std::mutex watches_mutex;
  std::set<httplib::SSLClient*> watches;

  /// A new connection with this client's credentials.
  Result<std::unique_ptr<httplib::SSLClient>> Connect(std::chrono::seconds read_timeout) const {
    std::unique_ptr<httplib::SSLClient> client;
    if (!config.client_cert_pem.empty()) {
      auto cert_bio = PemBio(config.client_cert_pem);
      auto key_bio = PemBio(config.client_key_pem);
      std::unique_ptr<X509, X509Deleter> cert(
          PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
      std::unique_ptr<EVP_PKEY, KeyDeleter> key(
          PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
      if (!cert || !key)
        return Status::Invalid("the kubeconfig's client certificate or key is not PEM");
      client = std::make_unique<httplib::SSLClient>(host, port, cert.get(), key.get());
    } else {
      client = std::make_unique<httplib::SSLClient>(host, port);
    }
    if (!config.ca_pem.empty()) {
      ARROW_ASSIGN_OR_RAISE(X509_STORE * store, StoreOf(config.ca_pem));
      client->set_ca_cert_store(store);  // The client owns it from here.
    }
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(std::chrono::seconds(10));
    client->set_read_timeout(read_timeout);
    client->set_write_timeout(std::chrono::seconds(30));
    ARROW_ASSIGN_OR_RAISE(std::string token, config.BearerToken());
    if (!token.empty()) client->set_bearer_token_auth(token);
    return client;
  }

  Result<Json> Call(const std::string& method, const std::string& path, const Json* body,
                    const std::string& content_type = "application/json") const {
    ARROW_ASSIGN_OR_RAISE(auto client, Connect(std::chrono::seconds(30)));
    const std::string text = body ? body->dump() : "";
    httplib::Result result = method == "GET"     ? client->Get(path)
                             : method == "POST"  ? client->Post(path, text, content_type)
                             : method == "PATCH" ? client->Patch(path, text, content_type)
                                                 : client->Delete(path, text, "application/json");
    const std::string what = method + " " + path;
    if (!result) {
      return Status::IOError(what, ": cannot reach the Kubernetes API at ", config.server, " (",
                             httplib::to_string(result.error()), ")");
    }
    if (result->status < 200 || result->status >= 300) {
      return ApiError(what, result->status, result->body);
    }
    return ParseJson(result->body, "the API server's answer");
  }
};

KubeClient::KubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeClient::~KubeClient() = default;

Result<std::unique_ptr<KubeClient>> KubeClient::Make(KubeConfig config) {
  arrow::util::Uri uri;
  ARROW_RETURN_NOT_OK(uri.Parse(config.server));
  if (uri.scheme() != "https") {
    return Status::Invalid("the Kubernetes API server ", config.server, " is not an https:// URL");
  }
  auto impl = std::make_unique<Impl>();
  impl->host = uri.host();
  impl->port = uri.port() > 0 ? uri.port() : 443;
  impl->config = std::move(config);
  return std::unique_ptr<KubeClient>(new KubeClient(std::move(impl)));
}

const KubeConfig& KubeClient::config() const { return impl_->config; }

void KubeClient::CancelWatches() {
  std::lock_guard lock(impl_->watches_mutex);
  for (auto* client : impl_->watches) client->stop();
}

std::string KubeClient::Path(const std::string& resource, const std::string& name) const {
  std::string path = "/api/v1/namespaces/" + impl_->config.name_space + "/" + resource;
  if (!name.empty()) path += "/" + name;
  return path;
}

Result<Json> KubeClient::Get(const std::string& path) { return impl_->Call("GET", path, nullptr); }

Result<Json> KubeClient::Create(const std::string& path, const Json& object) {
  return impl_->Call("POST", path, &object);
}

Result<Json> KubeClient::Patch(const std::string& path, const Json& patch) {
  return impl_->Call("PATCH", path, &patch, "application/merge-patch+json");
}

Status KubeClient::Delete(const std::string& path, int grace_period_seconds) {
  Json options{
      {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
  if (grace_period_seconds >= 0) options["gracePeriodSeconds"] = grace_period_seconds;
  auto deleted = impl_->Call("DELETE", path, &options);
  if (!deleted.ok() && !deleted.status().IsKeyError()) return deleted.status();
  return Status::OK();
}

Status KubeClient::Watch(const std::string& path, const std::string& resource_version,
                         int timeout_seconds, const std::function<bool(const Json&)>& on_event,
                         const std::atomic<bool>& stop) {
  ARROW_ASSIGN_OR_RAISE(auto client, impl_->Connect(std::chrono::seconds(timeout_seconds + 15)));
  {
    std::lock_guard lock(impl_->watches_mutex);
    impl_->watches.insert(client.get());
  }
  struct Unregister {
    Impl& impl;
    httplib::SSLClient* client;
    ~Unregister() {
      std::lock_guard lock(impl.watches_mutex);
      impl.watches.erase(client);
    }
  } unregister{*impl_, client.get()};
  if (stop) return Status::OK();  // Cancelled before it was registered.
  std::string url =
      path + (path.find('?') == std::string::npos ? "?" : "&") +
      "watch=1&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout_seconds);
  if (!resource_version.empty()) url += "&resourceVersion=" + resource_version;
  std::string pending;
  Status failed;
  int http_status = 0;
  std::string error_body;
  auto result = client->Get(
      url,
      [&](const httplib::Response& response) {
        http_status = response.status;
        return true;
      },
      [&](const char* data, size_t size) {
        if (stop) return false;
        if (http_status < 200 || http_status >= 300) {
          error_body.append(data, size);
          return true;
        }
        pending.append(data, size);
        for (size_t end; (end = pending.find('\n')) != std::string::npos;) {
          const std::string line = pending.substr(0, end);
          pending.erase(0, end + 1);
          if (line.empty()) continue;
          auto event = ParseJson(line, "a watch event");
          if (!event.ok()) {
            failed = event.status();
            return false;
          }
          if (event->value("type", "") == "ERROR") {
            const Json& object = (*event)["object"];
            failed = Status::IOError("watch ", path, ": ", object.value("code", 0), " ",
                                     object.value("message", ""));
            return false;
          }
          if (!on_event(*event)) return false;
        }
        return true;
      });
  if (!failed.ok()) return failed;
  if (http_status != 0 && (http_status < 200 || http_status >= 300)) {
    return ApiError("watch " + path, http_status, error_body);
  }
  if (!result && !stop && result.error() != httplib::Error::Canceled) {
    return Status::IOError("watch ", path, ": ", httplib::to_string(result.error()));
  }
  return Status::OK();
}

}  // namespace teatree
