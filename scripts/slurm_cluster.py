#!/usr/bin/env python3
"""A real single-node SLURM cluster (slurmctld + slurmd + munge) on this machine, for the tests.

    python scripts/slurm_cluster.py start [--cpus N] [--timeout S]
    python scripts/slurm_cluster.py status
    python scripts/slurm_cluster.py stop [--force]

`start` installs `slurm-wlm` and `munge` with apt when they are missing, starts munged when none
runs, writes a slurm.conf for this host (one node, one default partition `local`) and starts
slurmctld and slurmd, then waits until the node is idle. Everything the daemons write (state,
spool, pid and log files) lives in one folder, `$BIOIMAGE_PY_SLURM_DIR` or
`<tmp>/bioimage_py_slurm`. `stop` ends only the processes `start` started (by pid) and puts back the
/etc/slurm/slurm.conf it replaced. Calling `start` again while the cluster runs only checks it.

The config is also installed as /etc/slurm/slurm.conf because dask-jobqueue and users' shells call
a plain `sbatch`, which without `SLURM_CONF` in its environment reads only that file (and waits
about a minute for a controller when there is none). A file there that this script did not write
is backed up beside it and restored by `stop`.

Needs root (apt, munge, daemons running as SlurmUser=root) and the standard library only, so CI can
run it before anything else is installed. Importable: `tests/slurm_fixture.py` drives it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STATE_DIR = Path(
    os.environ.get("BIOIMAGE_PY_SLURM_DIR", Path(tempfile.gettempdir()) / "bioimage_py_slurm")
)
ETC_CONF = Path("/etc/slurm/slurm.conf")
ETC_BACKUP = ETC_CONF.with_name("slurm.conf.bioimage_py-backup")
CONF_MARKER = "# Written by bioimage_py scripts/slurm_cluster.py; its `stop` removes it."
PARTITION = "local"
APT_PACKAGES = ("slurm-wlm", "munge")
REQUIRED_PROGRAMS = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel",
                     "munged", "munge", "unmunge")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PIDFILE = Path("/run/munge/munged.pid")
# Seconds a slurm client may take: they retry a missing controller for about a minute otherwise.
COMMAND_TIMEOUT = 20.0
READY_STATES = ("idle", "mix", "alloc")


class SlurmClusterError(RuntimeError):
    """The local SLURM cluster could not be installed, started, checked or stopped."""


@dataclasses.dataclass
class ClusterState:
    """What `start` set up, saved as JSON in the state folder so `stop` undoes exactly that.

    Attributes:
        state_dir: the folder holding slurm.conf, state, spool, pid and log files.
        conf_path: the slurm.conf the daemons read (export it as SLURM_CONF).
        partition: the default partition, holding the single node.
        node: the node name (this host's short name).
        cpus: CPUs the node offers to jobs.
        slurmctld_pid, slurmd_pid: the daemons this script started.
        munged_pid: the munged this script started, None when one was already running.
        etc_conf_written: whether /etc/slurm/slurm.conf is this script's copy.
        etc_backup: where the replaced /etc/slurm/slurm.conf is kept, if there was one.
        started_by: "cli" or the name of the test fixture; a fixture stops only what a fixture
            started.
    """

    state_dir: str
    conf_path: str
    partition: str
    node: str
    cpus: int
    slurmctld_pid: int
    slurmd_pid: int
    munged_pid: int | None
    etc_conf_written: bool
    etc_backup: str | None
    started_by: str

    @property
    def env(self) -> dict[str, str]:
        """This process's environment plus SLURM_CONF, for running slurm clients."""
        return {**os.environ, "SLURM_CONF": self.conf_path}


# ---------------------------------------------------------------- small helpers


def _state_file() -> Path:
    return STATE_DIR / "state.json"


def _load_state() -> ClusterState | None:
    try:
        return ClusterState(**json.loads(_state_file().read_text()))
    except FileNotFoundError:
        return None
    except (TypeError, ValueError) as exc:  # a file from another version of this script
        print(f"ignoring unreadable {_state_file()}: {exc}", file=sys.stderr)
        return None


def _save_state(state: ClusterState) -> None:
    tmp = _state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(state), indent=2) + "\n")
    tmp.replace(_state_file())


@contextlib.contextmanager
def _locked(name: str, mode: int) -> Iterator[int]:
    """Hold flock `mode` on `<state dir>/<name>`: one start/stop at a time across processes."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(STATE_DIR / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)


def _operation_lock() -> contextlib.AbstractContextManager[int]:
    return _locked("operation.lock", fcntl.LOCK_EX)


@contextlib.contextmanager
def cluster_in_use() -> Iterator[None]:
    """Mark the cluster as used by this process (a shared lock) while the block runs.

    `stop(only_if_unused=True)` and `stop` without force leave a cluster alone while anyone holds
    this: several test sessions in one checkout share one cluster.
    """
    with _locked("users.lock", fcntl.LOCK_SH):
        yield


def _nobody_uses_it() -> bool:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(STATE_DIR / "users.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the probe lock as well
    return True


def _process_name(pid: int) -> str | None:
    """The program name of a live (non-zombie) process, None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ...": comm may hold spaces or parentheses, so cut at the last ')'.
    name, _, rest = stat[stat.index("(") + 1 :].rpartition(")")
    return None if rest.split()[0] in ("Z", "X") else name


def _is_running(pid: int | None, program: str) -> bool:
    return pid is not None and _process_name(pid) == program[:15]  # comm is cut at 15 characters


def _pids_of(program: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and _process_name(int(p.name)) == program[:15]]


def _run(args: list[str], *, env: dict[str, str] | None = None,
         timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, its output captured; a failure raises SlurmClusterError with that output."""
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SlurmClusterError(f"{' '.join(args)!r} did not finish within {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise SlurmClusterError(f"{args[0]!r} is not installed") from exc
    if check and proc.returncode != 0:
        raise SlurmClusterError(f"{' '.join(args)!r} failed with exit code {proc.returncode}:\n"
                                f"{proc.stdout}{proc.stderr}")
    return proc


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"--- {path}: missing"
    return f"--- last {len(text)} lines of {path}:\n" + "\n".join(text)


def _log_tails() -> str:
    names = ("slurmctld.log", "slurmctld.out", "slurmd.log", "slurmd.out")
    return "\n".join(_tail(STATE_DIR / name) for name in names)


def _signal_and_wait(pid: int, program: str, timeout: float = 15.0) -> None:
    """SIGTERM `pid` if it still runs `program`, SIGKILL it after `timeout` seconds."""
    if not _is_running(pid, program):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_running(pid, program):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- installation and munge


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SlurmClusterError("the local SLURM cluster needs root (apt, munge, SlurmUser=root); "
                                f"euid is {os.geteuid()}")


def ensure_installed() -> bool:
    """apt-get install slurm-wlm and munge when a program of theirs is missing; True if it did."""
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if not missing:
        return False
    print(f"installing {' '.join(APT_PACKAGES)} (missing: {' '.join(missing)})", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt may be running (other developers share the machine): wait for its lock.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
    _run([*apt, "update"], env=env, timeout=600)
    _run([*apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES], env=env, timeout=900)
    still_missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if still_missing:
        raise SlurmClusterError(f"after apt-get install, still missing: {' '.join(still_missing)}")
    return True


def _munge_works() -> bool:
    try:
        cred = _run(["munge", "-n"], timeout=5, check=False)
        if cred.returncode != 0:
            return False
        proc = subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, text=True,
                              timeout=5)
    except (SlurmClusterError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def ensure_munge() -> int | None:
    """Start munged (as user munge) unless one runs; returns its pid when this call started it."""
    if _pids_of("munged"):
        if not _munge_works():
            raise SlurmClusterError("a munged runs but `munge -n | unmunge` fails; fix or stop it")
        return None
    try:
        munge_user = pwd.getpwnam("munge")
    except KeyError as exc:
        raise SlurmClusterError("no user 'munge': is the munge package installed?") from exc
    uid, gid = munge_user.pw_uid, munge_user.pw_gid
    # munged refuses to start when these are missing or writable by others; /run is often a tmpfs
    # emptied at boot, so /run/munge has to be made again. Clients need to enter it: 0755.
    for folder, mode in ((Path("/etc/munge"), 0o700), (Path("/var/lib/munge"), 0o700),
                         (Path("/var/log/munge"), 0o700), (Path("/run/munge"), 0o755)):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, uid, gid)
        folder.chmod(mode)
    if not MUNGE_KEY.exists():
        # 1024 random bytes, as `mungekey` makes (older munge packages have no mungekey).
        MUNGE_KEY.write_bytes(os.urandom(1024))
    os.chown(MUNGE_KEY, uid, gid)
    MUNGE_KEY.chmod(0o400)
    MUNGE_PIDFILE.unlink(missing_ok=True)
    _run(["runuser", "-u", "munge", "--", "munged", "--force"], timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(MUNGE_PIDFILE.read_text().strip())
            if _is_running(pid, "munged") and _munge_works():
                return pid
        time.sleep(0.1)
    raise SlurmClusterError(f"munged did not come up within 10 s\n"
                            f"{_tail(Path('/var/log/munge/munged.log'))}")


# ---------------------------------------------------------------- configuration


def _memory_mb() -> int:
    """About 90% of MemTotal: slurmd drains a node whose RealMemory exceeds what it finds."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.9)
    raise SlurmClusterError("no MemTotal line in /proc/meminfo")


def node_name() -> str:
    """The name slurmd registers under: this host's short name."""
    return socket.gethostname().split(".")[0]


def slurm_conf(*, node: str, cpus: int, memory_mb: int, state_dir: Path) -> str:
    """The text of a slurm.conf for one node on 127.0.0.1, all files under `state_dir`."""
    return f"""{CONF_MARKER}
ClusterName=bioimage-py-local
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroups: containers and CI machines rarely delegate them.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
# CPUs are the only consumable: a job without --mem does not take the whole node's memory.
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Schedule a job as soon as it is submitted, not at the next periodic pass.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
# Trust the CPU count below, so the tests may ask for more CPUs than the machine has.
SlurmdParameters=config_overrides
MailProg=/bin/true
StateSaveLocation={state_dir}/state
SlurmdSpoolDir={state_dir}/spool
SlurmctldPidFile={state_dir}/slurmctld.pid
SlurmdPidFile={state_dir}/slurmd.pid
SlurmctldLogFile={state_dir}/slurmctld.log
SlurmdLogFile={state_dir}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Short timeouts: failures show in seconds, finished jobs leave scontrol after a minute.
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=5
TCPTimeout=2
InactiveLimit=0
KillWait=5
MinJobAge=60
Waittime=0
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _install_etc_conf(text: str) -> str | None:
    """Write `text` to /etc/slurm/slurm.conf, keeping a foreign file there as ETC_BACKUP.

    Returns the backup's path, None when there was nothing to keep. A stale copy of ours (a run
    that never stopped) is simply overwritten, and an existing backup is kept: it is the user's
    original.
    """
    backup: str | None = str(ETC_BACKUP) if ETC_BACKUP.exists() else None
    if ETC_CONF.exists() and not ETC_CONF.read_text(errors="replace").startswith(CONF_MARKER):
        if backup is not None:
            raise SlurmClusterError(
                f"{ETC_CONF} is not ours and {ETC_BACKUP} already exists: refusing to overwrite "
                f"either; move one of them away")
        shutil.copy2(ETC_CONF, ETC_BACKUP)
        backup = str(ETC_BACKUP)
    ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
    tmp = ETC_CONF.with_name(".slurm.conf.bioimage_py-tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(ETC_CONF)
    return backup


def _restore_etc_conf(state: ClusterState) -> None:
    if state.etc_conf_written and ETC_CONF.exists() and \
            ETC_CONF.read_text(errors="replace").startswith(CONF_MARKER):
        ETC_CONF.unlink()
    if state.etc_backup is not None and Path(state.etc_backup).exists():
        shutil.move(state.etc_backup, ETC_CONF)


# ---------------------------------------------------------------- daemons


def _start_daemon(program: str, args: list[str], pidfile: Path, env: dict[str, str]) -> int:
    """Start a slurm daemon (it forks into the background) and return the pid from its pidfile.

    Daemon mode rather than `-D` under a Popen: the daemon is then nobody's child, so stopping it
    from another process (a later `stop`) leaves no zombie behind in the starting one.
    """
    pidfile.unlink(missing_ok=True)
    with open(STATE_DIR / f"{program}.out", "w") as out:
        try:
            proc = subprocess.run([program, *args], env=env, stdout=out, stderr=out,
                                  stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise SlurmClusterError(f"{program} did not fork within {COMMAND_TIMEOUT:g} s\n"
                                    f"{_log_tails()}") from exc
    if proc.returncode != 0:
        raise SlurmClusterError(f"{program} exited with {proc.returncode}\n{_log_tails()}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(pidfile.read_text().strip())
            if _is_running(pid, program):
                return pid
        time.sleep(0.05)
    raise SlurmClusterError(f"{program} wrote no live pid to {pidfile} within 10 s\n{_log_tails()}")


def node_state(env: dict[str, str], node: str) -> str:
    """The node's state as `sinfo -h -o %t` prints it ("idle", "down*", ...), "" if unknown."""
    proc = _run(["sinfo", "-h", "-o", "%t", "-n", node], env=env, timeout=10, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def wait_until_ready(state: ClusterState, timeout: float) -> float:
    """Poll sinfo until the node accepts jobs; returns the seconds waited."""
    start = time.monotonic()
    seen = ""
    while time.monotonic() - start < timeout:
        for program, pid in (("slurmctld", state.slurmctld_pid), ("slurmd", state.slurmd_pid)):
            if not _is_running(pid, program):
                raise SlurmClusterError(f"{program} (pid {pid}) died\n{_log_tails()}")
        seen = node_state(state.env, state.node)
        if seen in READY_STATES:
            return time.monotonic() - start
        time.sleep(0.2)
    raise SlurmClusterError(f"node {state.node} not ready after {timeout:g} s "
                            f"(sinfo says {seen!r})\n{_log_tails()}")


def _running_state() -> ClusterState | None:
    """The saved state when both daemons it names still run, else None."""
    state = _load_state()
    if state is None:
        return None
    if _is_running(state.slurmctld_pid, "slurmctld") and _is_running(state.slurmd_pid, "slurmd"):
        return state
    return None


def start(*, cpus: int | None = None, timeout: float = 30.0,
          started_by: str = "cli") -> ClusterState:
    """Install what is missing and start the cluster, or check the one already running.

    Args:
        cpus: CPUs the node offers (default: this machine's count); more than the machine has is
            allowed, so tests can run several one-CPU jobs on a small machine.
        timeout: seconds to wait for the node to become idle.
        started_by: recorded in the state; `stop(started_by=...)` only stops a matching cluster.

    Returns:
        The cluster's state; export `state.conf_path` as SLURM_CONF.

    Raises:
        SlurmClusterError: not root, apt failed, or a daemon did not come up (with log tails).
    """
    _require_root()
    with _operation_lock():
        running = _running_state()
        if running is not None:
            wait_until_ready(running, timeout)
            return running
        stale = _load_state()
        if stale is not None:  # one daemon died: clear up the other before starting afresh
            _stop_locked(stale)
        ensure_installed()
        munged_pid = ensure_munge()
        node = node_name()
        ncpus = cpus if cpus is not None else os.cpu_count() or 1
        for sub in ("state", "spool"):
            shutil.rmtree(STATE_DIR / sub, ignore_errors=True)
            (STATE_DIR / sub).mkdir(parents=True)
        text = slurm_conf(node=node, cpus=ncpus, memory_mb=_memory_mb(), state_dir=STATE_DIR)
        conf_path = STATE_DIR / "slurm.conf"
        conf_path.write_text(text)
        etc_backup = _install_etc_conf(text)
        state = ClusterState(
            state_dir=str(STATE_DIR), conf_path=str(conf_path), partition=PARTITION, node=node,
            cpus=ncpus, slurmctld_pid=0, slurmd_pid=0, munged_pid=munged_pid,
            etc_conf_written=True, etc_backup=etc_backup, started_by=started_by)
        _save_state(state)  # saved at each step so `stop` can undo a half-finished start
        for name in ("slurmctld.log", "slurmd.log"):
            (STATE_DIR / name).unlink(missing_ok=True)
        env = state.env
        try:
            # -c: a cold start, no jobs or nodes carried over from an earlier run's state files.
            state.slurmctld_pid = _start_daemon(
                "slurmctld", ["-c", "-f", str(conf_path)], STATE_DIR / "slurmctld.pid", env)
            _save_state(state)
            state.slurmd_pid = _start_daemon(
                "slurmd", ["-f", str(conf_path), "-N", node], STATE_DIR / "slurmd.pid", env)
            _save_state(state)
            wait_until_ready(state, timeout)
        except BaseException:
            _stop_locked(state)  # the error already carries the log tails
            raise
        return state


def _cancel_all_jobs(state: ClusterState) -> None:
    """scancel every job on our cluster and wait briefly for them to leave the queue."""
    if not _is_running(state.slurmctld_pid, "slurmctld"):
        return
    env = state.env
    jobs = _run(["squeue", "-h", "-o", "%A"], env=env, check=False).stdout.split()
    if not jobs:
        return
    _run(["scancel", *jobs], env=env, check=False)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not _run(["squeue", "-h", "-o", "%A"], env=env, check=False).stdout.split():
            return
        time.sleep(0.2)


def _stop_locked(state: ClusterState) -> None:
    _cancel_all_jobs(state)
    # slurmd first, so the controller does not mark the node down while it shuts down.
    if state.slurmd_pid:
        _signal_and_wait(state.slurmd_pid, "slurmd")
    if state.slurmctld_pid:
        _signal_and_wait(state.slurmctld_pid, "slurmctld")
    if state.munged_pid is not None:
        _signal_and_wait(state.munged_pid, "munged")
    _restore_etc_conf(state)
    _state_file().unlink(missing_ok=True)


def stop(*, force: bool = False, started_by: str | None = None) -> str:
    """Stop what `start` started (by pid), restore /etc/slurm/slurm.conf; returns what it did.

    Args:
        force: stop even while another process holds `cluster_in_use()`.
        started_by: stop only a cluster started with this `started_by` (a test fixture passes its
            name, so it never stops a cluster a developer started by hand).
    """
    _require_root()
    with _operation_lock():
        state = _load_state()
        if state is None:
            return "not running (no state saved by start)"
        if started_by is not None and state.started_by != started_by:
            return f"left running: started by {state.started_by!r}, not {started_by!r}"
        if not force and not _nobody_uses_it():
            return "left running: another process uses it (see cluster_in_use)"
        _stop_locked(state)
        return "stopped"


def status() -> tuple[bool, str]:
    """(ready?, a human-readable report) for the cluster `start` started."""
    state = _load_state()
    if state is None:
        return False, f"not running (no {_state_file()})"
    lines = [f"state dir: {state.state_dir}", f"SLURM_CONF={state.conf_path}",
             f"started by: {state.started_by}"]
    alive = True
    for program, pid in (("slurmctld", state.slurmctld_pid), ("slurmd", state.slurmd_pid),
                         ("munged", state.munged_pid)):
        if pid is None:
            lines.append(f"{program}: not started by us")
            continue
        running = _is_running(pid, program)
        alive = alive and running
        lines.append(f"{program}: pid {pid} {'running' if running else 'NOT running'}")
    node = node_state(state.env, state.node) if alive else ""
    lines.append(f"node {state.node} ({state.cpus} CPUs) in partition {state.partition}: "
                 f"{node or 'unknown'}")
    return alive and node in READY_STATES, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="install if needed, start, wait until the node is idle")
    p_start.add_argument("--cpus", type=int, default=None,
                         help="CPUs the node offers (default: this machine's)")
    p_start.add_argument("--timeout", type=float, default=30.0,
                         help="seconds to wait for the node (default 30)")
    p_stop = sub.add_parser("stop", help="stop what start started, restore configs")
    p_stop.add_argument("--force", action="store_true",
                        help="stop even while a test session uses the cluster")
    sub.add_parser("status", help="report the daemons and the node; exit 0 when ready")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            began = time.monotonic()
            state = start(cpus=args.cpus, timeout=args.timeout)
            print(f"ready in {time.monotonic() - began:.1f} s: partition {state.partition}, "
                  f"node {state.node} ({state.cpus} CPUs)\nexport SLURM_CONF={state.conf_path}")
            return 0
        if args.command == "stop":
            print(stop(force=args.force))
            return 0
        ready, report = status()
        print(report)
        return 0 if ready else 3
    except SlurmClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
