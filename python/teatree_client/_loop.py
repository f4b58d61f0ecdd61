"""A private asyncio event loop in a background thread.

nats-py is asyncio-only; the client's API is synchronous. Every NATS coroutine runs on this
loop and the calling thread blocks on its result, so the client works the same from plain
scripts, threads and notebooks (which may already run a loop of their own).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import TeatreeError

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on an event loop owned by a daemon thread."""

    def __init__(self, name: str = "teatree-client") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs `coroutine` on the loop and returns its result (or raises its exception).

        If the caller is interrupted (e.g. KeyboardInterrupt), the coroutine is cancelled.
        """
        if self._loop.is_closed():
            coroutine.close()
            raise TeatreeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._loop.is_closed()

    def close(self) -> None:
        """Stops the loop and its thread; idempotent."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
