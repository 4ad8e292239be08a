"""The block-wise runner against the peers: Gaussian smoothing zarr -> zarr, and per-block cost.

BUILD FIRST, IN RELEASE MODE: timings of a debug build are meaningless.

    .venv/bin/maturin develop --release            # (or: pip install .)
    python benches/bench_runner.py                 # 512^3, best of 3 (~10 min on 2 cores)
    python benches/bench_runner.py --quick         # 256^3, 1 repetition, 1,000 no-op blocks
    python benches/bench_runner.py --only "ours local,dask threads" --json out.json

Needs dask[distributed], scipy and psutil here, and bioimage-py 0.2.2 with zarr-python in its own
venv (``--v02-python``, default ``/work/v02/bin/python``; ``--no-v02`` skips it).

Data: ``volumes.synthetic_volume`` (uint16, the volume of the other benchmarks), stored by
zarr-python as zarr v3 zstd(3) with 64^3 chunks.

1. Smoothing: ``gaussian_filter(block.astype(float32), sigma=2)`` of every 128^3 block read with an
   8-voxel halo (clipped to the volume), written to a float32 zarr v3 zstd(3) array with 64^3
   chunks (created by zarr-python before the timed runs), ``--workers`` (2) workers:
   - ours: ``get_runner("local"|"subprocess"|"dask").run(smooth_block, src, out,
     block_shape=128^3, halo=8, num_workers=2, has_return_val=True)`` on ``open_source``
     arrays (our native zarr reader and writer). ``dask`` runs on a LocalCluster of 2
     single-threaded worker processes started before the timed run (startup NOT included;
     the workers have imported numpy, scipy, zarr and bioimage_py) and shared with dask's run.
     ``subprocess`` starts its fork server and worker pool in the run (included); like every
     spawn/forkserver worker, each worker re-imports this script as ``__mp_main__`` (numpy,
     scipy, bioimage_py), as it would a user's script.
   - dask: ``da.from_zarr(chunks=128^3).map_overlap(smooth, depth=8, boundary="reflect")
     .to_zarr(out)`` on the same LocalCluster ("dask distributed") and on the threaded scheduler
     with 2 threads ("dask threads").
   - bioimage-py 0.2.2: its ``get_runner("local"|"subprocess").run(...)`` with the same function
     on zarr-python arrays (``bench_runner_v02.py``, run with 0.2's interpreter).
   The per-block function is the same code everywhere (``runner_child.smooth_block``).
2. Per-block cost: a function that does nothing over a 10x10x100 grid of 1-voxel blocks (10,000
   blocks) of a small zarr array (nothing is read): ours local with 1 and 2 threads, subprocess
   and dask with 2 workers; dask: ``da.zeros(grid, chunks=1).map_blocks(no-op).persist()`` (10,000
   tasks after blockwise fusion) on the LocalCluster and on 2 threads; 0.2's local and subprocess
   runners.

Every run is the first of a fresh child process (runners sharing a LocalCluster run in one
child), in ``--repeat`` rounds that each run every runner once, so a busy spell of the machine
hits all runners alike; the best wall time counts. Measured per run:
- wall: the whole call, opening the arrays included.
- in function: for our runner and 0.2's, the sum over blocks of the time spent inside the
  per-block function (``time.perf_counter`` around read + compute + write, returned with
  ``has_return_val=True``); for dask, the sum of the task durations measured where they run
  (distributed: the task stream's "compute" intervals of every task, reading, overlap and store
  tasks included, transfers not; threads: every task timed in its worker thread by a timing
  thread pool). Overhead = wall - in function / workers: the wall time not explained by the
  work itself spread over the workers.
- CPU and memory: the parent samples the child's process tree (the child and every descendant:
  worker processes, fork server, dask workers) every 50 ms with psutil: per process RSS and
  user+system CPU time. Peak RSS = the largest sum of the tree's RSS in a run. "Above
  interpreters" = the largest sum over processes of (RSS - that process's baseline), negative
  terms dropped, where the baseline is its RSS just before the run, or, for processes started
  during the run, the RSS of an idle interpreter that imported what a worker imports (measured
  once per venv). CPU = the tree's CPU time growth during the run (processes that end lose at
  most one sampling interval).
Every output is compared with scipy's ``gaussian_filter`` of the whole volume (computed in slabs
with the same halo, so exact) after the first round. The load average and the tree's CPU time
are printed beside the wall times: on a busy machine wall times are provisional.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
import runner_child
import volumes

KEY = "data"
CHUNKS = (64, 64, 64)
BLOCK_SHAPE = (128, 128, 128)
NOOP_GRID = (10, 10, 100)
QUICK_NOOP_GRID = (10, 10, 10)
SAMPLE_INTERVAL = 0.05
V02_PYTHON = "/work/v02/bin/python"
HERE = os.path.dirname(os.path.abspath(__file__))

OUR_JOB_TYPES = {
    "ours local (1 thread)": "local",
    "ours local": "local",
    "ours local (no chunk cache)": "local",
    "ours subprocess": "subprocess",
    "ours dask": "dask",
}
CLUSTER_METHODS = ("ours dask", "dask distributed")
V02_METHODS = ("0.2 local", "0.2 subprocess")
# Children: the runners of a group run in one child process (a group shares its LocalCluster).
SMOOTH_GROUPS = [
    ["ours local"], ["ours local (no chunk cache)"], ["ours subprocess"],
    ["ours dask", "dask distributed"], ["dask threads"],
    ["0.2 local"], ["0.2 subprocess"],
]
NOOP_GROUPS = [
    ["ours local (1 thread)", "ours local", "ours subprocess"],
    ["ours dask", "dask distributed"], ["dask threads"], ["0.2 local", "0.2 subprocess"],
]
OURS = tuple(OUR_JOB_TYPES)
DASK = ("dask distributed", "dask threads")


def workers_of(method: str, workers: int) -> int:
    return 1 if method == "ours local (1 thread)" else workers


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the child process: one group of runners, timed ---------------------------------------------


class TimingThreadPool(ThreadPoolExecutor):
    """A thread pool for dask's threaded scheduler that times every task where it runs."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.busy: list[float] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        def timed() -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.busy.append(time.perf_counter() - started)  # list.append is atomic

        return super().submit(timed)


def _warm_imports() -> None:
    """Run on every dask worker before timing: what a long-lived cluster has imported."""
    import bioimage_py.runner.worker  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import zarr  # noqa: F401


def _blocks(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> int:
    return int(np.prod([-(-n // b) for n, b in zip(shape, block_shape)]))


def our_measurement(method: str, config: dict[str, Any], client: Any) -> runner_child.Measurement:
    from bioimage_py import get_runner, open_source

    job_type = OUR_JOB_TYPES[method]
    runner = get_runner(job_type, {"client": client} if job_type == "dask" else None)
    workers = workers_of(method, config["workers"])
    block_shape = tuple(config["block_shape"])
    container, key = config["input"]
    # our arrays keep decoded chunks in a cache (256 MiB per array by default), so that halo
    # reads decode each chunk about once; one variant turns it off to show its memory cost.
    options = {"chunk_cache_bytes": 0} if method == "ours local (no chunk cache)" else {}

    if config["workload"] == "smooth":
        def measure() -> tuple[float, int]:
            source = open_source(container, key, **options)
            output = open_source(*config["outputs"][method], mode="r+", **options)
            seconds = runner.run(
                runner_child.smooth_block, source, output, block_shape=block_shape,
                halo=runner_child.HALO, num_workers=workers, has_return_val=True,
            )
            return float(sum(seconds)), len(seconds)
    else:
        def measure() -> tuple[float, int]:
            source = open_source(container, key)
            runner.run(runner_child.noop_block, source, block_shape=block_shape,
                       num_workers=workers)
            return 0.0, _blocks(source.shape, block_shape)
    return measure


def dask_measurement(method: str, config: dict[str, Any], client: Any) -> runner_child.Measurement:
    import dask
    import dask.array as da
    import zarr

    workers = config["workers"]
    container, key = config["input"]

    def compute(collection: Any, keep: bool = False) -> float:
        """Compute (``keep``: persist, results stay where they are made, as our runner's
        no-op results do); the summed task time, measured where the tasks run."""
        if method == "dask distributed":
            from distributed import get_task_stream, wait

            with get_task_stream(client) as stream:
                if keep:
                    persisted = client.persist(collection)
                    wait(persisted)
                    del persisted
                else:
                    dask.compute(collection, scheduler=client)
            return sum(part["stop"] - part["start"] for task in stream.data
                       for part in task["startstops"] if part["action"] == "compute")
        pool = TimingThreadPool(workers)
        with pool:
            (dask.persist if keep else dask.compute)(collection, scheduler="threads", pool=pool)
        return sum(pool.busy)

    if config["workload"] == "smooth":
        def measure() -> tuple[float, int]:
            source = da.from_zarr(container, component=key, chunks=tuple(config["block_shape"]))
            smoothed = source.map_overlap(
                runner_child.smooth_array, depth=runner_child.HALO, boundary="reflect",
                dtype=np.float32,
            )
            output = zarr.open_array(os.path.join(*config["outputs"][method]), mode="r+")
            stored = smoothed.to_zarr(output, compute=False)
            return compute(stored), smoothed.npartitions
    else:
        shape, block_shape = tuple(config["shape"]), tuple(config["block_shape"])

        def measure() -> tuple[float, int]:
            # one layer of n tasks: n dask.delayed objects would be n graph layers, which dask
            # culls one by one (quadratic: 39 s of 52 for 10,000 no-op tasks on 2 threads)
            blocks = da.zeros(shape, chunks=block_shape, dtype=np.uint8).map_blocks(
                runner_child.noop_chunk, dtype=np.uint8)
            return compute(blocks, keep=True), blocks.npartitions
    return measure


class _CopyingReader:
    """A numpy array whose reads return new arrays, as reads from storage do."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.array(self.array[index])


def function_peak_bytes(block_shape: tuple[int, ...]) -> int:
    """How far the per-block function alone (numpy in, numpy out, no runner, one block with a
    full halo) raises this fresh process's peak RSS: the floor of any runner's memory per
    worker."""
    from bioimage_py.blocking import Blocking

    shape = tuple(3 * b for b in block_shape)  # the centre block of a 3x3x3 grid has every halo
    data = np.ones(shape, dtype=np.uint16)  # written, so resident before the baseline
    out = np.ones(shape, dtype=np.float32)
    blocking = Blocking(shape, block_shape)
    block = blocking.get_block_with_halo(blocking.number_of_blocks // 2, [runner_child.HALO] * 3)
    if not harness.reset_peak_rss():
        raise RuntimeError("cannot reset the peak RSS here (/proc/self/clear_refs)")
    before = harness.rss_bytes()
    runner_child.smooth_block(block, [_CopyingReader(data)], [out], None)
    return harness.peak_rss_bytes() - before


def child_main(config: dict[str, Any]) -> None:
    runner_child.register_by_value()
    import bioimage_py.runner.worker  # noqa: F401
    import scipy.ndimage  # noqa: F401  (what a worker imports: part of the idle interpreter)
    import zarr  # noqa: F401

    if config["workload"] == "idle":
        runner_child.emit({"rss": runner_child.rss_bytes()})
        return
    if config["workload"] == "function":
        runner_child.emit({"peak": function_peak_bytes(tuple(config["block_shape"]))})
        return
    methods = config["methods"]
    cluster = client = None
    startup = None
    if any(m in CLUSTER_METHODS for m in methods):
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(n_workers=config["workers"], threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        client.run(_warm_imports)
        startup = time.perf_counter() - started
        runner_child.log(f"  LocalCluster of {config['workers']} workers: {startup:.2f} s")
    try:
        measurements = {
            m: (our_measurement if m in OUR_JOB_TYPES else dask_measurement)(m, config, client)
            for m in methods
        }
        runs = runner_child.time_methods(measurements, int(config["repeat"]))
    finally:
        if client is not None:
            client.close()
            cluster.close()
    runner_child.emit({"runs": runs, "cluster_startup": startup})


# --- the parent: sampling a child's process tree -----------------------------------------------

ProcessKey = tuple[int, float]  # (pid, create time): a pid reused later is another process


@dataclass
class Sample:
    t: float
    processes: dict[ProcessKey, tuple[int, float]]  # RSS bytes, user + system CPU seconds


class TreeSampler:
    """Samples RSS and CPU time of a process and all its descendants in a thread."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.samples: list[Sample] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            t = time.time()
            snapshot: dict[ProcessKey, tuple[int, float]] = {}
            try:
                processes = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                processes = []
            for process in processes:
                try:
                    with process.oneshot():
                        cpu = process.cpu_times()
                        snapshot[(process.pid, process.create_time())] = (
                            process.memory_info().rss, cpu.user + cpu.system)
                except psutil.Error:
                    continue  # ended meanwhile
            if snapshot:
                self.samples.append(Sample(t, snapshot))
            self._stop.wait(self._interval)

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join()
        return self.samples


def phase_usage(samples: list[Sample], t0: float, t1: float, idle_rss: int) -> dict[str, Any]:
    """Peak tree RSS, peak RSS above the baselines and CPU time of the run between t0 and t1."""
    before = [s for s in samples if s.t < t0]
    baseline = before[-1].processes if before else {}
    during = [s for s in samples if t0 <= s.t <= t1]
    after = [s for s in samples if s.t > t1][:1]
    usage: dict[str, Any] = {"samples": len(during), "peak_rss": None, "above_baseline": None,
                             "baseline_rss": sum(r for r, _ in baseline.values())}
    if during:
        usage["peak_rss"] = max(sum(r for r, _ in s.processes.values()) for s in during)
        usage["above_baseline"] = max(
            sum(max(0, rss - (baseline[k][0] if k in baseline else idle_rss))
                for k, (rss, _) in s.processes.items())
            for s in during
        )
    last_cpu: dict[ProcessKey, float] = {}
    for sample in during + after:
        for k, (_, cpu) in sample.processes.items():
            last_cpu[k] = cpu
    usage["cpu"] = sum(cpu - (baseline[k][1] if k in baseline else 0.0)
                       for k, cpu in last_cpu.items())
    return usage


@dataclass
class Side:
    """How to start a child of one venv: its command and environment."""

    command: list[str]
    env: dict[str, str] | None = None


def run_child(side: Side, config: dict[str, Any], idle_rss: int) -> dict[str, Any]:
    """Run one child with its tree sampled; its result, each run with its usage."""
    process = subprocess.Popen([*side.command, json.dumps(config)], stdout=subprocess.PIPE,
                               text=True, env=side.env)
    sampler = TreeSampler(process.pid)
    stdout, _ = process.communicate()
    samples = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"the child for {config['methods']} failed "
                           f"(exit status {process.returncode}); see its stderr above")
    lines = [line for line in stdout.splitlines() if line.startswith(runner_child.RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"the child for {config['methods']} printed no result")
    result = json.loads(lines[-1][len(runner_child.RESULT_PREFIX):])
    for run in result.get("runs", []):
        run.update(phase_usage(samples, run["t0"], run["t1"], idle_rss))
    return result


# --- the parent: data, reference, runs ----------------------------------------------------------


def smoothed_reference(volume: np.ndarray, slab: int = 64) -> np.ndarray:
    """scipy's gaussian_filter of the whole volume, computed in z slabs grown by the halo."""
    from scipy.ndimage import gaussian_filter

    halo = runner_child.HALO
    reference = np.empty(volume.shape, dtype=np.float32)
    for z0 in range(0, volume.shape[0], slab):
        z1 = min(volume.shape[0], z0 + slab)
        lo, hi = max(0, z0 - halo), min(volume.shape[0], z1 + halo)
        part = gaussian_filter(volume[lo:hi].astype(np.float32), runner_child.SIGMA)
        reference[z0:z1] = part[z0 - lo: z0 - lo + (z1 - z0)]
    return reference


def compare(path: str, reference: np.ndarray, slab: int = 64) -> dict[str, Any]:
    """How the array at ``path`` (read by zarr-python) differs from the reference."""
    import zarr

    array = zarr.open_array(path, mode="r")
    max_diff, close = 0.0, True
    for z0 in range(0, reference.shape[0], slab):
        got, want = array[z0:z0 + slab], reference[z0:z0 + slab]
        max_diff = max(max_diff, float(np.max(np.abs(got.astype(np.float64) - want))))
        close = close and bool(np.allclose(got, want, rtol=1e-5, atol=1e-3))
    return {"max_abs_diff": max_diff, "allclose": close}


def child_value(side: Side, config: dict[str, Any], name: str) -> int:
    """``name`` of the result of a short child (no sampling)."""
    process = subprocess.run([*side.command, json.dumps(config)], stdout=subprocess.PIPE,
                             text=True, check=True, env=side.env)
    line = [x for x in process.stdout.splitlines() if x.startswith(runner_child.RESULT_PREFIX)][-1]
    return int(json.loads(line[len(runner_child.RESULT_PREFIX):])[name])


def run(args: argparse.Namespace, root: str) -> dict[str, Any]:
    wanted = None if args.only is None else {m.strip() for m in args.only.split(",")}

    def groups_of(groups: list[list[str]]) -> list[list[str]]:
        chosen = [[m for m in g if (wanted is None or m in wanted)
                   and (args.v02_python or m not in V02_METHODS)] for g in groups]
        return [g for g in chosen if g]

    v02_script = os.path.join(HERE, "bench_runner_v02.py")
    sides = {"ours": Side([sys.executable, os.path.abspath(__file__), "--child"])}
    if args.v02_python:
        # 0.2's package is also named bioimage_py: a PYTHONPATH pointing at ours must not reach it
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        sides["v02"] = Side([args.v02_python, v02_script], env)
    # RSS of an idle interpreter that imported what a worker imports, per venv
    idle = {name: child_value(side, {"workload": "idle"}, "rss") for name, side in sides.items()}
    log(f"idle interpreter RSS: {', '.join(f'{s} {b / 2**20:.0f} MiB' for s, b in idle.items())}")
    function_peak = child_value(sides["ours"], {"workload": "function",
                                                "block_shape": list(BLOCK_SHAPE)}, "peak")
    log(f"the per-block function alone: {function_peak / 2**20:.0f} MiB above its input")

    log(f"generating the {args.size}^3 volume ...")
    volume = volumes.synthetic_volume(args.size)
    input_container = os.path.join(root, "input.zarr")
    volumes.write_zarr_v3_zstd(input_container, KEY, volume, CHUNKS)
    log("computing the reference (scipy, whole volume) ...")
    reference = smoothed_reference(volume)
    noop_container = os.path.join(root, "noop.zarr")
    volumes.create_zarr_v3_zstd(noop_container, KEY, args.noop_grid, np.uint8, args.noop_grid)

    def side_of(methods: list[str]) -> str:
        return "v02" if methods[0] in V02_METHODS else "ours"

    results: dict[str, Any] = {"smooth": {}, "noop": {}, "idle_rss": idle, "checks": {},
                               "cluster_startup": [], "function_peak": function_peak}
    workloads = {w.strip() for w in args.workloads.split(",")}
    smooth_groups = groups_of(SMOOTH_GROUPS) if "smooth" in workloads else []
    noop_groups = groups_of(NOOP_GROUPS) if "noop" in workloads else []
    outputs = {}
    for m in (m for group in smooth_groups for m in group):
        container = os.path.join(root, f"out_{m.replace(' ', '_')}.zarr")
        volumes.create_zarr_v3_zstd(container, KEY, volume.shape, np.float32, CHUNKS)
        outputs[m] = [container, KEY]

    def collect(workload: str, result: dict[str, Any], round_: int) -> None:
        if result.get("cluster_startup") is not None:
            results["cluster_startup"].append(result["cluster_startup"])
        for run in result["runs"]:
            run["rep"] = round_
            results[workload].setdefault(run["method"], []).append(run)

    # Rounds: every group once per round, in a fresh child, so that a busy spell of the shared
    # machine hits every runner alike rather than all repetitions of one.
    for round_ in range(args.repeat):
        for methods in smooth_groups:
            side = side_of(methods)
            config = {
                "workload": "smooth", "methods": methods, "workers": args.workers, "repeat": 1,
                "block_shape": list(BLOCK_SHAPE),
                "input": [input_container, KEY] if side == "ours"
                else os.path.join(input_container, KEY),
                "outputs": {m: outputs[m] if side == "ours" else os.path.join(*outputs[m])
                            for m in methods},
            }
            log(f"round {round_ + 1}/{args.repeat}, smoothing: {', '.join(methods)} "
                f"(load {os.getloadavg()[0]:.1f})")
            collect("smooth", run_child(sides[side], config, idle[side]), round_)
            for m in methods if round_ == 0 else []:
                results["checks"][m] = compare(os.path.join(*outputs[m]), reference)
                log(f"  {m} vs scipy: {results['checks'][m]}")
        for methods in noop_groups:
            side = side_of(methods)
            config = {
                "workload": "noop", "methods": methods, "workers": args.workers, "repeat": 1,
                "block_shape": [1, 1, 1], "shape": list(args.noop_grid),
                "input": [noop_container, KEY] if side == "ours"
                else os.path.join(noop_container, KEY),
            }
            log(f"round {round_ + 1}/{args.repeat}, no-op blocks: {', '.join(methods)} "
                f"(load {os.getloadavg()[0]:.1f})")
            collect("noop", run_child(sides[side], config, idle[side]), round_)
    for container, _ in outputs.values():
        shutil.rmtree(container, ignore_errors=True)
    return {**results, "size": args.size, "workers": args.workers, "repeat": args.repeat,
            "block_shape": list(BLOCK_SHAPE), "noop_grid": list(args.noop_grid),
            "load_end": os.getloadavg(), "environment": harness.environment(),
            "package": os.path.dirname(__import__("bioimage_py").__file__)}


# --- the report ---------------------------------------------------------------------------------


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["wall"])


def overhead(run: dict[str, Any], workers: int) -> float:
    return run["wall"] - run["inside"] / workers


def mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f}"


def smooth_table(results: dict[str, Any]) -> str:
    rows_in = results["smooth"]
    if not rows_in:
        return ""
    workers = results["workers"]
    block_bytes = int(np.prod(results["block_shape"])) * 4
    ours_best = min((best(r)["wall"] for m, r in rows_in.items() if m in OURS), default=None)
    headers = ["runner", "wall s (best)", "runs s", "/ ours best", "CPU s", "in function s",
               "overhead s", "peak RSS MiB", "above interpreters MiB (blocks/worker)",
               "max |diff|", "load"]
    rows = []
    for method, runs in rows_in.items():
        b = best(runs)
        above = max((r["above_baseline"] or 0) for r in runs)
        peak = max((r["peak_rss"] or 0) for r in runs)
        check = results["checks"].get(method, {})
        diff = f"{check.get('max_abs_diff', float('nan')):.2g}" + (
            "" if check.get("allclose", False) else " MISMATCH")
        ratio = None if ours_best is None else b["wall"] / ours_best
        over = overhead(b, workers)
        rows.append([
            method, harness.fmt_seconds(b["wall"]),
            " / ".join(f"{r['wall']:.1f}" for r in runs), harness.fmt_ratio(ratio),
            harness.fmt_seconds(b["cpu"]), harness.fmt_seconds(b["inside"]),
            f"{over:.2f} ({100 * over / b['wall']:.0f}%)", mib(peak),
            f"{mib(above)} ({above / workers / block_bytes:.1f})", diff,
            f"{b.get('load', float('nan')):.1f}" if "load" in b else "",
        ])
    title = (
        f"### Gaussian smoothing (sigma {runner_child.SIGMA:g}, halo {runner_child.HALO}) of "
        f"{results['size']}^3 uint16 zarr v3 -> float32 zarr v3, chunks 64^3, blocks "
        f"{'x'.join(map(str, results['block_shape']))}, {workers} workers, best of "
        f"{results['repeat']}\n\n"
        f"Overhead = wall - in function / {workers}. Block = "
        f"{block_bytes / 2**20:.0f} MiB (float32); the per-block function alone (numpy in and "
        f"out) peaks {results['function_peak'] / 2**20:.0f} MiB = "
        f"{results['function_peak'] / block_bytes:.1f} blocks above its input. Idle interpreters: "
        + ", ".join(f"{s} {b / 2**20:.0f} MiB" for s, b in results["idle_rss"].items())
        + (f"; LocalCluster startup {max(results['cluster_startup']):.1f} s at most (not "
           "timed)" if results["cluster_startup"] else "")
        + ".\n"
    )
    return title + "\n" + harness.markdown_table(headers, rows)


def noop_table(results: dict[str, Any]) -> str:
    rows_in = results["noop"]
    if not rows_in:
        return ""
    ours_best = min((best(r)["wall"] for m, r in rows_in.items() if m in OURS), default=None)
    headers = ["runner", "workers", "blocks", "wall s (best)", "us / block", "CPU us / block",
               "/ ours best", "load"]
    rows = []
    for method, runs in rows_in.items():
        b = best(runs)
        rows.append([
            method, str(workers_of(method, results["workers"])), str(b["blocks"]),
            harness.fmt_seconds(b["wall"]), f"{1e6 * b['wall'] / b['blocks']:.0f}",
            f"{1e6 * b['cpu'] / b['blocks']:.0f}",
            harness.fmt_ratio(None if ours_best is None else b["wall"] / ours_best),
            f"{b['load']:.1f}" if "load" in b else "",
        ])
    grid = "x".join(map(str, results["noop_grid"]))
    title = (f"### Per-block cost: a no-op function over {grid} one-voxel blocks, best of "
             f"{results['repeat']}\n")
    return title + "\n" + harness.markdown_table(headers, rows)


def targets(results: dict[str, Any]) -> str:
    smooth = results["smooth"]
    workers = results["workers"]
    lines = []
    ours = {m: best(r) for m, r in smooth.items() if m in OURS}
    if not ours:
        return ""
    fastest = min(ours, key=lambda m: ours[m]["wall"])
    for peer_group, label in ((DASK, "dask"), (V02_METHODS, "0.2")):
        peers = {m: best(smooth[m]) for m in peer_group if m in smooth}
        if peers:
            peer = min(peers, key=lambda m: peers[m]["wall"])
            ratio = peers[peer]["wall"] / ours[fastest]["wall"]
            lines.append(f"- faster than {label}: {fastest} {ours[fastest]['wall']:.2f} s vs "
                         f"{peer} {peers[peer]['wall']:.2f} s = {ratio:.2f}x: "
                         f"{'yes' if ratio > 1 else 'NO'}")
    if "dask distributed" in smooth:
        dask_over = overhead(best(smooth["dask distributed"]), workers)
        for m, run in ours.items():
            over = overhead(run, workers)
            lines.append(f"- overhead <= half of dask distributed's ({dask_over:.2f} s): {m} "
                         f"{over:.2f} s: {'yes' if over <= dask_over / 2 else 'NO'}")
    block_bytes = int(np.prod(results["block_shape"])) * 4
    floor = results["function_peak"] / block_bytes
    for m in ours:
        above = max((r["above_baseline"] or 0) for r in smooth[m]) / workers / block_bytes
        lines.append(f"- memory <= 2 blocks per worker above the interpreters: {m} "
                     f"{above:.1f} blocks per worker: {'yes' if above <= 2 else 'NO'} (the "
                     f"function alone needs {floor:.1f}; the rest, {above - floor:.1f}, is the "
                     "runner's and the arrays')")
    return "### Targets\n\n" + "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    env = results["environment"]
    head = (f"## bench_runner ({env['platform']}, {env['cpu_count']} cores, Python "
            f"{env['python']}); load average at the end {results['load_end'][0]:.1f}; "
            f"bioimage_py from {results['package']} (_core "
            f"{env['core_extension_bytes'] / 2**20:.0f} MiB)\n")
    parts = [head, smooth_table(results), noop_table(results), targets(results)]
    return "\n\n".join(p for p in parts if p)


# --- entry point -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="edge of the cubic volume")
    parser.add_argument("--workers", type=int, default=2, help="workers of every runner")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (best counts)")
    parser.add_argument("--quick", action="store_true",
                        help="--size 256 --repeat 1, 1,000 no-op blocks: a smoke run")
    parser.add_argument("--only", help="comma-separated subset of the runners")
    parser.add_argument("--workloads", default="smooth,noop",
                        help="comma-separated subset of: smooth, noop")
    parser.add_argument("--v02-python", default=V02_PYTHON,
                        help="the interpreter of bioimage-py 0.2.2")
    parser.add_argument("--no-v02", dest="v02_python", action="store_const", const=None,
                        help="skip bioimage-py 0.2.2")
    parser.add_argument("--workdir", help="where to write the data (default: a temp dir)")
    parser.add_argument("--json", help="also save the results to this file")
    args = parser.parse_args(argv)
    args.noop_grid = NOOP_GRID
    if args.quick:
        args.size, args.repeat, args.noop_grid = 256, 1, QUICK_NOOP_GRID
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(json.loads(argv[1]))
        return
    args = parse_args(argv)
    results = harness.run_and_report(args, "bench_runner_", run, report)
    mismatched = [m for m, c in results["checks"].items() if not c["allclose"]]
    if mismatched:
        raise SystemExit(f"outputs differ from scipy's: {mismatched}")


if __name__ == "__main__":
    main()
