"""The job folder: the durable record of a run, so that a run that failed or was killed resumes.

Layout (every file written by one writer only, so processes never contend)::

    <tmp_root>/bioimage_py-<name>-XXXX/
        payload.pkl         the cloudpickled ``BlockJob``, its ids and batches (worker
                            processes load it; ``resume_from`` restarts from it)
        progress/<key>.log  one line per completed block id, appended and flushed as each
                            block completes (``key``: a batch, or the calling process)
        results/<key>.bin   with return values: records of a ``(block_id, length)`` header and
                            the cloudpickled value, each made before its progress line

A block counts as done once its progress line is complete (ends in a newline) and, for runs
with return values, its result record is complete too. A crash can leave at most a torn last
line or record, which is ignored, or a result without a progress line, which is rerun and then
written again (the last record of a block wins).
"""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable
from typing import IO, Any

import cloudpickle

__all__ = ["JobFolder", "ProgressRecorder"]

_PAYLOAD = "payload.pkl"
_HEADER = struct.Struct("<QQ")  # block id, length of the pickled value


class JobFolder:
    """A job folder on disk (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = os.fspath(path)

    @classmethod
    def create(cls, tmp_root: str | None, name: str) -> JobFolder:
        """A new, empty job folder in ``tmp_root`` (default: the system's temporary directory)."""
        if tmp_root is not None:
            os.makedirs(tmp_root, exist_ok=True)
        label = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "run"
        path = tempfile.mkdtemp(prefix=f"bioimage_py-{label}-", dir=tmp_root)
        for sub in ("progress", "results"):
            os.mkdir(os.path.join(path, sub))
        return cls(path)

    @classmethod
    def existing(cls, path: str | os.PathLike[str]) -> JobFolder:
        """The job folder at ``path``, checked to be one.

        Raises:
            ValueError: ``path`` is not a job folder (no ``progress`` record in it).
        """
        folder = cls(os.fspath(path))
        if not os.path.isdir(os.path.join(folder.path, "progress")):
            raise ValueError(
                f"resume_from={folder.path!r} is not a job folder of bioimage_py (the "
                "tmp_folder of a RunnerError): it has no progress record"
            )
        return folder

    # --- the payload ----------------------------------------------------------------------------

    def write_payload(self, payload: dict[str, Any]) -> None:
        """Store the run's payload (temporary file, then rename: never a torn payload)."""
        target = os.path.join(self.path, _PAYLOAD)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "wb") as stream:
            cloudpickle.dump(payload, stream)
        os.replace(tmp, target)

    def has_payload(self) -> bool:
        return os.path.exists(os.path.join(self.path, _PAYLOAD))

    def read_payload(self) -> dict[str, Any]:
        """The stored payload.

        Raises:
            ValueError: there is none (a run of this process's threads keeps none).
        """
        try:
            with open(os.path.join(self.path, _PAYLOAD), "rb") as stream:
                return cloudpickle.load(stream)
        except FileNotFoundError:
            raise ValueError(
                f"the job folder {self.path!r} holds no payload: it belongs to a run on threads "
                "of its process, which resumes by calling it again with the same arguments "
                "and resume_from"
            ) from None

    # --- progress -------------------------------------------------------------------------------

    def recorder(self, key: str, with_results: bool) -> ProgressRecorder:
        """A recorder appending to this folder's logs of ``key`` (one writer per key)."""
        return ProgressRecorder(self.path, key, with_results)

    def done_ids(self, with_results: bool = False) -> set[int]:
        """The ids of every block recorded as completed (``with_results``: and whose return
        value is recorded)."""
        done: set[int] = set()
        progress = os.path.join(self.path, "progress")
        for name in os.listdir(progress):
            with open(os.path.join(progress, name), encoding="ascii", errors="replace") as log:
                for line in log:
                    if line.endswith("\n") and line.strip().isdigit():
                        done.add(int(line))
        if with_results:
            done &= self._result_ids()
        return done

    def _result_ids(self) -> set[int]:
        ids: set[int] = set()
        folder = os.path.join(self.path, "results")
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as stream:
                ids.update(block_id for block_id, _ in _records(stream, load=False))
        return ids

    def results(self, ids: Iterable[int]) -> dict[int, Any]:
        """The recorded return values of the blocks ``ids`` (which are done)."""
        wanted = set(ids)
        found: dict[int, Any] = {}
        folder = os.path.join(self.path, "results")
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as stream:
                for block_id, value in _records(stream):
                    if block_id in wanted:
                        found[block_id] = value
        return found

    def remove(self) -> None:
        """Deletes the folder; a file a finishing worker adds meanwhile (a log line) makes the
        deletion be tried again, a few times."""
        for _ in range(5):
            shutil.rmtree(self.path, ignore_errors=True)
            if not os.path.exists(self.path):
                return
            time.sleep(0.2)


class ProgressRecorder:
    """Appends completed blocks (and their return values) to one key's logs.

    Records are flushed to the kernel at most ``FLUSH_SECONDS`` after they are made (and on
    close), not per block: a flush costs as much as a small block's bookkeeping. A process
    killed in between loses at most that much of its record, and those blocks simply run again
    on resume (writing a block twice gives the same result). Not fsynced, for the same reason.
    """

    FLUSH_SECONDS = 0.05

    def __init__(self, folder: str, key: str, with_results: bool) -> None:
        self._flushed = time.monotonic()
        self._log: IO[str] = open(os.path.join(folder, "progress", f"{key}.log"), "a")
        self._results: IO[bytes] | None = None
        if with_results:
            self._results = open(os.path.join(folder, "results", f"{key}.bin"), "ab")

    def record(self, block_id: int, value: Any = None) -> None:
        if self._results is not None:
            data = cloudpickle.dumps(value)
            self._results.write(_HEADER.pack(block_id, len(data)) + data)
        self._log.write(f"{block_id}\n")
        now = time.monotonic()
        if now - self._flushed >= self.FLUSH_SECONDS:
            self.flush()
            self._flushed = now

    def flush(self) -> None:
        # Results first: a progress line must never reach the file before its result record.
        if self._results is not None:
            self._results.flush()
        self._log.flush()

    def close(self) -> None:
        self.flush()
        self._log.close()
        if self._results is not None:
            self._results.close()

    def __enter__(self) -> ProgressRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _records(stream: IO[bytes], load: bool = True) -> Iterable[tuple[int, Any]]:
    """The complete ``(block_id, value)`` records of a results file; a torn last one ends it.
    Without ``load`` the values are skipped (``None``), not unpickled."""
    while True:
        header = stream.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        block_id, length = _HEADER.unpack(header)
        data = stream.read(length)
        if len(data) < length:
            return
        yield int(block_id), cloudpickle.loads(data) if load else None
