"""Notifications: outcomes, result pages and published versions.

A manager publishes on stream TEATREE_NOTE (src/teatree/service/notes.h):

- `teatree.note.<model>`: `{"type": "outcome", ...}` for every request and
  `{"type": "version_published", "model", "version"}` for every published version;
- `teatree.note.<model>.<request_id>`: the result pages of a query or function
  (`{"type": "page", "page": 1, ..., "final": true, "format": "arrow_ipc_base64", "data"}`),
  then the request's outcome.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.ipc

from .errors import TeatreeError

NOTE_STREAM = "TEATREE_NOTE"


def note_subject(model: str) -> str:
    """`teatree.note.<model>`: every outcome and published version of a model."""
    return f"teatree.note.{model}"


def request_note_subject(model: str, request_id: str) -> str:
    """`teatree.note.<model>.<request_id>`: one request's result pages, then its outcome.

    The id is one subject token: each '.' in it is written "%2E", as the server does.
    """
    return f"{note_subject(model)}.{request_id.replace('.', '%2E')}"


def parse_note(data: bytes) -> dict[str, Any] | None:
    """The JSON object a notification holds, or None for anything else (e.g. heartbeats)."""
    try:
        note = json.loads(data)
    except ValueError:
        return None
    return note if isinstance(note, dict) else None


@dataclass(frozen=True)
class Outcome:
    """What became of a request: the server's outcome notification, and for a query or a
    function that returns rows, its result.

    `note` holds the fields the server sent: `request_id`, `op`, `status` ("applied" or
    "rejected"), `version`, `rows`, `duration_ms`, and `error`, `duplicate`, `pages` when
    they apply.
    """

    note: dict[str, Any]
    result: pa.Table | None = None
    # With submit_and_wait(wait="published"): the newest published version once it held
    # the request.
    published_version: int | None = None

    @property
    def applied(self) -> bool:
        """True when the request was applied."""
        return self.note.get("status") == "applied"

    @property
    def version(self) -> int | None:
        """The model version that holds the request's effect."""
        return self.note.get("version")

    @property
    def error(self) -> str | None:
        """Why the request was rejected (None when it was applied)."""
        return self.note.get("error")

    def check(self) -> Outcome:
        """Returns self if the request was applied, else raises TeatreeError with the
        server's reason."""
        if not self.applied:
            request_id = self.note.get("request_id", "?")
            raise TeatreeError(f"request {request_id} was rejected: {self.error}")
        return self


def assemble_pages(pages: list[dict[str, Any]]) -> pa.Table:
    """The table a request's result pages (in any order, each once) were cut from."""
    ordered = sorted(pages, key=lambda page: page.get("page", 0))
    if [page.get("page") for page in ordered] != list(range(1, len(ordered) + 1)):
        raise TeatreeError(
            f"result pages are missing: got pages {[p.get('page') for p in ordered]}"
        )
    if not ordered or not ordered[-1].get("final"):
        raise TeatreeError("the final result page has not arrived")
    tables = []
    for page in ordered:
        if page.get("format") != "arrow_ipc_base64":
            raise TeatreeError(
                f"result page {page['page']} has unknown format {page.get('format')!r}"
            )
        tables.append(pa.ipc.open_stream(base64.b64decode(page.get("data", ""))).read_all())
    return pa.concat_tables(tables)
