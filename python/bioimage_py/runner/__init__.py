"""Block-wise execution of any per-block function over sources: ``get_runner(job_type).run(...)``.

Job types: ``"local"`` (threads of this process), ``"subprocess"`` (worker processes that reopen
every source from its spec), ``"dask"`` (a dask.distributed cluster) and ``"slurm"`` (dask
workers started as SLURM jobs by dask-jobqueue). Every completed block is recorded in a job
folder as it completes, so a failed or killed run resumes with
``resume_from=err.tmp_folder``.
"""
from __future__ import annotations

from bioimage_py.errors import RunnerError
from bioimage_py.runner.base import Runner
from bioimage_py.runner.config import (
    DaskConfig,
    RunnerConfig,
    SlurmConfig,
    config_file_path,
    write_slurm_config,
)
from bioimage_py.runner.dask_runner import DaskRunner
from bioimage_py.runner.local import LocalRunner
from bioimage_py.runner.processes import SubprocessRunner
from bioimage_py.runner.slurm import SlurmRunner
from bioimage_py.runner.worker import run_block

__all__ = [
    "JOB_TYPES",
    "DaskConfig",
    "DaskRunner",
    "LocalRunner",
    "Runner",
    "RunnerConfig",
    "RunnerError",
    "SlurmConfig",
    "SlurmRunner",
    "SubprocessRunner",
    "config_file_path",
    "get_runner",
    "run_block",
    "write_slurm_config",
]

_RUNNERS: dict[str, type[Runner]] = {
    runner.job_type: runner for runner in (LocalRunner, SubprocessRunner, DaskRunner, SlurmRunner)
}
JOB_TYPES = tuple(_RUNNERS)


def get_runner(job_type: str = "local", config: RunnerConfig | dict | None = None) -> Runner:
    """A runner of ``job_type`` (``"local"``, ``"subprocess"``, ``"dask"``, ``"slurm"``).

    Args:
        job_type: the backend.
        config: its settings: a ``RunnerConfig`` (``DaskConfig`` for dask, ``SlurmConfig`` for
            slurm), or a dict of their fields; default: the backend's defaults (for slurm, the
            user's config file).

    Raises:
        ValueError: an unknown job type, or unknown config fields.
    """
    try:
        runner = _RUNNERS[str(job_type).lower()]
    except KeyError:
        raise ValueError(
            f"unknown job_type {job_type!r}; expected one of {list(_RUNNERS)}"
        ) from None
    if isinstance(config, dict):
        config = _config_from_dict(runner, config)
    return runner(config)


def _config_from_dict(runner: type[Runner], values: dict) -> RunnerConfig:
    cls = type(runner(None).config) if runner is not SlurmRunner else SlurmConfig
    fields = cls.__dataclass_fields__
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown job_config keys {unknown} for job_type={runner.job_type!r}; valid keys: "
            f"{sorted(fields)}"
        )
    return SlurmConfig.load(**values) if cls is SlurmConfig else cls(**values)
