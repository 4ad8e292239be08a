"""Exception classes of bioimage_py. Each also inherits the builtin users already catch."""
from __future__ import annotations

from collections.abc import Iterable

from bioimage_py._core import IndexOutOfRangeError

__all__ = ["IndexOutOfRangeError", "ReadOnlyLocationError", "RunnerError"]


class ReadOnlyLocationError(PermissionError, ValueError):
    """A write to a location that cannot be written: an ``http(s)://`` URL or a zip file.

    Raised before anything is touched, naming the location. Both a ``PermissionError`` (what a
    denied write to a store raises) and a ``ValueError`` (a bad argument, as a write mode on a
    read-only format is).
    """


class RunnerError(RuntimeError):
    """A block-wise run (``Runner.run``, ``Runner.map``, ``copy``, ``downsample``) did not
    complete every block.

    Blocks that completed stay written and are recorded in ``tmp_folder``: running the same call
    again with ``resume_from=err.tmp_folder`` reruns only the blocks not done and merges the
    per-block return values; ``block_ids=err.failed_block_ids`` reruns those blocks too.

    Attributes:
        failed_block_ids: the ids of the blocks (or map items) not completed: failed, not
            started after the first failure, or lost with a worker; ascending.
        tmp_folder: the job folder holding the durable record of the completed blocks, or
            ``None`` when there is none.
        error: the first underlying exception (also ``__cause__``), when one is known.
        failed_block: the id of the block that raised ``error``, or ``None`` when a worker died
            without saying which block it was running.
    """

    def __init__(
        self,
        message: str,
        failed_block_ids: Iterable[int] | None = None,
        tmp_folder: str | None = None,
        *,
        error: BaseException | None = None,
        failed_block: int | None = None,
    ) -> None:
        super().__init__(message)
        self.failed_block_ids = sorted({int(i) for i in (failed_block_ids or ())})
        self.tmp_folder = tmp_folder
        self.error = error
        self.failed_block = failed_block

    @property
    def block_ids(self) -> list[int]:
        """The blocks not completed (the same list as ``failed_block_ids``)."""
        return self.failed_block_ids

    def __reduce__(self) -> tuple:
        # Pickles with its attributes (the default would pass only the message back).
        return (
            _rebuild_runner_error,
            (self.args[0], self.failed_block_ids, self.tmp_folder, self.error, self.failed_block),
        )


def _rebuild_runner_error(
    message: str,
    failed_block_ids: list[int],
    tmp_folder: str | None,
    error: BaseException | None,
    failed_block: int | None,
) -> RunnerError:
    return RunnerError(
        message, failed_block_ids, tmp_folder, error=error, failed_block=failed_block
    )

