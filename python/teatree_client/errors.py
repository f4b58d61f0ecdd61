"""The one exception the client raises."""

from __future__ import annotations


class TeatreeError(Exception):
    """A Teatree server refused or could not do something; the message says what and why.

    Messages from the server are passed on as they are (without transport noise such as
    gRPC debug context), so they can be matched and shown to people.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
