"""A small Kubernetes API client for the test node agent (standard library only).

Token authentication over TLS with a given CA, JSON requests with timeouts, list-then-watch
informers that resume from the last resourceVersion, and Kubernetes quantities. Each call opens
its own connection, so one client is safe to share between threads.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import ssl
import sys
import threading
import traceback
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Callable, Iterator

_log_lock = threading.Lock()


def log(message: str) -> None:
    """Writes one timestamped line to stderr (the agent's log)."""
    stamp = datetime.datetime.now().isoformat(sep=" ", timespec="milliseconds")
    with _log_lock:
        sys.stderr.write(f"{stamp} node-agent: {message}\n")
        sys.stderr.flush()


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


class Kube:
    """Calls one API server as one user (bearer token)."""

    def __init__(self, server: str, token: str, ca_pem: str):
        self.server = server.rstrip("/")
        self._token = token
        context = ssl.create_default_context(cadata=ca_pem)
        # Loopback only: never route through a proxy from the environment.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))

    @classmethod
    def from_kubeconfig(cls, path: str) -> "Kube":
        """Reads the first server, CA and token of a kubeconfig such as kubernetes-testenv writes.

        This is a minimal reader, not a YAML parser: it expects one cluster and one user with
        token authentication, and the CA as certificate-authority-data or certificate-authority.
        """
        text = open(path, encoding="utf-8").read()

        def field(name: str) -> str | None:
            match = re.search(rf"^\s*{re.escape(name)}:\s*(\S+)\s*$", text, re.MULTILINE)
            return match.group(1).strip("\"'") if match else None

        server, token = field("server"), field("token")
        if not server or not token:
            raise ValueError(f"{path}: expected a server and a token (a kubeconfig with token auth)")
        if field("certificate-authority-data"):
            ca_pem = base64.b64decode(field("certificate-authority-data")).decode()
        elif field("certificate-authority"):
            ca_pem = open(field("certificate-authority"), encoding="utf-8").read()
        else:
            raise ValueError(f"{path}: expected certificate-authority-data or certificate-authority")
        return cls(server, token, ca_pem)

    def _request(self, method: str, path: str, body: object | None,
                 content_type: str) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        return urllib.request.Request(
            self.server + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                     "Content-Type": content_type})

    def call(self, method: str, path: str, body: object | None = None, *,
             content_type: str = "application/json", timeout: float = 15) -> dict:
        """Returns the decoded JSON answer; raises ApiError for an HTTP error status."""
        request = self._request(method, path, body, content_type)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, method, path,
                           error.read().decode(errors="replace")) from None

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def get_or_none(self, path: str) -> dict | None:
        try:
            return self.get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def merge_patch(self, path: str, patch: dict) -> dict:
        return self.call("PATCH", path, patch, content_type="application/merge-patch+json")

    def watch(self, path: str, resource_version: str, seconds: int = 60) -> Iterator[dict]:
        """Yields the events of one watch request (it ends after about `seconds`)."""
        query = urllib.parse.urlencode({
            "watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds)})
        request = self._request("GET", f"{path}?{query}", None, "application/json")
        try:
            with self._opener.open(request, timeout=seconds + 30) as response:
                for line in response:
                    if line.strip():
                        yield json.loads(line)
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, "WATCH", path,
                           error.read().decode(errors="replace")) from None


def run_informer(kube: Kube, path: str, handle: Callable[[str, dict], None],
                 on_list: Callable[[list[dict]], None], stop: threading.Event) -> None:
    """Lists `path`, then watches it from the list's resourceVersion, until `stop` is set.

    `on_list(items)` gets every full listing (at start and after any error, such as the
    410 Gone of an expired resourceVersion); `handle(type, object)` gets each watch event.
    An exception in a handler is logged and never ends the informer.
    """
    while not stop.is_set():
        try:
            listing = kube.get(path)
            resource_version = listing["metadata"]["resourceVersion"]
            _guarded(on_list, listing.get("items", []))
            while not stop.is_set():
                for event in kube.watch(path, resource_version):
                    if event["type"] == "ERROR":
                        raise ApiError(event["object"].get("code", 0), "WATCH", path,
                                       event["object"].get("message", ""))
                    resource_version = event["object"]["metadata"].get(
                        "resourceVersion", resource_version)
                    if event["type"] != "BOOKMARK":
                        _guarded(handle, event["type"], event["object"])
        except Exception as error:  # noqa: BLE001 - reconnect on any failure
            if not stop.is_set():
                log(f"watch of {path} failed, listing again in 1 s: {error}")
                stop.wait(1)


def _guarded(function: Callable, *args) -> None:
    try:
        function(*args)
    except Exception:  # noqa: BLE001 - one object's failure must not stop the agent
        log(f"handler failed:\n{traceback.format_exc()}")


_QUANTITY_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "": 1,
}


def parse_quantity(text: object) -> Fraction:
    """Parses a Kubernetes quantity ("500m", "2Gi", "1e3", "1.5") exactly."""
    value = str(text).strip()
    for suffix, factor in _QUANTITY_SUFFIXES.items():
        if suffix and not value.endswith(suffix):
            continue
        number = value[:len(value) - len(suffix)]
        try:
            return Fraction(Decimal(number)) * factor
        except (InvalidOperation, ValueError):
            continue
    raise ValueError(f"invalid quantity {text!r}")
