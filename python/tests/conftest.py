"""Runs `teatree serve` for the client tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEATREE_BIN = os.environ.get(
    "TEATREE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "bin" / "teatree")
)


@contextlib.contextmanager
def running_serve(data_dir: Path, *flags: str) -> Iterator[dict[str, Any]]:
    """Starts `teatree serve -d data_dir` (on free loopback ports) and yields its serve.json;
    stops it with SIGINT afterwards and checks that it exits cleanly."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [TEATREE_BIN, "serve", "-d", str(data_dir), *flags], stdout=log, stderr=log
        )
    try:
        yield _wait_for_serve_json(data_dir / "serve.json", process, log_path)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"teatree serve did not stop within 30 s of SIGINT; log {log_path}")
        assert code == 0, f"teatree serve exited with {code}: {log_path.read_text()}"


def _wait_for_serve_json(path: Path, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"teatree serve exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError, ValueError):
            served: dict[str, Any] = json.loads(path.read_text())
            if served.get("nats_url") and served.get("flight_url"):
                return served
        time.sleep(0.05)
    pytest.fail(f"teatree serve wrote no complete {path} within 30 s: {log.read_text()}")


@pytest.fixture(scope="module")
def serve_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data directory of a `teatree serve` running for the module's tests."""
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    with running_serve(data_dir):
        yield data_dir
