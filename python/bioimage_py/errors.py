"""Exception classes of bioimage_py. Each also inherits the builtin users already catch."""
from __future__ import annotations

from collections.abc import Iterable

from bioimage_py._core import IndexOutOfRangeError

__all__ = ["BlockFailure", "IndexOutOfRangeError"]


class BlockFailure(RuntimeError):
    """A block-wise job (``bioimage_py.copy``) did not complete every block.

    Blocks that completed stay written; running the job again with
    ``block_ids=err.block_ids`` completes the result.

    Attributes:
        block_ids: the ids of the blocks that did not complete (failed, cancelled after the
            first failure, or lost with a worker), ascending.
        error: the first underlying exception (also ``__cause__``).
        failed_block: the id of the block that raised ``error``, or ``None`` when a worker died
            without saying which block it was running.
    """

    def __init__(
        self,
        message: str,
        block_ids: Iterable[int],
        error: BaseException | None = None,
        failed_block: int | None = None,
    ) -> None:
        super().__init__(message)
        self.block_ids = sorted(int(i) for i in block_ids)
        self.error = error
        self.failed_block = failed_block

    def __reduce__(self) -> tuple:
        # Pickles with its attributes (the default would pass only the message back).
        return (type(self), (self.args[0], self.block_ids, self.error, self.failed_block))
