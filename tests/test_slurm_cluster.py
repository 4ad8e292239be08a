"""The local SLURM cluster of scripts/slurm_cluster.py, end to end: sbatch, squeue, scancel, and
dask-jobqueue's SLURMCluster with workers started as SLURM jobs.

Accounting is off on this cluster, so `sacct` knows nothing: finished jobs are checked with
`scontrol show job` (kept MinJobAge=60 s after they end) and running ones with squeue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["slurm_fixture"]

WAIT = 60.0  # seconds any single step may take before the test fails (a bound, not a measurement)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def slurm(*args: str) -> str:
    """Run a slurm client command (SLURM_CONF comes from the fixture); return its stdout."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def queue_state(job_id: str) -> str:
    """The job's state in squeue ("PENDING", "RUNNING", ...), "" once it left the queue."""
    return slurm("squeue", "-h", "-j", job_id, "-o", "%T").strip()


def job_field(job_id: str, field: str) -> str:
    """One `Key=value` field of `scontrol show job` (finished jobs stay there for MinJobAge)."""
    for token in slurm("scontrol", "show", "job", job_id).split():
        key, _, value = token.partition("=")
        if key == field:
            return value
    raise AssertionError(f"no {field} in `scontrol show job {job_id}`")


def sbatch(*args: str) -> str:
    return slurm("sbatch", "--parsable", *args).strip().split(";")[0]


def test_start_again_reports_the_running_cluster(slurm_cluster: Any, slurm_script: Any) -> None:
    again = slurm_script.start(started_by="pytest")
    assert (again.slurmctld_pid, again.slurmd_pid) == (
        slurm_cluster.slurmctld_pid, slurm_cluster.slurmd_pid)
    status = subprocess.run([sys.executable, slurm_script.__file__, "status"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"partition {slurm_cluster.partition}" in status.stdout


def test_sbatch_job_runs_then_leaves_the_queue(slurm_cluster: Any, tmp_path: Path) -> None:
    started, release, output = tmp_path / "started", tmp_path / "release", tmp_path / "output"
    job_id = sbatch("-o", str(tmp_path / "job.log"), "--wrap",
                    f"touch {started}; while [ ! -e {release} ]; do sleep 0.1; done; "
                    f"echo $SLURM_JOB_ID $SLURM_JOB_PARTITION > {output}")
    wait_for(started.exists, f"job {job_id} to start")
    assert queue_state(job_id) == "RUNNING"
    release.touch()
    wait_for(lambda: queue_state(job_id) == "", f"job {job_id} to leave squeue")
    assert output.read_text().split() == [job_id, slurm_cluster.partition]
    assert job_field(job_id, "JobState") == "COMPLETED"
    assert job_field(job_id, "ExitCode") == "0:0"


def test_scancel_removes_a_sleeping_job(slurm_cluster: Any, tmp_path: Path) -> None:
    job_id = sbatch("-o", str(tmp_path / "job.log"), "--wrap", "sleep 600")
    wait_for(lambda: queue_state(job_id) == "RUNNING", f"job {job_id} to run")
    slurm("scancel", job_id)
    wait_for(lambda: queue_state(job_id) == "", f"cancelled job {job_id} to leave squeue")
    assert job_field(job_id, "JobState") == "CANCELLED"


def test_dask_jobqueue_workers_are_slurm_jobs(slurm_cluster: Any, tmp_path: Path) -> None:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    cluster = SLURMCluster(
        cores=1, processes=1, memory="1GB", walltime="00:10:00",
        queue=slurm_cluster.partition, python=sys.executable,
        local_directory=str(tmp_path / "dask-local"), log_directory=str(tmp_path / "dask-logs"),
        # Everything on loopback: the workers run on this machine and find the scheduler there.
        # A free port for the HTTP server: the default 8787 clashes with other sessions (a warning).
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    )
    with cluster, Client(cluster) as client:
        cluster.scale(2)
        client.wait_for_workers(2, timeout=WAIT)
        job_ids = {job.job_id for job in cluster.workers.values()}
        assert len(job_ids) == 2 and None not in job_ids

        result, job_id = client.submit(
            lambda x: (x + 1, os.environ.get("SLURM_JOB_ID")), 1).result(timeout=WAIT)
        assert result == 2
        assert job_id in job_ids  # it ran inside one of the SLURM jobs

        job_of_worker = client.run(lambda: os.environ["SLURM_JOB_ID"])
        assert set(job_of_worker.values()) == job_ids
        for job in job_ids:
            assert queue_state(job) == "RUNNING"

        victim_address, victim_job = sorted(job_of_worker.items())[0]
        slurm("scancel", victim_job)
        wait_for(lambda: victim_address not in client.scheduler_info()["workers"],
                 f"worker {victim_address} (job {victim_job}) to leave the scheduler")
        wait_for(lambda: queue_state(victim_job) == "", f"job {victim_job} to leave squeue")
        survivor = set(client.scheduler_info()["workers"])
        assert len(survivor) == 1
        assert client.submit(lambda x: x * 3, 5, workers=list(survivor)).result(timeout=WAIT) == 15

    # Closing the cluster scancels the remaining worker job.
    for job in job_ids:
        wait_for(lambda job=job: queue_state(job) == "", f"job {job} to leave squeue after close")


def test_a_foreign_etc_slurm_conf_is_kept_and_restored(
        slurm_script: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup logic on a stand-in /etc path (the real one belongs to the running cluster)."""
    script = slurm_script
    etc_conf = tmp_path / "etc" / "slurm.conf"
    backup = etc_conf.with_name("slurm.conf.bioimage_py-backup")
    monkeypatch.setattr(script, "ETC_CONF", etc_conf)
    monkeypatch.setattr(script, "ETC_BACKUP", backup)
    etc_conf.parent.mkdir()
    etc_conf.write_text("ClusterName=site\n")

    ours = f"{script.CONF_MARKER}\nClusterName=bioimage-py-local\n"
    kept = script._install_etc_conf(ours)
    assert kept == str(backup)
    assert etc_conf.read_text() == ours and backup.read_text() == "ClusterName=site\n"
    # A second start over our own (stale) copy keeps the original backup.
    assert script._install_etc_conf(ours) == str(backup)
    assert backup.read_text() == "ClusterName=site\n"

    state = script.ClusterState(
        state_dir=str(tmp_path), conf_path=str(etc_conf), partition="local", node="n", cpus=1,
        slurmctld_pid=0, slurmd_pid=0, munged_pid=None, etc_conf_written=True, etc_backup=kept,
        started_by="pytest")
    script._restore_etc_conf(state)
    assert etc_conf.read_text() == "ClusterName=site\n" and not backup.exists()


def test_slurm_conf_names_this_node_on_loopback(slurm_script: Any, tmp_path: Path) -> None:
    script = slurm_script
    text = script.slurm_conf(node="node1", cpus=3, memory_mb=1000, state_dir=tmp_path)
    lines = set(text.splitlines())
    assert "SlurmctldHost=node1(127.0.0.1)" in lines
    assert "NodeName=node1 NodeAddr=127.0.0.1 CPUs=3 RealMemory=1000 State=UNKNOWN" in lines
    assert f"PartitionName={script.PARTITION} Nodes=node1 Default=YES MaxTime=INFINITE State=UP" \
        in lines
    assert f"StateSaveLocation={tmp_path}/state" in lines
