"""Turning a request dict into the JSON body the server's request codec reads.

The server (src/teatree/request/codec.cc, docs/requests.md) checks every field; the client only
fills defaults, checks what must be right before anything is sent (the names that end up in
NATS subjects and message ids), and encodes values JSON has no form for.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.ipc

from .errors import TeatreeError

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def new_request_id() -> str:
    """A fresh random request id, `py-` and 16 hex digits."""
    return "py-" + secrets.token_hex(8)


def check_model(model: object) -> str:
    """Returns `model` if it is a valid model name, else raises TeatreeError."""
    if not isinstance(model, str) or not _NAME.fullmatch(model):
        raise TeatreeError(
            f"invalid model name {model!r}: use a lowercase letter, then up to 62 lowercase "
            "letters, digits or underscores"
        )
    return model


def check_request_id(request_id: object) -> str:
    """Returns `request_id` if it is valid, else raises TeatreeError."""
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise TeatreeError(
            f"invalid request_id {request_id!r}: use 1 to 128 characters of A-Z a-z 0-9 . _ : -"
        )
    return request_id


def encode_request(request: Mapping[str, Any], default_model: str | None) -> tuple[str, str, bytes]:
    """Returns (model, request_id, JSON body) for `request`.

    Fills `request_id` (a random one) and `model` (`default_model`) when absent. Rows given
    as a pyarrow Table or RecordBatch (or anything with `to_arrow()`, such as a polars
    DataFrame) in `rows` or `rows_ipc`, or Arrow IPC stream bytes in `rows_ipc`, are sent as
    base64 in `rows_ipc`.
    Decimals, dates and datetimes in JSON rows are written as the strings the server parses.
    """
    body = dict(request)
    body["model"] = check_model(body.get("model") or default_model)
    body["request_id"] = check_request_id(body.get("request_id") or new_request_id())
    if _is_tabular(body.get("rows")):
        body["rows_ipc"] = _ipc_base64(body.pop("rows"))
    elif body.get("rows_ipc") is not None and not isinstance(body["rows_ipc"], str):
        body["rows_ipc"] = _ipc_base64(body["rows_ipc"])
    try:
        text = json.dumps(body, default=_json_value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TeatreeError(
            f"request {body['request_id']} cannot be sent as JSON: {error}"
        ) from error
    return body["model"], body["request_id"], text.encode()


def _is_tabular(value: object) -> bool:
    return isinstance(value, (pa.Table, pa.RecordBatch)) or hasattr(value, "to_arrow")


def _ipc_base64(rows: Any) -> str:
    """Rows as base64 of an Arrow IPC stream (bytes are taken to be one already)."""
    if isinstance(rows, (bytes, bytearray, memoryview)):
        return base64.b64encode(rows).decode()
    if not isinstance(rows, (pa.Table, pa.RecordBatch)):
        rows = rows.to_arrow()
    table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
    try:
        table = table.cast(pa.schema([f.with_type(_plain_type(f.type)) for f in table.schema]))
    except pa.ArrowException as error:
        raise TeatreeError(f"rows cannot be sent in the types the server takes: {error}") from error
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode()


def _plain_type(type_: pa.DataType) -> pa.DataType:
    """The Arrow type the server takes for `type_`: large and view strings, binaries and
    lists become their plain forms (polars makes those), timestamps microseconds."""
    if pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return pa.string()
    if pa.types.is_large_binary(type_) or pa.types.is_binary_view(type_):
        return pa.binary()
    if pa.types.is_timestamp(type_) and type_.unit != "us":
        return pa.timestamp("us", type_.tz)
    if (
        pa.types.is_list(type_)
        or pa.types.is_large_list(type_)
        or pa.types.is_list_view(type_)
        or pa.types.is_large_list_view(type_)
    ):
        return pa.list_(_plain_type(type_.value_type))
    return type_


def _json_value(value: object) -> object:
    """JSON forms of the Python values the server's row parser takes as strings."""
    if isinstance(value, decimal.Decimal):
        return str(value)  # Exact: DECIMAL accepts a string.
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form: {value!r}")
