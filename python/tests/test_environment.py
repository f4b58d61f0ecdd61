"""Checks that the client test environment has what the Teatree client needs."""

import os
import subprocess

import duckdb
import nats
import polars
import pyarrow as pa
import pyarrow.flight  # noqa: F401  (the read path's transport)


def test_pyarrow_and_polars_share_data():
    table = pa.table({"region": ["eu", "us"], "amount": [9.5, 3.0]})
    frame = polars.from_arrow(table)
    assert frame["amount"].sum() == 12.5


def test_duckdb_reads_arrow():
    numbers = pa.table({"x": [1, 2, 3]})
    assert duckdb.sql("SELECT sum(x) FROM numbers").fetchone()[0] == 6


def test_nats_client_imports():
    assert callable(nats.connect)


def test_teatree_binary_reports_version():
    binary = os.environ.get("TEATREE_BIN", "build/bin/teatree")
    out = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True)
    assert out.stdout.startswith("teatree ")
