"""The Python client against a real `teatree serve` (see conftest.py)."""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
from conftest import running_serve

from teatree_client import Client, Outcome, TeatreeError

UTC = datetime.timezone.utc
ORDERS_SCHEMA = [
    {"name": "id", "type": "BIGINT"},
    {"name": "amount", "type": "DECIMAL(12,2)"},
    {"name": "at", "type": "TIMESTAMPTZ"},
    {"name": "tags", "type": "VARCHAR[]"},
    {"name": "note", "type": "VARCHAR"},
]
ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("amount", pa.decimal128(12, 2)),
        ("at", pa.timestamp("us", tz="UTC")),
        ("tags", pa.list_(pa.string())),
        ("note", pa.string()),
    ]
)
# Rows by id, as every read should return them.
EXPECTED = [
    (1, Decimal("12.50"), datetime.datetime(2026, 11, 23, 8, 0, tzinfo=UTC), ["a", "b"], "first"),
    (2, Decimal("0.05"), datetime.datetime(2026, 11, 23, 7, 30, tzinfo=UTC), [], None),
    (3, None, None, None, "nulls"),
    (4, Decimal("-3.75"), datetime.datetime(2026, 1, 1, tzinfo=UTC), ["x", None], None),
    (5, None, None, None, "arrow"),
    (
        6,
        Decimal("100.00"),
        datetime.datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
        ["p"],
        "polars",
    ),
]
COLUMNS = [field.name for field in ARROW_SCHEMA]


def as_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def wait_published(client: Client, model: str, version: int | None, timeout: float = 20) -> None:
    """Waits until the model's version file `version` (or a newer one) is published."""
    assert version is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(item["version"] >= version for item in client.versions(model)):
                return
        except TeatreeError:
            pass  # No version published yet.
        time.sleep(0.05)
    pytest.fail(f"version {version} of model {model} was not published within {timeout} s")


@pytest.fixture(scope="module")
def client(serve_dir: Path) -> Iterator[Client]:
    with Client.connect(serve_dir) as connected:
        yield connected


@pytest.fixture(scope="module")
def orders(client: Client) -> dict[str, Outcome]:
    """Model sales, table orders: rows 1-3 as JSON (published as their own version), then
    rows 4 and 5 as a pyarrow Table and row 6 as a polars DataFrame."""
    created = client.submit_and_wait(
        {
            "model": "sales",
            "op": "create_table",
            "table": "orders",
            "schema": ORDERS_SCHEMA,
            "primary_key": ["id"],
        }
    )
    json_rows = [
        [1, "12.50", "2026-11-23 08:00:00Z", ["a", "b"], "first"],
        [
            2,
            Decimal("0.05"),
            datetime.datetime(
                2026, 11, 23, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            [],
            None,
        ],
        [3, None, None, None, "nulls"],
    ]
    first = client.submit_and_wait(
        {"model": "sales", "op": "append", "table": "orders", "rows": json_rows}
    )
    wait_published(client, "sales", first.version)
    arrow_rows = pa.Table.from_pylist(as_dicts(EXPECTED[3:5]), schema=ARROW_SCHEMA)
    arrow = client.submit_and_wait(
        {"model": "sales", "op": "append", "table": "orders", "rows": arrow_rows}
    )
    frame = polars.from_arrow(pa.Table.from_pylist(as_dicts(EXPECTED[5:]), schema=ARROW_SCHEMA))
    last = client.submit_and_wait(
        {"model": "sales", "op": "upsert", "table": "orders", "rows": frame}
    )
    wait_published(client, "sales", last.version)
    return {"created": created, "first": first, "arrow": arrow, "last": last}


def test_requests_are_applied_in_new_versions(orders: dict[str, Outcome]) -> None:
    for outcome in orders.values():
        assert outcome.applied, outcome.note
        assert outcome.check() is outcome
    assert orders["created"].note["op"] == "create_table"
    assert [orders[name].note["rows"] for name in ("first", "arrow", "last")] == [3, 2, 1]
    versions = [orders[name].note["version"] for name in ("created", "first", "arrow", "last")]
    assert versions == sorted(versions) and versions[0] < versions[1] < versions[3]


def test_query_returns_the_rows_and_types_sent(client: Client, orders: dict[str, Outcome]) -> None:
    result = client.query("sales", "SELECT * FROM orders ORDER BY id")
    assert result.version == orders["last"].version
    table = result.table
    assert table.schema.metadata is None
    assert table.schema.names == COLUMNS
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("amount").type == pa.decimal128(12, 2)
    at_type = table.schema.field("at").type
    assert pa.types.is_timestamp(at_type) and at_type.unit == "us" and at_type.tz is not None
    tags_type = table.schema.field("tags").type
    assert pa.types.is_list(tags_type) and tags_type.value_type == pa.string()
    assert table.schema.field("note").type == pa.string()
    assert table.to_pylist() == as_dicts(EXPECTED)


def test_query_matches_duckdb_on_the_pulled_version(
    client: Client, orders: dict[str, Outcome], tmp_path: Path
) -> None:
    output = tmp_path / "sales.duckdb"
    header = client.pull("sales", output)
    assert header["model"] == "sales"
    assert header["version"] == orders["last"].version
    data = output.read_bytes()
    assert header["bytes"] == len(data)
    assert header["sha256"] == hashlib.sha256(data).hexdigest()
    assert not Path(f"{output}.tmp").exists()
    assert {"version": header["version"], "bytes": header["bytes"]} in client.versions("sales")

    with duckdb.connect(str(output), read_only=True) as connection:
        assert connection.sql("SELECT count(*) FROM orders").fetchone() == (len(EXPECTED),)
        # DuckDB shows zoned times in the session's zone; Teatree's reads use UTC.
        connection.execute("SET TimeZone = 'UTC'")
        expected = connection.sql("SELECT * FROM orders ORDER BY id").fetch_arrow_table()
    got = client.query("sales", "SELECT * FROM orders ORDER BY id", at_version=header["version"])
    assert got.version == header["version"]
    assert got.table.equals(expected), f"{got.table.schema}\n{expected.schema}"


def test_an_older_version_has_the_older_rows(client: Client, orders: dict[str, Outcome]) -> None:
    old = client.query(
        "sales", "SELECT * FROM orders ORDER BY id", at_version=orders["first"].version
    )
    assert old.version == orders["first"].version
    assert old.table.to_pylist() == as_dicts(EXPECTED[:3])


def test_query_polars(client: Client, orders: dict[str, Outcome]) -> None:
    frame = client.query_polars(
        "sales", "SELECT id, amount FROM orders WHERE amount IS NOT NULL ORDER BY id"
    )
    assert isinstance(frame, polars.DataFrame)
    assert frame["id"].to_list() == [1, 2, 4, 6]
    assert frame["amount"].to_list() == [
        Decimal("12.50"),
        Decimal("0.05"),
        Decimal("-3.75"),
        Decimal("100.00"),
    ]


def test_read_function_and_tables(client: Client, orders: dict[str, Outcome]) -> None:
    top = client.query("sales", function="top_n", args={"table": "orders", "column": "id", "n": 2})
    assert top.table.column("id").to_pylist() == [6, 5]
    assert client.tables("sales") == {"orders": len(EXPECTED)}


def test_refused_statement_raises_the_server_message(
    client: Client, orders: dict[str, Outcome]
) -> None:
    with pytest.raises(TeatreeError, match="only SELECT") as refused:
        client.query("sales", "DROP TABLE orders")
    assert "gRPC" not in str(refused.value)
    with pytest.raises(TeatreeError, match="no published version"):
        client.query("nosuchmodel", "SELECT 1")
    with pytest.raises(TeatreeError, match="either sql or function"):
        client.query("sales")


def test_queued_query_returns_its_pages(client: Client, orders: dict[str, Outcome]) -> None:
    outcome = client.submit_and_wait(
        {
            "model": "sales",
            "op": "query",
            "sql": "SELECT id FROM orders ORDER BY id",
            "page_rows": 2,
        }
    )
    assert outcome.applied and outcome.note["pages"] == 3
    assert outcome.result is not None
    assert outcome.result.column("id").to_pylist() == [1, 2, 3, 4, 5, 6]


def test_wait_replays_an_outcome_published_before(
    client: Client, orders: dict[str, Outcome]
) -> None:
    request_id = client.submit(
        {"model": "sales", "op": "query", "sql": "SELECT count(*) AS n FROM orders"}
    )
    assert request_id.startswith("py-")
    first = client.wait("sales", request_id, timeout=30)
    again = client.wait("sales", request_id, timeout=5)
    assert first.note == again.note
    assert again.result is not None and again.result.column("n").to_pylist() == [6]


def test_a_resubmitted_request_is_answered_once(client: Client, orders: dict[str, Outcome]) -> None:
    request = {
        "model": "sales",
        "request_id": "once-1",
        "op": "append",
        "table": "orders",
        "rows": [[7, "1.00", None, None, "once"]],
    }
    applied = client.submit_and_wait(request)
    again = client.submit_and_wait(request)
    assert applied.applied and again.version == applied.version
    assert client.query("sales", "SELECT count(*) AS n FROM orders WHERE id = 7").table[
        "n"
    ].to_pylist() == [1]


def test_a_rejected_request_carries_the_server_error(
    client: Client, orders: dict[str, Outcome]
) -> None:
    outcome = client.submit_and_wait(
        {"model": "sales", "op": "append", "table": "nosuch", "rows": [[1]]}
    )
    assert not outcome.applied
    assert outcome.error and "nosuch" in outcome.error
    with pytest.raises(TeatreeError, match="nosuch"):
        outcome.check()


def test_invalid_requests_are_refused_before_sending(client: Client) -> None:
    with pytest.raises(TeatreeError, match="invalid request_id"):
        client.submit({"model": "sales", "request_id": "a b", "op": "snapshot"})
    with pytest.raises(TeatreeError, match="invalid model name"):
        client.submit({"op": "snapshot"})  # This client has no default model.


def test_a_model_that_does_not_exist_is_refused_before_sending(client: Client) -> None:
    with pytest.raises(TeatreeError, match="model ghost does not exist"):
        client.submit({"model": "ghost", "op": "append", "table": "t", "rows": [[1]]})
    with pytest.raises(TeatreeError, match="does not exist"):
        client.submit_and_wait({"model": "ghost", "op": "snapshot"}, timeout=5)


def test_watch_sees_a_published_version(client: Client) -> None:
    client.submit_and_wait(
        {
            "model": "events",
            "op": "create_table",
            "table": "e",
            "schema": [{"name": "x", "type": "INTEGER"}],
        }
    ).check()
    with client.watch("events", timeout=20) as notes:
        appended = client.submit_and_wait(
            {"model": "events", "op": "append", "table": "e", "rows": [{"x": 1}, {"x": None}]}
        ).check()
        seen = []
        for note in notes:
            seen.append(note)
            if note["type"] == "version_published" and note["version"] >= appended.version:
                break
    assert seen and seen[-1] == {
        "type": "version_published",
        "model": "events",
        "version": seen[-1]["version"],
    }, seen
    outcomes = [note for note in seen if note["type"] == "outcome"]
    assert any(note["request_id"] == appended.note["request_id"] for note in outcomes), seen


CREATE_T = {"op": "create_table", "table": "t", "schema": [{"name": "x", "type": "BIGINT"}]}


def test_reads_with_the_version_of_a_write_see_it(client: Client, tmp_path: Path) -> None:
    client.submit_and_wait({"model": "ryw", **CREATE_T}).check()
    for x in range(1, 4):
        append = {"model": "ryw", "op": "append", "table": "t", "rows": [[x]]}
        version = client.submit_and_wait(append).check().version
        assert version is not None
        sql = f"SELECT count(*) AS n FROM t WHERE x = {x}"
        read = client.query("ryw", sql, min_version=version)
        assert read.version is not None and read.version >= version
        assert read.table.to_pylist() == [{"n": 1}]
        # A pull reads version files: it waits for the write's version to be published.
        header = client.pull("ryw", tmp_path / f"ryw{x}.duckdb", min_version=version)
        assert header["version"] >= version
        with duckdb.connect(str(tmp_path / f"ryw{x}.duckdb"), read_only=True) as pulled:
            assert pulled.execute(f"SELECT count(*) FROM t WHERE x = {x}").fetchone() == (1,)


def test_submit_can_wait_until_the_write_is_published(client: Client) -> None:
    client.submit_and_wait({"model": "pub", **CREATE_T}).check()
    outcome = client.submit_and_wait(
        {"model": "pub", "op": "append", "table": "t", "rows": [[1]]}, wait="published"
    ).check()
    assert outcome.version is not None and outcome.published_version is not None
    assert outcome.published_version >= outcome.version
    assert client.versions("pub")[-1]["version"] >= outcome.version
    with pytest.raises(TeatreeError, match="applied"):
        client.submit_and_wait({"model": "pub", "op": "snapshot"}, wait="committed")


def test_rows_too_large_for_the_queue_are_uploaded_first(client: Client, serve_dir: Path) -> None:
    client.submit_and_wait({"model": "bulk", **CREATE_T}).check()
    # About 12 MiB of base64 Arrow IPC: over the 8 MiB the queue takes.
    table = pa.table({"x": pa.array(range(1_500_000), pa.int64())})
    outcome = client.submit_and_wait({"model": "bulk", "op": "append", "table": "t", "rows": table})
    assert outcome.check().note["rows"] == 1_500_000
    rows = [[x] for x in range(2_000_000, 3_000_000)]  # JSON rows, over 8 MiB as well.
    json_rows = {"model": "bulk", "op": "append", "table": "t", "rows": rows}
    assert client.submit_and_wait(json_rows).check()
    read = client.query("bulk", "SELECT count(*) AS n FROM t", min_version=outcome.version)
    assert read.table.to_pylist() == [{"n": 2_500_000}]
    # Each upload went once its request was applied.
    deadline = time.monotonic() + 10
    while any((serve_dir / "staging" / "bulk").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any((serve_dir / "staging" / "bulk").iterdir())


def test_an_upload_is_named_by_a_request(client: Client, tmp_path: Path) -> None:
    client.submit_and_wait({"model": "staged", **CREATE_T}).check()
    parquet = tmp_path / "x.parquet"
    pq.write_table(pa.table({"x": pa.array([1, 2, 3], pa.int64())}), parquet)
    staged = client.upload("staged", parquet)
    source = {"format": "parquet", "staged": staged}
    append = {"model": "staged", "op": "append", "table": "t", "source": source}
    assert client.submit_and_wait(append).check().note["rows"] == 3
    csv_id = client.upload("staged", b"x\n4\n5\n")
    csv = {**append, "source": {"format": "csv", "staged": csv_id}}
    assert client.submit_and_wait(csv).check().note["rows"] == 2
    # Applied once: the upload is gone, and naming it again is a clear refusal.
    again = client.submit_and_wait({**append, "request_id": "again"})
    assert not again.applied and "upload the file again" in (again.error or "")
    with pytest.raises(TeatreeError, match="does not exist"):
        client.upload("nosuchmodel", b"x")


def test_a_version_that_does_not_come_is_a_clear_error(client: Client) -> None:
    client.submit_and_wait({"model": "late", **CREATE_T}).check()
    late = r"has no version 999 or newer after 200 ms.*wait_ms"
    with pytest.raises(TeatreeError, match=late) as raised:
        client.query("late", "SELECT 1", min_version=999, wait_ms=200)
    assert "Detail" not in str(raised.value)
    with pytest.raises(TeatreeError, match="newest published"):
        client.versions("late", min_version=999, wait_ms=200)
    with pytest.raises(TeatreeError, match="wait_ms needs min_version"):
        client.query("late", "SELECT 1", wait_ms=200)


def test_connect_needs_a_server(tmp_path: Path) -> None:
    with pytest.raises(TeatreeError, match="no Teatree server"):
        Client.connect(tmp_path)
    with Client.connect(flight_url="grpc://127.0.0.1:1") as reader:
        with pytest.raises(TeatreeError, match="no NATS server"):
            reader.submit({"model": "sales", "op": "snapshot"})
        with pytest.raises(TeatreeError, match="cannot reach the read server"):
            reader.versions("sales")
    with pytest.raises(TeatreeError, match="client is closed"):
        reader.versions("sales")


class GoneManagerServer(flight.FlightServerBase):  # type: ignore[misc]
    """A read server whose endpoints name a manager that is gone (nothing listens on port 1)."""

    def __init__(self) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self.tickets: list[Any] = []

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        endpoint = flight.FlightEndpoint(descriptor.command, ["grpc://127.0.0.1:1"])
        return flight.FlightInfo(pa.schema([("x", pa.int64())]), descriptor, [endpoint], -1, -1)

    def do_get(self, context: Any, ticket: Any) -> Any:
        self.tickets.append(json.loads(ticket.ticket))
        rows = pa.table({"x": [1, 2]}).replace_schema_metadata({"teatree.version": "7"})
        return flight.RecordBatchStream(rows)


def test_a_read_falls_back_to_the_server_when_the_manager_is_gone() -> None:
    with GoneManagerServer() as server:
        with Client.connect(flight_url=f"grpc://127.0.0.1:{server.port}") as client:
            result = client.query("sales", function="top_n", args={"n": 2})
        assert server.tickets == [{"model": "sales", "function": "top_n", "args": {"n": 2}}]
    assert result.version == 7
    assert result.table.schema.metadata is None
    assert result.table.to_pylist() == [{"x": 1}, {"x": 2}]


TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def token_serve_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A second serve that wants a bearer token on every read."""
    root = tmp_path_factory.mktemp("token")
    token_file = root / "tokens"
    token_file.write_text(f"# tokens of the tests\n{TOKEN}\n")
    with running_serve(root / "data", "--token-file", str(token_file)):
        yield root / "data"


def test_reads_need_the_token(token_serve_dir: Path) -> None:
    with Client.connect(token_serve_dir, token=TOKEN, model="secret") as client:
        client.submit_and_wait(
            {"op": "create_table", "table": "s", "schema": [{"name": "x", "type": "BIGINT"}]}
        ).check()
        appended = client.submit_and_wait(
            {"op": "append", "table": "s", "rows": [[1], [2]]}
        ).check()
        wait_published(client, "secret", appended.version)
        live = client.query("secret", "SELECT sum(x) AS total FROM s")
        assert live.table["total"].to_pylist() == [3] and live.version == appended.version
        assert client.tables("secret") == {"s": 2}
    for token in (None, "wrong"):
        with Client.connect(token_serve_dir, token=token) as client:
            with pytest.raises(TeatreeError, match="missing or invalid token"):
                client.query("secret", "SELECT * FROM s")
            with pytest.raises(TeatreeError, match="missing or invalid token"):
                client.versions("secret")


@pytest.fixture(scope="module")
def tls_serve_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A third serve whose read servers speak TLS, with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate with")
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with running_serve(root / "data", "--tls-cert", str(cert), "--tls-key", str(key)):
        yield root


def test_reads_over_tls(tls_serve_dir: Path) -> None:
    data_dir, cert = tls_serve_dir / "data", tls_serve_dir / "cert.pem"
    assert json.loads((data_dir / "serve.json").read_text())["flight_url"].startswith("grpc+tls:")
    with Client.connect(data_dir, tls_root_certs=cert, model="tls") as client:
        client.submit_and_wait(
            {"op": "create_table", "table": "t", "schema": [{"name": "x", "type": "BIGINT"}]}
        ).check()
        appended = client.submit_and_wait({"op": "append", "table": "t", "rows": [[5]]}).check()
        wait_published(client, "tls", appended.version)
        assert client.query("tls", "SELECT x FROM t").table["x"].to_pylist() == [5]
    with Client.connect(data_dir, tls_root_certs=cert.read_bytes()) as client:
        assert client.tables("tls") == {"t": 1}
    with Client.connect(data_dir) as client, pytest.raises(TeatreeError, match="certificate"):
        client.tables("tls")
