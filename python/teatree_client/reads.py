"""Reads over Arrow Flight (src/teatree/read/flight_read_server.h).

- A query is a ticket `{"model", "sql"}` or `{"model", "function", "args"}`, optionally with
  `"at_version"` and `"min_version"`/`"wait_ms"` (wait for a version, read your writes):
  GetFlightInfo on it as a command, then DoGet of the endpoint's ticket at the
  endpoint's location (the model's manager, for live reads) or, if there is none or it is
  gone, at the server asked. The schema metadata `teatree.version` holds the version read.
- ListFlights lists every table of every model: path `[model, table]`, total_records = rows.
- DoAction "versions" `{"model"}`: one JSON list `[{"version", "bytes"}, ...]`.
- DoAction "pull" `{"model", "version"?}`: a JSON header `{"model", "version", "bytes",
  "sha256"}`, then the version file in chunks.
- DoPut `{"upload": model}` (a command descriptor): the bytes of a file as metadata-only
  messages into the model's staging area; one PutResult back, `{"staged", "bytes"}`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.flight as flight

from .errors import TeatreeError

if TYPE_CHECKING:
    import polars

VERSION_METADATA_KEY = b"teatree.version"
# The size of the pieces an upload is sent in (read/uploads.h, kUploadChunkBytes).
UPLOAD_CHUNK_BYTES = 4 << 20

# What gRPC and Arrow add after the server's message.
_TRANSPORT_NOISE = re.compile(r"(\. gRPC client debug context:.*|\. Detail: \w+)$", re.DOTALL)


@dataclass(frozen=True)
class QueryResult:
    """A read's rows and the model version they were read at."""

    table: pa.Table
    version: int | None

    def to_polars(self) -> polars.DataFrame:
        """The rows as a polars DataFrame (needs the `polars` extra)."""
        import polars

        return polars.DataFrame(self.table)


@contextlib.contextmanager
def flight_errors(url: str) -> Iterator[None]:
    """Turns Arrow and Flight errors into TeatreeError with the server's message."""
    try:
        yield
    except flight.FlightUnavailableError as error:
        raise TeatreeError(f"cannot reach the read server at {url}: {_message(error)}") from error
    except (flight.FlightError, pa.ArrowException) as error:
        raise TeatreeError(_message(error)) from error


def _message(error: Exception) -> str:
    return _TRANSPORT_NOISE.sub("", str(error)).strip()


class FlightReads:
    """A connection to a Flight read server and to the managers its endpoints point at."""

    def __init__(self, url: str, token: str | None, tls_root_certs: bytes | None) -> None:
        self.url = url
        self._tls_root_certs = tls_root_certs
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self._options = flight.FlightCallOptions(headers=headers)
        self._clients: dict[str, flight.FlightClient] = {}

    def _client(self, url: str) -> flight.FlightClient:
        client = self._clients.get(url)
        if client is None:
            with flight_errors(url):
                extra = {"tls_root_certs": self._tls_root_certs} if self._tls_root_certs else {}
                client = flight.FlightClient(url, **extra)
            self._clients[url] = client
        return client

    def query(self, ticket: dict[str, Any]) -> QueryResult:
        """Runs a read ticket; see the module's docstring."""
        main = self._client(self.url)
        with flight_errors(self.url):
            descriptor = flight.FlightDescriptor.for_command(json.dumps(ticket))
            info = main.get_flight_info(descriptor, self._options)
            if not info.endpoints:
                raise TeatreeError(f"the read server at {self.url} returned no endpoint")
            endpoint = info.endpoints[0]
            table = None
            if endpoint.locations:
                live = endpoint.locations[0].uri.decode()
                with contextlib.suppress(flight.FlightUnavailableError):
                    # A manager gone since the server named it: the server answers instead.
                    table = self._client(live).do_get(endpoint.ticket, self._options).read_all()
            if table is None:
                table = main.do_get(endpoint.ticket, self._options).read_all()
        metadata = table.schema.metadata or {}
        version = metadata.get(VERSION_METADATA_KEY)
        return QueryResult(table.replace_schema_metadata(None), int(version) if version else None)

    def tables(self, model: str) -> dict[str, int]:
        """Table name -> row count for the model's newest published version."""
        with flight_errors(self.url):
            return {
                info.descriptor.path[1].decode(): info.total_records
                for info in self._client(self.url).list_flights(options=self._options)
                if len(info.descriptor.path) == 2 and info.descriptor.path[0].decode() == model
            }

    def upload(self, model: str, source: BinaryIO) -> dict[str, Any]:
        """Sends the bytes of `source` into the model's staging area; returns the server's
        answer, `{"staged": id, "bytes": N}`, once it has stored them durably."""
        descriptor = flight.FlightDescriptor.for_command(json.dumps({"upload": model}))
        sent = 0
        with flight_errors(self.url):
            writer, reader = self._client(self.url).do_put(descriptor, pa.schema([]), self._options)
            try:
                while chunk := source.read(UPLOAD_CHUNK_BYTES):
                    writer.write_metadata(pa.py_buffer(chunk))
                    sent += len(chunk)
                writer.done_writing()
                answer = reader.read()
            finally:
                writer.close()
        staged = json.loads(answer.to_pybytes()) if answer is not None else None
        if not isinstance(staged, dict) or staged.get("bytes") != sent:
            raise TeatreeError(f"the server at {self.url} did not confirm the upload: upload again")
        return staged

    def versions(self, model: str, wanted: dict[str, int] | None = None) -> list[dict[str, int]]:
        """The model's retained version files: `[{"version": N, "bytes": B}, ...]`; `wanted`
        ({"min_version", "wait_ms"?}) makes the server wait for a version that new."""
        with flight_errors(self.url):
            results = self._action("versions", {"model": model, **(wanted or {})})
            first = next(results, None)
        if first is None:
            raise TeatreeError(f"the read server at {self.url} sent no version list")
        versions: list[dict[str, int]] = json.loads(first.body.to_pybytes())
        return versions

    def pull(
        self,
        model: str,
        output: str | os.PathLike[str],
        version: int | None,
        wanted: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Downloads a version file to `output`, checked against its size and SHA-256.

        The file is written to `<output>.tmp` and renamed over `output` only once it checks
        out; on any failure the temporary file is removed. Returns the server's header.
        """
        body: dict[str, Any] = {"model": model, **(wanted or {})}
        if version is not None:
            body["version"] = version
        tmp = f"{os.fspath(output)}.tmp"
        try:
            with flight_errors(self.url):
                results = self._action("pull", body)
                first = next(results, None)
                header = json.loads(first.body.to_pybytes()) if first is not None else None
                if not isinstance(header, dict) or "sha256" not in header:
                    raise TeatreeError(f"the read server at {self.url} sent no valid pull header")
                digest, received = hashlib.sha256(), 0
                with open(tmp, "wb") as out:
                    for chunk in results:
                        out.write(chunk.body)
                        digest.update(chunk.body)
                        received += chunk.body.size
                    out.flush()
                    os.fsync(out.fileno())
            _check_download(header, received, digest.hexdigest())
            os.replace(tmp, output)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise
        return header

    def _action(self, name: str, body: dict[str, Any]) -> Iterator[flight.Result]:
        action = flight.Action(name, json.dumps(body).encode())
        return iter(self._client(self.url).do_action(action, self._options))

    def close(self) -> None:
        """Closes every connection."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _check_download(header: dict[str, Any], received: int, sha256: str) -> None:
    what = f"version {header.get('version')} of model {header.get('model')}"
    if received != header.get("bytes"):
        raise TeatreeError(f"pull of {what} ended after {received} of {header.get('bytes')} bytes")
    if sha256 != header["sha256"]:
        raise TeatreeError(
            f"{what} does not match its checksum (sha256 {sha256}, expected "
            f"{header['sha256']}): the download or its source is damaged"
        )
