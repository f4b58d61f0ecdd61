"""The Teatree client: submit requests over NATS JetStream, read over Arrow Flight."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import nats.errors
import nats.js.api
import nats.js.errors
import pyarrow as pa
from nats.aio.client import Client as NatsConnection

from ._closing import ClosesOnExit
from ._loop import LoopThread
from .codec import check_model, check_request_id, encode_request
from .errors import TeatreeError
from .notes import (
    NOTE_STREAM,
    Outcome,
    assemble_pages,
    note_subject,
    parse_note,
    request_note_subject,
)
from .reads import FlightReads, QueryResult

if TYPE_CHECKING:
    import polars
    from nats.aio.subscription import Subscription

REQUEST_STREAM = "TEATREE_REQ"
# The KV bucket of the models that exist (one key per model).
MODEL_BUCKET = "teatree_models"
#: Seconds `Client.connect` tries to reach the NATS server.
NATS_CONNECT_TIMEOUT = 5.0


# The largest request body the queue takes (bus/request_queue.h, max_body_bytes); larger
# rows are uploaded first.
MAX_REQUEST_BYTES = 8 << 20

# How long the server may wait for a min_version (read/read_ticket.h, kMaxVersionWait).
MAX_WAIT_MS = 30_000


def _version_wanted(min_version: int | None, wait_ms: int | None) -> dict[str, int]:
    """The ticket or action fields of a read that waits for `min_version`."""
    if min_version is None:
        if wait_ms is not None:
            raise TeatreeError("wait_ms needs min_version")
        return {}
    fields = {"min_version": min_version}
    if wait_ms is not None:
        fields["wait_ms"] = wait_ms
    return fields


def _served_urls(data_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """What `teatree serve` wrote into `<data_dir>/serve.json` (empty if there is none)."""
    if data_dir is None:
        return {}
    try:
        served = json.loads((Path(data_dir) / "serve.json").read_text())
    except (OSError, ValueError):
        return {}
    return served if isinstance(served, dict) else {}


def _read_pem(tls_root_certs: bytes | str | os.PathLike[str] | None) -> bytes | None:
    if tls_root_certs is None or isinstance(tls_root_certs, bytes):
        return tls_root_certs
    try:
        return Path(tls_root_certs).read_bytes()
    except OSError as error:
        raise TeatreeError(
            f"cannot read the TLS root certificates {tls_root_certs}: {error}"
        ) from error


class Client(ClosesOnExit):
    """A connection to a Teatree server. Make one with `Client.connect`.

    Writes are requests submitted to the queue (NATS JetStream); their outcomes and the
    model's notifications come back over NATS. Reads go to the Arrow Flight read server.

    nats-py is asyncio-only: the client runs its own event loop in a background thread and
    every method blocks until done, so it needs no `await` and works beside any other event
    loop. One client may be used from several threads. Close it (or use `with`) when done.
    """

    def __init__(
        self,
        nats_url: str | None,
        reads: FlightReads | None,
        model: str | None,
        nats_options: Mapping[str, Any],
    ) -> None:
        """Use `Client.connect` instead."""
        self.nats_url = nats_url
        self.model = model
        self._reads = reads
        self._loop = LoopThread()
        self._nats: NatsConnection | None = None
        self._known_models: set[str] = set()  # Seen to exist (models are never removed).
        if nats_url is not None:
            try:
                self._nats = self._loop.run(self._connect_nats(nats_url, nats_options))
            except BaseException:
                self.close()
                raise

    @classmethod
    def connect(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        nats_url: str | None = None,
        flight_url: str | None = None,
        token: str | None = None,
        tls_root_certs: bytes | str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        nats_options: Mapping[str, Any] | None = None,
    ) -> Client:
        """Connects to a Teatree server.

        Args:
            data_dir: the data directory of a running `teatree serve`; the URLs not given
                are read from its `serve.json`.
            nats_url: the NATS server taking requests, e.g. `nats://127.0.0.1:4222`.
            flight_url: the Arrow Flight read server, e.g. `grpc://127.0.0.1:8815` or
                `grpc+tls://…`.
            token: a bearer token from the server's `--token-file`, sent on every read.
            tls_root_certs: PEM root certificates (bytes, or a file path) to trust for
                `grpc+tls` read servers.
            model: the model of submitted requests that name none.
            nats_options: more keyword arguments for `nats.connect` (credentials, TLS).

        A client with only one of the two URLs can only write or only read.
        """
        served = _served_urls(data_dir)
        nats_url = nats_url or served.get("nats_url")
        flight_url = flight_url or served.get("flight_url")
        if nats_url is None and flight_url is None:
            where = f"{Path(data_dir) / 'serve.json'} is missing" if data_dir else "no data_dir"
            raise TeatreeError(
                f"no Teatree server to connect to ({where}): start one with "
                "`teatree serve --data-dir DIR` and pass data_dir=DIR, or give nats_url "
                "and flight_url"
            )
        if model is not None:
            check_model(model)
        reads = FlightReads(flight_url, token, _read_pem(tls_root_certs)) if flight_url else None
        return cls(nats_url, reads, model, nats_options or {})

    # -- Lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the NATS and Flight connections and stops the event loop; idempotent."""
        if self._nats is not None:
            nats_connection, self._nats = self._nats, None
            with contextlib.suppress(Exception):  # Closing anyway.
                self._loop.run(nats_connection.close())
        if self._reads is not None:
            self._reads.close()
            self._reads = None
        self._loop.close()


    # -- Requests -------------------------------------------------------------------------

    def submit(self, request: Mapping[str, Any]) -> str:
        """Submits a request and returns its request_id once JetStream has stored it.

        `request` is a dict as in docs/requests.md, e.g. `{"op": "append", "table":
        "orders", "rows": [[1, 9.5, "eu"]]}`. Missing `model` is the client's `model`;
        missing `request_id` is a random one. Rows may be a list of lists or of dicts, or a
        pyarrow Table / polars DataFrame (sent as Arrow IPC). From the return on the request
        is not lost; submitting the same request_id again never applies it twice.
        """
        model, request_id, body = self._encode(request)
        self._loop.run(self._publish(model, request_id, body))
        return request_id

    def upload(self, model: str, source: str | os.PathLike[str] | bytes | BinaryIO) -> str:
        """Uploads a file (a path, bytes or a binary file object: Parquet, CSV, Arrow IPC or
        JSON rows) into the model's staging area and returns its id, for a request's
        `"source": {"format": "parquet", "staged": id}`. The server removes the upload once
        that request is applied, or after a day if no request names it."""
        reads = self._flight()
        model = check_model(model)
        if isinstance(source, (bytes, bytearray, memoryview)):
            staged = reads.upload(model, io.BytesIO(bytes(source)))
        elif isinstance(source, (str, os.PathLike)):
            try:
                with open(source, "rb") as file:
                    staged = reads.upload(model, file)
            except OSError as error:
                raise TeatreeError(f"cannot read the file to upload: {error}") from error
        else:
            staged = reads.upload(model, source)
        return str(staged["staged"])

    def _encode(self, request: Mapping[str, Any]) -> tuple[str, str, bytes]:
        """(model, request_id, body) of `request`; rows too large for the queue are uploaded
        first and the request names the upload (`source.staged`)."""
        model, request_id, body = encode_request(request, self.model)
        if len(body) <= MAX_REQUEST_BYTES:
            return model, request_id, body
        message = json.loads(body)
        if "rows_ipc" in message:
            payload, source_format = base64.b64decode(message.pop("rows_ipc")), "arrow"
        elif "rows" in message:
            payload, source_format = json.dumps(message.pop("rows")).encode(), "json"
        else:
            raise TeatreeError(
                f"request {request_id} is {len(body)} bytes, over the {MAX_REQUEST_BYTES} the "
                "queue takes: only rows are uploaded by themselves; make it smaller"
            )
        message["source"] = {"format": source_format, "staged": self.upload(model, payload)}
        return model, request_id, json.dumps(message, separators=(",", ":")).encode()

    def wait(self, model: str, request_id: str, timeout: float = 60) -> Outcome:
        """Waits for the outcome of a submitted request, however long ago it was submitted
        (within the hour the server keeps notifications).

        Returns the Outcome, applied or rejected (`Outcome.check()` raises on the latter);
        raises TeatreeError when none arrives within `timeout` seconds.
        """
        subject = request_note_subject(check_model(model), check_request_id(request_id))

        async def replay_and_collect() -> Outcome:
            subscription = await self._replay(subject)
            try:
                return await self._collect(subscription, model, request_id, timeout)
            finally:
                await _unsubscribe(subscription)

        return self._loop.run(replay_and_collect())

    def submit_and_wait(
        self, request: Mapping[str, Any], timeout: float = 60, wait: str = "applied"
    ) -> Outcome:
        """Submits a request (as `submit`) and waits for its outcome (as `wait`).

        With `wait="published"` it then waits, within the same `timeout`, until the version
        of an applied request is published (readable from version files: pulls, replicas)
        and puts that version in the outcome's `published_version`.
        """
        if wait not in ("applied", "published"):
            raise TeatreeError(f'wait is "applied" or "published", not {wait!r}')
        deadline = time.monotonic() + timeout
        outcome = self._submit_and_collect(request, timeout)
        if wait == "published" and outcome.applied and outcome.version is not None:
            model = outcome.note.get("model") or self.model or ""
            published = self._wait_published(model, outcome.version, deadline)
            outcome = dataclasses.replace(outcome, published_version=published)
        return outcome

    def _wait_published(self, model: str, version: int, deadline: float) -> int:
        """The newest published version once it is `version` or newer; the server waits on
        its notifications, at most MAX_WAIT_MS a call."""
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                files = self.versions(
                    model, min_version=version, wait_ms=min(left_ms, MAX_WAIT_MS)
                )
                if files and files[-1]["version"] >= version:
                    return files[-1]["version"]
            except TeatreeError as error:
                if time.monotonic() >= deadline or "has no version" not in str(error):
                    raise
            if time.monotonic() >= deadline:
                raise TeatreeError(f"version {version} of model {model} was not published in time")

    def _submit_and_collect(self, request: Mapping[str, Any], timeout: float) -> Outcome:
        model, request_id, body = self._encode(request)

        async def submit_and_collect() -> Outcome | None:
            # Listening before submitting cannot miss the outcome.
            connection = self._connection()
            subscription = await connection.subscribe(request_note_subject(model, request_id))
            try:
                if await self._publish(model, request_id, body):
                    return None  # Stored before: its outcome may be out already.
                return await self._collect(subscription, model, request_id, timeout)
            finally:
                await _unsubscribe(subscription)

        outcome = self._loop.run(submit_and_collect())
        return outcome if outcome is not None else self.wait(model, request_id, timeout)

    def watch(self, model: str, timeout: float | None = None) -> Watch:
        """Follows a model's notifications from now on: an iterator of dicts, each an
        outcome (`{"type": "outcome", ...}`) or `{"type": "version_published", "model",
        "version"}`.

        With `timeout`, iteration ends after that many seconds without a notification.
        The subscription is in place when `watch` returns; close it (or use `with`).
        """
        subject = note_subject(check_model(model))
        subscription = self._loop.run(self._connection().subscribe(subject))
        return Watch(self._loop, subscription, timeout)

    # -- Reads ----------------------------------------------------------------------------

    def query(
        self,
        model: str,
        sql: str | None = None,
        function: str | None = None,
        args: Mapping[str, Any] | None = None,
        at_version: int | None = None,
        min_version: int | None = None,
        wait_ms: int | None = None,
    ) -> QueryResult:
        """Runs one read-only SELECT (`sql`) or a read function (`function` with `args`) on
        a model and returns its rows (`.table`, a pyarrow Table) with the version they were
        read at (`.version`).

        Without `at_version` the read sees the newest committed data (at the model's
        manager when it runs); with it, that published version. A statement other than a
        SELECT, or a read the server refuses, raises TeatreeError with the server's reason.
        With `min_version` (an outcome's `version`) the server first waits, at most `wait_ms`
        (default 10 000, at most 30 000), until the read sees that version or a newer one:
        read your writes. Past it TeatreeError says which version the server has.
        """
        if (sql is None) == (function is None):
            raise TeatreeError("give either sql or function")
        ticket: dict[str, Any] = {"model": check_model(model)}
        if sql is not None:
            ticket["sql"] = sql
        else:
            ticket["function"] = function
            ticket["args"] = dict(args or {})
        if at_version is not None:
            ticket["at_version"] = at_version
        ticket.update(_version_wanted(min_version, wait_ms))
        return self._flight().query(ticket)

    def query_polars(
        self,
        model: str,
        sql: str | None = None,
        function: str | None = None,
        args: Mapping[str, Any] | None = None,
        at_version: int | None = None,
        min_version: int | None = None,
        wait_ms: int | None = None,
    ) -> polars.DataFrame:
        """`query`, returning a polars DataFrame (needs the `polars` extra)."""
        return self.query(
            model, sql, function, args, at_version, min_version, wait_ms
        ).to_polars()

    def tables(self, model: str) -> dict[str, int]:
        """The model's tables with their row counts, in its newest published version."""
        return self._flight().tables(check_model(model))

    def versions(
        self, model: str, min_version: int | None = None, wait_ms: int | None = None
    ) -> list[dict[str, int]]:
        """The model's retained version files: `[{"version": N, "bytes": B}, ...]`; with
        `min_version`, once one that new is published (as in `query`)."""
        return self._flight().versions(check_model(model), _version_wanted(min_version, wait_ms))

    def pull(
        self,
        model: str,
        output: str | os.PathLike[str],
        version: int | None = None,
        min_version: int | None = None,
        wait_ms: int | None = None,
    ) -> dict[str, Any]:
        """Downloads a version file (the newest when `version` is None) to `output`, a
        DuckDB file any DuckDB opens read-only. Its size and SHA-256 are checked before it
        replaces `output`. Returns `{"model", "version", "bytes", "sha256"}`. With
        `min_version`, the server first waits until a version that new is published (as in
        `query`).
        """
        return self._flight().pull(
            check_model(model), output, version, _version_wanted(min_version, wait_ms)
        )

    # -- Internals ------------------------------------------------------------------------

    def _flight(self) -> FlightReads:
        if self._loop.closed:
            raise TeatreeError("the client is closed")
        if self._reads is None:
            raise TeatreeError(
                "this client has no read server: give flight_url, or the data_dir of a "
                "running teatree serve"
            )
        return self._reads

    def _connection(self) -> NatsConnection:
        if self._loop.closed:
            raise TeatreeError("the client is closed")
        if self._nats is None:
            raise TeatreeError(
                "this client has no NATS server: give nats_url, or the data_dir of a "
                "running teatree serve"
            )
        return self._nats

    @staticmethod
    async def _connect_nats(url: str, options: Mapping[str, Any]) -> NatsConnection:
        """Connects, giving up after NATS_CONNECT_TIMEOUT seconds (nats-py alone would keep
        trying for minutes); once connected, nats-py reconnects as it does by default."""
        last_error: list[Exception] = []

        async def remember(error: Exception) -> None:
            """Connection trouble shows as errors of the calls that meet it."""
            last_error[:] = [error]

        connection = NatsConnection()
        try:
            await asyncio.wait_for(
                connection.connect(url, **{"error_cb": remember, **options}),
                NATS_CONNECT_TIMEOUT,
            )
        except Exception as error:
            with contextlib.suppress(Exception):
                await connection.close()
            cause = last_error[0] if last_error else error
            raise TeatreeError(f"cannot connect to NATS at {url}: {cause!r}") from error
        return connection

    async def _admit(self, model: str, body: bytes) -> None:
        """Refuses a request for a model that does not exist, unless it is a create_table,
        which creates the model (as the server's own clients do)."""
        if model in self._known_models:
            return  # Models are never removed: asked once per model.
        request = json.loads(body.split(b"\0", 1)[0])
        try:
            models = await self._connection().jetstream().key_value(MODEL_BUCKET)
            if request.get("op") == "create_table":
                try:
                    await models.create(model, (request.get("engine") or "duckdb").encode())
                except nats.js.errors.KeyWrongLastSequenceError:
                    pass  # It exists already.
            else:
                await models.get(model)
            self._known_models.add(model)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.BucketNotFoundError) as error:
            raise TeatreeError(
                f"model {model} does not exist: create it with `teatree model create --model "
                f"{model}` or submit a create_table first"
            ) from error
        except nats.js.errors.APIError as error:
            raise TeatreeError(f"cannot submit to model {model}: {error.description}") from error

    async def _publish(self, model: str, request_id: str, body: bytes) -> bool:
        """Publishes a request; True if JetStream had stored it already (a duplicate)."""
        await self._admit(model, body)
        subject = f"teatree.req.{model}"
        what = f"request {request_id} for model {model}"
        try:
            ack = (
                await self._connection()
                .jetstream()
                .publish(
                    subject,
                    body,
                    stream=REQUEST_STREAM,
                    headers={"Nats-Msg-Id": f"{model}/{request_id}"},
                )
            )
        except nats.js.errors.NoStreamResponseError as error:
            raise TeatreeError(
                f"no JetStream stream takes {subject}: is teatree serve running at {self.nats_url}?"
            ) from error
        except nats.errors.TimeoutError as error:
            raise TeatreeError(
                f"JetStream did not acknowledge {what} in time: it may or may not be stored; "
                "submit it again with the same request_id (duplicates are dropped)"
            ) from error
        except nats.js.errors.APIError as error:
            raise TeatreeError(f"cannot submit {what}: {error.description}") from error
        except nats.errors.Error as error:
            raise TeatreeError(f"cannot submit {what}: {error!r}") from error
        return bool(ack.duplicate)

    async def _replay(self, subject: str) -> Subscription:
        """A subscription to what the note stream holds on `subject`, then live messages."""
        try:
            return (
                await self._connection()
                .jetstream()
                .subscribe(
                    subject,
                    stream=NOTE_STREAM,
                    ordered_consumer=True,
                    deliver_policy=nats.js.api.DeliverPolicy.ALL,
                )
            )
        except nats.errors.Error as error:
            raise TeatreeError(
                f"cannot replay notifications of {subject} (is the stream {NOTE_STREAM} "
                f"there? teatree serve makes it): {error!r}"
            ) from error

    @staticmethod
    async def _collect(
        subscription: Subscription, model: str, request_id: str, timeout: float
    ) -> Outcome:
        """Reads a request's result pages and outcome from its subscription."""
        pages: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                message = await subscription.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                break
            except nats.errors.Error as error:
                raise TeatreeError(
                    f"lost the notifications of request {request_id} of model {model}: {error!r}"
                ) from error
            note = parse_note(message.data)
            if note is None:
                continue
            if note.get("type") == "page":
                pages.append(note)
            elif note.get("type") == "outcome":
                result: pa.Table | None = None
                if note.get("pages", 0) > 0:
                    result = assemble_pages(pages)
                return Outcome(note, result)
        raise TeatreeError(
            f"no outcome for request {request_id} of model {model} within {timeout:g} s: is a "
            "manager running for it (teatree status)? The request is queued and will be "
            "applied when one is"
        )


async def _unsubscribe(subscription: Subscription) -> None:
    """Ends a subscription; one whose connection is closed has ended already."""
    with contextlib.suppress(nats.errors.Error):
        await subscription.unsubscribe()


class Watch(Iterator[dict[str, Any]], ClosesOnExit):
    """Notifications of one model as they come; see `Client.watch`."""

    def __init__(self, loop: LoopThread, subscription: Subscription, timeout: float | None) -> None:
        self._loop = loop
        self._subscription: Subscription | None = subscription
        self._timeout = timeout

    def __next__(self) -> dict[str, Any]:
        while self._subscription is not None:
            try:
                message = self._loop.run(self._subscription.next_msg(timeout=self._timeout))
            except nats.errors.TimeoutError:
                break
            except nats.errors.Error as error:
                raise TeatreeError(f"cannot receive a notification: {error!r}") from error
            note = parse_note(message.data)
            if note is not None:
                return note
        raise StopIteration

    def close(self) -> None:
        """Ends the subscription; idempotent."""
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            if not self._loop.closed:  # Else it ended with the client.
                self._loop.run(_unsubscribe(subscription))
