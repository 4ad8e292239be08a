"""Runner configuration: ``RunnerConfig``, ``DaskConfig``, ``SlurmConfig`` and the user's
config file of SLURM defaults (``~/.config/bioimage-py/config.toml``).

The field order of ``RunnerConfig`` and ``SlurmConfig`` is bioimage_py 0.2's, so configs built
positionally by 0.2 code mean the same here; fields added since come after 0.2's.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "DaskConfig",
    "RunnerConfig",
    "SlurmConfig",
    "config_file_path",
    "write_slurm_config",
]


@dataclass
class RunnerConfig:
    """Settings every runner understands.

    Attributes:
        poll_interval: seconds between progress checks while waiting for workers.
        tmp_root: where job folders (the durable record of completed blocks) are made;
            ``None``: the system's temporary directory. Worker processes on other machines
            (SLURM) must see it: use a shared file system there.
        python_executable: the interpreter of worker processes (``subprocess``: started with
            ``spawn`` from it; ``slurm``: the Python the SLURM jobs run); ``None``: this one.
        tasks_per_worker: at least this many tasks per worker (``subprocess``, ``dask``,
            ``slurm``); a task runs a batch of blocks, so more tasks balance the load better.
        task_timeout: ``subprocess`` only: seconds a task may take; a worker over it is killed
            and its unfinished blocks are reported (and resumable). ``None``: no limit.
        retries: how often a block that raised is tried again before the run fails.
        start_method: ``subprocess`` only: ``"forkserver"`` (default where available),
            ``"spawn"`` or ``"fork"``.
        worker_timeout: ``dask``/``slurm``: seconds to wait with no worker at all while blocks
            are pending (e.g. every SLURM job was cancelled) before the run fails, resumable.
    """

    poll_interval: float = 10.0
    tmp_root: str | None = None
    python_executable: str | None = None
    tasks_per_worker: int = 1
    task_timeout: float | None = None
    retries: int = 0
    start_method: str | None = None
    worker_timeout: float = 300.0


@dataclass
class DaskConfig(RunnerConfig):
    """Settings of the ``dask`` runner: a ``distributed.Client`` to run on, or the address of a
    scheduler; with neither, a ``LocalCluster`` of ``num_workers`` processes is started for the
    run and closed after it."""

    client: Any = None
    address: str | None = None


@dataclass
class SlurmConfig(RunnerConfig):
    """Settings of the ``slurm`` runner: dask.distributed workers started as SLURM jobs by
    dask-jobqueue (one job per worker, ``num_workers`` jobs).

    ``SlurmConfig.load(**overrides)`` fills unset fields from the ``[slurm]`` table of the user's
    config file (``config_file_path()``); ``SlurmConfig(...)`` alone uses exactly what it is given.

    Attributes:
        partition: the partition (queue) the worker jobs go to.
        time: the walltime of a worker job (``"HH:MM:SS"``); default one hour.
        mem: the memory of a worker job (``"8G"``, ``"8GB"``); default: no ``--mem`` line.
        cpus_per_task: CPUs of a worker job (its worker runs one block per CPU).
        gpus: GPUs per worker job (``--gpus``, only when > 0).
        account, qos, constraint: ``--account``, ``--qos``, ``--constraint``.
        shebang: the job script's environment setup: its first line (``#!...``) starts the
            script, further lines (``module load ...``, exports) run before the worker starts.
        max_array_size, latency_wait: accepted for 0.2 configs; unused (workers are dask
            jobs, not an array job).
        interface: the network interface the scheduler listens on and workers use (e.g.
            ``"ib0"``); default: the one dask chooses.
        extra_directives: further ``#SBATCH`` options, e.g. ``["--exclusive"]``.
    """

    partition: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: int = 1
    gpus: int = 0
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    shebang: str | None = None
    max_array_size: int | None = None
    latency_wait: float = 120.0
    interface: str | None = None
    extra_directives: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> SlurmConfig:
        """A config from the ``[slurm]`` table of the user's config file, ``overrides`` first.

        Args:
            path: the config file; ``None``: ``config_file_path()``. A missing file is empty.
            **overrides: field values taking precedence over the file.

        Raises:
            ValueError: an unknown field name in the file or in ``overrides``.
        """
        _check_field_names(overrides, "SlurmConfig.load()")
        values = _read_slurm_table(path)
        values.update(overrides)
        return cls(**values)


def config_file_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The user's config file: ``path`` when given, else ``$BIOIMAGE_PY_CONFIG``, else
    ``$XDG_CONFIG_HOME/bioimage-py/config.toml`` (``~/.config/...`` without XDG_CONFIG_HOME).
    The file need not exist."""
    if path is not None:
        return Path(path).expanduser()
    explicit = os.environ.get("BIOIMAGE_PY_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "bioimage-py" / "config.toml"


def write_slurm_config(
    path: str | os.PathLike[str] | None = None, *, replace: bool = False, **fields: Any
) -> str:
    """Store SLURM defaults (partition, account, tmp_root, ...) in the user's config file.

    The given fields are merged into its ``[slurm]`` table (``None`` values skipped); other
    tables of the file are kept. The parent folder is created when missing.

    Args:
        path: the file; ``None``: ``config_file_path()``.
        replace: replace the whole ``[slurm]`` table instead of merging into it.
        **fields: ``SlurmConfig`` field values.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown field name.
    """
    import tomli_w

    _check_field_names(fields, "write_slurm_config()")
    file = config_file_path(path)
    data = _parse(file)
    table = {} if replace else dict(data.get("slurm", {}))
    table.update({name: value for name, value in fields.items() if value is not None})
    data["slurm"] = table
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as stream:  # temporary file, then rename: never a torn config
        tomli_w.dump(data, stream)
    os.replace(tmp, file)
    return str(file)


def _slurm_field_names() -> set[str]:
    return {f.name for f in fields(SlurmConfig)}


def _check_field_names(names: Any, where: str) -> None:
    unknown = set(names) - _slurm_field_names()
    if unknown:
        raise ValueError(
            f"Unknown SlurmConfig option(s) {sorted(unknown)} in {where}; valid options: "
            f"{sorted(_slurm_field_names())}"
        )


def _parse(file: Path) -> dict[str, Any]:
    if not file.is_file():
        return {}
    with open(file, "rb") as stream:
        try:
            return tomllib.load(stream)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"the config file {str(file)!r} is not valid TOML: {err}") from None


def _read_slurm_table(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The ``[slurm]`` table of the config file, checked; empty with ``BIOIMAGE_PY_NO_CONFIG``."""
    if os.environ.get("BIOIMAGE_PY_NO_CONFIG"):
        return {}
    file = config_file_path(path)
    table = _parse(file).get("slurm", {})
    if not isinstance(table, dict):
        raise ValueError(f"[slurm] in {str(file)!r} must be a table, got {type(table).__name__}")
    _check_field_names(table, f"the [slurm] table of {str(file)!r}")
    return dict(table)
