"""``SlurmRunner`` (job type ``"slurm"``): dask.distributed workers started as SLURM jobs.

dask-jobqueue's ``SLURMCluster`` submits ``num_workers`` jobs, one dask worker each, configured
from ``SlurmConfig`` (partition, walltime, memory, CPUs, GPUs, account, QOS, constraint, the
environment setup of the job script); the run's batches then go to those workers exactly as for
``DaskRunner``, and the jobs end with the run. The job folder (``tmp_root``) must be on a file
system the compute nodes share. Jobs that are cancelled (``scancel``) or die lose only the
blocks they had not finished: once no worker is left and no job is queued or running for
``worker_timeout`` seconds, the run fails with a ``RunnerError`` to resume from.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from bioimage_py.runner.base import Outcome
from bioimage_py.runner.config import RunnerConfig, SlurmConfig
from bioimage_py.runner.dask_runner import DaskRunner, import_distributed, run_on_client
from bioimage_py.runner.job import BlockJob
from bioimage_py.runner.job_folder import JobFolder

__all__ = ["SlurmRunner", "slurm_cluster"]


class SlurmRunner(DaskRunner):
    """Runs batches of blocks on dask workers that are SLURM jobs (see the module docstring).

    Without a config, the ``[slurm]`` defaults of the user's config file are used
    (``SlurmConfig.load()``).
    """

    job_type = "slurm"

    def _default_config(self) -> RunnerConfig:
        return SlurmConfig.load()

    def _outcomes(
        self,
        job: BlockJob,
        batches: list[tuple[str, list[int]]],
        num_workers: int,
        stop: threading.Event,
        folder: JobFolder,
    ) -> Iterator[tuple[list[int], Outcome]]:
        distributed = import_distributed()
        config = self.config
        if not isinstance(config, SlurmConfig):
            config = SlurmConfig(**{k: v for k, v in vars(config).items()
                                    if k in SlurmConfig.__dataclass_fields__})
        with slurm_cluster(config, min(num_workers, len(batches)),
                           os.path.join(folder.path, "slurm")) as cluster, \
                distributed.Client(cluster) as client:

            def has_workers() -> bool:
                return bool(client.nthreads()) or _jobs_alive(cluster)

            yield from run_on_client(
                client, folder, batches, stop, float(config.worker_timeout),
                min(1.0, float(config.poll_interval)), has_workers,
            )


@contextlib.contextmanager
def slurm_cluster(config: SlurmConfig, n_jobs: int, log_directory: str) -> Iterator[Any]:
    """A dask-jobqueue ``SLURMCluster`` of ``n_jobs`` worker jobs configured from ``config``,
    closed (its jobs cancelled) on exit."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as err:
        raise ImportError(
            "job_type='slurm' requires dask-jobqueue, which is not installed; install it with: "
            'pip install "bioimage_py[slurm]"'
        ) from err
    if shutil.which("sbatch") is None:
        raise RuntimeError("job_type='slurm' needs SLURM's sbatch on PATH; it was not found")
    lines = (config.shebang or "#!/usr/bin/env bash").strip().splitlines()
    if not lines[0].startswith("#!"):
        raise ValueError(
            f"SlurmConfig.shebang must start with an interpreter line ('#!...'), got {lines[0]!r}"
        )
    directives = [*config.extra_directives]
    directives += [f"--qos={config.qos}"] if config.qos else []
    directives += [f"--constraint={config.constraint}"] if config.constraint else []
    directives += [f"--gpus={config.gpus}"] if config.gpus else []
    os.makedirs(log_directory, exist_ok=True)
    cluster = SLURMCluster(
        queue=config.partition,
        account=config.account,
        walltime=config.time or "01:00:00",
        cores=int(config.cpus_per_task),
        processes=1,
        # dask needs a memory limit for the worker; without ``mem`` no --mem line is written.
        memory=config.mem or "4GB",
        job_directives_skip=[] if config.mem else ["--mem"],
        job_extra_directives=directives,
        shebang=lines[0],
        job_script_prologue=lines[1:],
        python=config.python_executable or sys.executable,
        interface=config.interface,
        log_directory=log_directory,
        local_directory=log_directory,
        # Any free port for the dashboard: never clash with another scheduler on this node.
        scheduler_options={"dashboard_address": ":0"},
    )
    try:
        cluster.scale(jobs=max(1, n_jobs))
        yield cluster
    finally:
        job_ids = _job_ids(cluster)
        cluster.close()
        # Cancelled jobs write their logs into the job folder until they are gone: the caller
        # removes the folder next, so wait for them (bounded) rather than race them.
        deadline = time.monotonic() + JOB_END_TIMEOUT
        while _alive(job_ids) and time.monotonic() < deadline:
            time.sleep(0.25)


# Seconds to wait for cancelled worker jobs to leave the queue.
JOB_END_TIMEOUT = 60.0


def _job_ids(cluster: Any) -> list[str]:
    job_ids = [str(getattr(job, "job_id", "") or "") for job in cluster.workers.values()]
    return [job_id for job_id in job_ids if job_id]


def _jobs_alive(cluster: Any) -> bool:
    """Whether any of the cluster's SLURM jobs is still queued or running (``squeue``)."""
    return _alive(_job_ids(cluster))


def _alive(job_ids: list[str]) -> bool:
    """Whether any of the SLURM jobs ``job_ids`` is still queued or running (``squeue``)."""
    if not job_ids:
        return False
    try:
        listed = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", ",".join(job_ids)],
            capture_output=True, text=True, timeout=30,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return True  # cannot tell: keep waiting rather than give up on a working cluster
    return bool(set(listed) & set(job_ids))
