"""Context-manager support shared by the client's closeable objects."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ClosesOnExit:
    """`with obj:` closes `obj` on leaving the block, however it is left."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
