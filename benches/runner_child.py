"""What a child process of ``bench_runner.py`` runs: the per-block functions and the timed loop.

Imported by both sides of the runner benchmark: by ``bench_runner.py``'s children (our runner and
dask, in this project's venv) and by ``bench_runner_v02.py`` (bioimage-py 0.2.2, in its own venv).
So it depends only on numpy, scipy and ``bioimage_py.to_roi``, which both versions export, and
every runner runs the very same function. Each child registers this module with
``cloudpickle.register_pickle_by_value`` so worker processes that do not have ``benches/`` on
their path (0.2's ``python -m`` tasks) still unpickle the functions.

Protocol: the child gets one JSON argument (its config), logs to stderr, and prints one line
``RESULT {json}`` on stdout with the wall-clock (``time.time()``) start and end of every timed
phase, so the parent, which samples the child's process tree, can attribute memory and CPU
samples to phases.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bioimage_py import to_roi
from scipy.ndimage import gaussian_filter

SIGMA = 2.0
# scipy's Gaussian kernel reaches int(truncate * sigma + 0.5) = 8 voxels with truncate = 4: a halo
# of 8 makes block-wise results equal to filtering the whole volume.
HALO = 8
RESULT_PREFIX = "RESULT "
# Idle time between phases, so that the parent samples the tree at rest (workers of the previous
# phase gone) before the next phase starts: that sample is the next phase's memory baseline.
SETTLE_SECONDS = 0.4

#: A timed measurement: runs one job and returns (seconds spent inside the per-block function or
#: the tasks, summed over workers; number of blocks or tasks).
Measurement = Callable[[], tuple[float, int]]


def smooth_block(block: Any, inputs: Any, outputs: Any, mask: Any) -> float:
    """Gaussian smoothing of one block, read with its halo; returns the seconds it took
    (read + compute + write), which the runner hands back with ``has_return_val=True``."""
    started = time.perf_counter()
    data = inputs[0][to_roi(block.outer_block)].astype(np.float32, copy=False)
    smoothed = gaussian_filter(data, SIGMA)
    outputs[0][to_roi(block.inner_block)] = smoothed[to_roi(block.inner_block_local)]
    return time.perf_counter() - started


def smooth_array(data: np.ndarray) -> np.ndarray:
    """The same smoothing for ``dask.array.map_overlap`` (dask reads and writes)."""
    return gaussian_filter(data.astype(np.float32, copy=False), SIGMA)


def noop_block(block: Any, inputs: Any, outputs: Any, mask: Any) -> None:
    """A per-block function that does nothing: what is left is the runner's per-block cost."""
    return


def noop_chunk(chunk: np.ndarray) -> np.ndarray:
    """A per-chunk function that does nothing (``dask.array.map_blocks``)."""
    return chunk


def register_by_value() -> None:
    """Pickle this module's functions by value, so any worker can unpickle them."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def rss_bytes() -> int:
    """This process's resident set size (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS in /proc/self/status")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def time_methods(methods: dict[str, Measurement], repeat: int) -> list[dict[str, Any]]:
    """Run every measurement ``repeat`` times, interleaved; one record per run."""
    runs = []
    time.sleep(SETTLE_SECONDS)
    for rep in range(repeat):
        for name, measure in methods.items():
            load = os.getloadavg()[0]
            t0, started = time.time(), time.perf_counter()
            inside, blocks = measure()
            wall, t1 = time.perf_counter() - started, time.time()
            runs.append({"method": name, "rep": rep, "t0": t0, "t1": t1, "wall": wall,
                         "inside": inside, "blocks": blocks, "load": load})
            log(f"  rep {rep + 1} {name}: {wall:.3f} s ({blocks} blocks, {inside:.3f} s inside)")
            time.sleep(SETTLE_SECONDS)
    return runs


def emit(payload: dict[str, Any]) -> None:
    """Hand the result to the parent (the last line of stdout)."""
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


def read_config(argv: list[str]) -> dict[str, Any]:
    if len(argv) != 2:
        raise SystemExit(f"usage: {argv[0]} CONFIG_JSON (run by bench_runner.py)")
    return json.loads(argv[1])
