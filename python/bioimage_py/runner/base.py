"""``Runner``: block-wise execution of any per-block function, the same on every backend.

``Runner.run(function, inputs, outputs, ...)`` checks the call (``runner.job``), makes the block
plan and a job folder (``runner.job_folder``), then hands batches of blocks to its backend (a
subclass: threads, worker processes, dask.distributed, SLURM) and gathers what they report. Every
completed block is recorded in the job folder as it completes; a run that fails, or is killed,
raises (or leaves) a ``RunnerError`` whose ``tmp_folder`` is that record, and
``resume_from=err.tmp_folder`` reruns only the blocks not done. The folder is removed once every
block is done.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from bioimage_py.errors import RunnerError
from bioimage_py.runner.config import RunnerConfig
from bioimage_py.runner.job import (
    SINGLE_WRITER_FORMATS,
    BlockJob,
    CapturedOutput,
    check_block_ids,
    check_block_shape,
    check_domain,
    check_write_safety,
    default_block_shape,
    make_batches,
    normalize_halo,
    roi_bounds,
)
from bioimage_py.runner.job_folder import JobFolder, ProgressRecorder
from bioimage_py.runner.worker import BatchResult
from bioimage_py.sources.base import Source, SourceSpec, from_spec
from bioimage_py.sources.dispatch import SourceLike, as_source

__all__ = ["Outcome", "Runner"]

#: What a backend yields per finished batch: its result, or the exception that lost the batch.
Outcome = BatchResult | BaseException


class Runner(ABC):
    """Runs a per-block function over sources; subclasses are the backends.

    Args:
        config: the runner's settings (``RunnerConfig`` or a subclass); default
            ``RunnerConfig()``.
    """

    #: Whether blocks run in this process (threads), with the sources themselves; else worker
    #: processes reopen every source from its spec, and the job is shipped as a payload.
    in_process = False
    #: The job type ``get_runner`` knows this runner by.
    job_type = ""

    def __init__(self, config: RunnerConfig | None = None) -> None:
        self.config = config if config is not None else self._default_config()

    def _default_config(self) -> RunnerConfig:
        return RunnerConfig()

    # --- the public interface -------------------------------------------------------------------

    def run(
        self,
        function: Callable[..., Any],
        inputs: Sequence[SourceLike] | SourceLike,
        outputs: Sequence[SourceLike] | SourceLike = (),
        *,
        block_shape: Sequence[int] | None = None,
        halo: int | Sequence[int] | None = None,
        mask: SourceLike | None = None,
        num_workers: int = 1,
        block_ids: Iterable[int] | None = None,
        has_return_val: bool = False,
        name: str = "",
        roi: Sequence[slice] | None = None,
        resume_from: str | None = None,
        progress: bool | None = None,
    ) -> list[Any] | None:
        """Call ``function(block, inputs, outputs, mask)`` once per block.

        ``block`` is a ``Block`` (``begin``, ``end``, ``shape``; ``bioimage_py.to_roi(block)``
        indexes sources with it), or with a ``halo`` a ``BlockWithHalo``: read
        ``outer_block`` (grown by the halo, clipped to the domain), write ``inner_block``, crop
        results with ``inner_block_local``. ``inputs``/``outputs`` are the sources (reopened from
        their specs in worker processes), ``mask`` the mask source or ``None``.

        Args:
            function: the per-block function; for worker processes it is cloudpickled.
            inputs: sources read (the first defines the domain shape); a single source is fine.
            outputs: sources written; their trailing axes must equal the domain's.
            block_shape: default: the outputs' shards or chunks, else the domain's chunks.
            halo: per-axis (or one int) halo; the function then gets ``BlockWithHalo``s.
            mask: a source of the domain's shape, handed to the function as is.
            num_workers: threads, processes or workers running blocks at once.
            block_ids: run only these blocks (ids of the blocking of the domain or ``roi``).
            has_return_val: collect the function's return values.
            name: shown by the progress bar and in errors.
            roi: run only the blocks of this region (a tuple of slices over the domain).
            resume_from: the ``tmp_folder`` of a ``RunnerError``: finish that run, running only
                the blocks not done, and return the merged values. Worker-process runs restart
                from the recorded job (this call's function and sources are not used); runs on
                threads use this call's arguments, which must be the same.
            progress: show a progress bar; default: when ``name`` is given.

        Returns:
            With ``has_return_val``, the return values in ``block_ids`` order; else ``None``.

        Raises:
            ValueError: shapes that do not fit, blocks that would let two blocks write one
                chunk of an output, bad ``roi``/``halo``/``block_ids``, ``resume_from`` with
                ``block_ids``, sources worker processes cannot reopen (numpy arrays).
            TypeError: a read-only output.
            RunnerError: blocks did not complete; see its ``tmp_folder`` and
                ``failed_block_ids``.
        """
        if resume_from is not None and block_ids is not None:
            raise ValueError(
                "resume_from and block_ids are mutually exclusive: resume_from reruns exactly "
                "the blocks of the failed run that are not done"
            )
        self._check_num_workers(num_workers)
        if resume_from is not None and not self.in_process:
            return self._resume(JobFolder.existing(resume_from), num_workers, name, progress)
        input_sources = [as_source(s) for s in _as_list(inputs)]
        output_sources = [as_source(s) for s in _as_list(outputs)]
        mask_source = None if mask is None else as_source(mask)
        shape = check_domain(input_sources, output_sources, mask_source)
        domain = input_sources[0] if input_sources else None
        blocks = check_block_shape(
            block_shape if block_shape is not None
            else default_block_shape(shape, domain, output_sources),
            len(shape),
        )
        begin, end = (None, None) if roi is None else roi_bounds(roi, shape)
        job = BlockJob(
            function, "block", shape=shape, block_shape=blocks, roi_begin=begin, roi_end=end,
            halo=None if halo is None else normalize_halo(halo, len(shape)),
            has_return_val=bool(has_return_val), retries=int(self.config.retries),
        )
        blocking = job.blocking()
        shard_shapes = check_write_safety(blocking, output_sources, len(shape))
        ids = check_block_ids(block_ids, blocking.number_of_blocks)
        batches = make_batches(
            blocking, ids, shard_shapes, num_workers, self.config.tasks_per_worker,
            self.in_process,
        )
        if self.in_process:
            job.inputs, job.outputs, job.mask = input_sources, output_sources, mask_source
        else:
            job.inputs = [_spec(s, f"input {i}", self.job_type) for i, s in
                          enumerate(input_sources)]
            job.outputs = [_spec(s, f"output {i}", self.job_type) for i, s in
                           enumerate(output_sources)]
            job.mask = None if mask_source is None else _spec(mask_source, "mask", self.job_type)
            job.captured_outputs = {
                i: CapturedOutput.of(s) for i, s in enumerate(output_sources)
                if getattr(s, "format", None) in SINGLE_WRITER_FORMATS
            }
            job.imports = _format_modules([*input_sources, *output_sources, mask_source])
        folder = (
            JobFolder.existing(resume_from) if resume_from is not None
            else JobFolder.create(self.config.tmp_root, name or "run")
        )
        try:
            return self._drive(job, ids, batches, folder, num_workers, name, progress,
                               output_sources)
        finally:
            if not self.in_process:
                _forget_cached_chunks(output_sources)

    def map(
        self,
        function: Callable[[int], Any],
        n_items: int | None = None,
        *,
        item_ids: Iterable[int] | None = None,
        num_workers: int = 1,
        has_return_val: bool = True,
        name: str = "",
        resume_from: str | None = None,
        progress: bool | None = None,
    ) -> list[Any] | None:
        """Call ``function(index)`` for every index (``range(n_items)``, or ``item_ids``).

        The function carries what it needs in its closure (e.g. a ``SourceSpec`` to reopen).
        Failures, ``resume_from`` and the return values work as for ``run``.

        Raises:
            ValueError: neither ``n_items`` nor ``item_ids``; ``resume_from`` with ``item_ids``.
            RunnerError: items did not complete.
        """
        if resume_from is not None and item_ids is not None:
            raise ValueError("resume_from and item_ids are mutually exclusive")
        self._check_num_workers(num_workers)
        if resume_from is not None and not self.in_process:
            return self._resume(JobFolder.existing(resume_from), num_workers, name, progress)
        if item_ids is None:
            if n_items is None:
                raise ValueError("map() needs n_items or item_ids")
            ids = list(range(int(n_items)))
        else:
            ids = check_block_ids(item_ids, sys.maxsize, noun="item")
        job = BlockJob(function, "map", has_return_val=bool(has_return_val),
                       retries=int(self.config.retries))
        batches = make_batches(None, ids, [], num_workers, self.config.tasks_per_worker,
                               self.in_process)
        folder = (
            JobFolder.existing(resume_from) if resume_from is not None
            else JobFolder.create(self.config.tmp_root, name or "map")
        )
        return self._drive(job, ids, batches, folder, num_workers, name, progress, [])

    # --- the backend ----------------------------------------------------------------------------

    @abstractmethod
    def _outcomes(
        self,
        job: BlockJob,
        batches: list[tuple[str, list[int]]],
        num_workers: int,
        stop: threading.Event,
        folder: JobFolder,
    ) -> Iterator[tuple[list[int], Outcome]]:
        """Run the ``(key, ids)`` batches; yield each batch's ids with its outcome as it ends.

        Once ``stop`` is set, start no further batch. Worker processes load the job from
        ``folder`` (its payload) and record their progress there under each batch's key.
        """

    # --- driving a run --------------------------------------------------------------------------

    def _drive(
        self,
        job: BlockJob,
        ids: list[int],
        batches: list[list[int]],
        folder: JobFolder,
        num_workers: int,
        name: str,
        progress: bool | None,
        outputs: Sequence[Source],
    ) -> list[Any] | None:
        keyed = [(f"b{index}", batch) for index, batch in enumerate(batches)]
        if not self.in_process and not folder.has_payload():
            folder.write_payload(
                {"job": job, "ids": ids, "batches": keyed, "num_workers": num_workers,
                 "name": name}
            )
        return self._finish(job, ids, keyed, folder, num_workers, name, progress, outputs)

    def _resume(
        self, folder: JobFolder, num_workers: int, name: str, progress: bool | None
    ) -> list[Any] | None:
        payload = folder.read_payload()
        job: BlockJob = payload["job"]
        outputs = [from_spec(s) for s in job.outputs] if job.captured_outputs else []
        return self._finish(
            job, payload["ids"], payload["batches"], folder, num_workers,
            name or payload.get("name", ""), progress, outputs,
        )

    def _finish(
        self,
        job: BlockJob,
        ids: list[int],
        keyed: list[tuple[str, list[int]]],
        folder: JobFolder,
        num_workers: int,
        name: str,
        progress: bool | None,
        outputs: Sequence[Source],
    ) -> list[Any] | None:
        """Run what is not done yet, gather values, raise ``RunnerError`` for what is left."""
        done = folder.done_ids(job.has_return_val)
        pending = [(key, [i for i in batch if i not in done]) for key, batch in keyed]
        pending = [(key, batch) for key, batch in pending if batch]
        values: dict[int, Any] = {}
        completed: set[int] = set()
        failure: tuple[int | None, BaseException] | None = None
        bar = _progress_bar(len(ids), len(set(ids) & done), name, progress, job.mode)
        stop = threading.Event()
        recorder: ProgressRecorder | None = None
        try:
            if pending:
                recorder = folder.recorder(f"main-{_unique()}", job.has_return_val)
                outcomes = self._outcomes(job, pending, num_workers, stop, folder)
                for batch, outcome in outcomes:
                    if isinstance(outcome, BatchResult):
                        newly = self._take(outcome, outputs, recorder)
                        if outcome.error is not None and failure is None:
                            failure = (outcome.failed_block, outcome.error)
                        values.update(outcome.results)
                    else:  # the whole batch was lost (a dead worker, a pickling error)
                        newly = []
                        if failure is None:
                            failure = (None, outcome)
                    completed.update(newly)
                    bar.update(len(newly))
                    if failure is not None:
                        stop.set()
        finally:
            bar.close()
            if recorder is not None:
                recorder.close()
        missing = [i for i in ids if i not in done and i not in completed]
        if missing:
            # Workers may have recorded more than they could report (a batch lost with its worker).
            missing = sorted(set(missing) - folder.done_ids(job.has_return_val))
        if missing:
            raise _runner_error(job, name, ids, missing, failure, folder)
        result = None
        if job.has_return_val:
            unknown = [i for i in ids if i not in values]
            if unknown:
                values.update(folder.results(unknown))
            result = [values.get(i) for i in ids]
        folder.remove()
        return result

    @staticmethod
    def _take(
        outcome: BatchResult, outputs: Sequence[Source], recorder: ProgressRecorder
    ) -> list[int]:
        """Make a batch's captured writes, record what its worker did not; the ids now done."""
        newly: list[int] = []
        results = dict(outcome.results)
        writes = iter(outcome.writes)
        pending_write = next(writes, None)
        for block_id in outcome.completed:
            try:
                while pending_write is not None and pending_write[0] == block_id:
                    _, index, roi, value, where = pending_write
                    if where is not None:
                        merged = np.array(outputs[index][roi], copy=True)
                        np.copyto(merged, value, where=where, casting="unsafe")
                        value = merged
                    outputs[index][roi] = value
                    pending_write = next(writes, None)
            except Exception as err:  # noqa: BLE001  (the block's failure, reported as such)
                if outcome.error is None:
                    outcome.failed_block, outcome.error = block_id, err
                break
            if not outcome.recorded:
                recorder.record(block_id, results.get(block_id))
            newly.append(block_id)
        return newly

    @staticmethod
    def _check_num_workers(num_workers: Any) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or \
                num_workers < 1:
            raise ValueError(f"num_workers must be an integer >= 1, got {num_workers!r}")


# --- helpers ------------------------------------------------------------------------------------

_counter = iter(range(sys.maxsize))


def _unique() -> str:
    """A key for this process's progress log that no earlier attempt of the run used."""
    return f"{os.getpid()}-{time.monotonic_ns()}-{next(_counter)}"


def _as_list(sources: Any) -> list[Any]:
    """``inputs``/``outputs`` as a list; a single source or array (not a list of them) too."""
    if isinstance(sources, (Source, np.ndarray)) or (
        hasattr(sources, "shape") and hasattr(sources, "dtype")
    ):
        return [sources]
    return list(sources)


def _spec(source: Source, role: str, job_type: str) -> SourceSpec:
    try:
        return source.to_spec()
    except ValueError as err:
        raise ValueError(
            f"job_type={job_type!r} reopens every source in worker processes, but the {role} "
            f"cannot be reopened: {err}"
        ) from None


def _format_modules(sources: Sequence[Source | None]) -> tuple[str, ...]:
    """Modules that registered the formats of these sources, when not bioimage_py's own: a
    worker imports them first, so that custom formats reopen there too."""
    from bioimage_py.io import constructor_for_format

    modules = []
    for source in sources:
        fmt = getattr(source, "format", None)
        if fmt is None:
            continue
        try:
            module = getattr(constructor_for_format(fmt), "__module__", None) or ""
        except ValueError:
            continue
        if module and module != "__main__" and not module.startswith("bioimage_py."):
            modules.append(module)
    return tuple(dict.fromkeys(modules))


def _forget_cached_chunks(outputs: Sequence[Source]) -> None:
    """Worker processes rewrote chunks this process may hold decoded in its cache."""
    for output in outputs:
        clear = getattr(getattr(output, "array", None), "clear_cache", None)
        if callable(clear):
            clear()


def _short(ids: list[int], limit: int = 12) -> str:
    if len(ids) <= limit:
        return str(ids)
    return "[" + ", ".join(map(str, ids[:limit])) + f", ... {len(ids) - limit} more]"


def _runner_error(
    job: BlockJob,
    name: str,
    ids: list[int],
    missing: list[int],
    failure: tuple[int | None, BaseException] | None,
    folder: JobFolder,
) -> RunnerError:
    noun = "items" if job.mode == "map" else "blocks"
    if failure is None:  # interrupted without an error: should not happen, but say so
        failure = (None, RuntimeError("the runner stopped before every block was done"))
    block, error = failure
    where = f"{noun[:-1]} {block}" if block is not None else "a worker"
    label = name or ("map" if job.mode == "map" else "run")
    message = (
        f"{label} did not complete {len(missing)} of {len(ids)} {noun} "
        f"(ids {_short(missing)}); the first error, in {where}: "
        f"{type(error).__name__}: {str(error).rstrip('.')}. Completed {noun} are recorded in "
        f"{folder.path}: rerun with resume_from=err.tmp_folder to finish."
    )
    err = RunnerError(message, missing, folder.path, error=error, failed_block=block)
    err.__cause__ = error
    return err


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, name: str, progress: bool | None, mode: str) -> Any:
    if progress is None:
        progress = bool(name)
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    unit = "item" if mode == "map" else "block"
    return tqdm(total=total, initial=initial, unit=unit, desc=name or None, file=sys.stderr)
