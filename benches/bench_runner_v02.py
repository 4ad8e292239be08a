"""The bioimage-py 0.2.2 side of ``bench_runner.py``: run by it, in 0.2's own venv.

    /work/v02/bin/python benches/bench_runner_v02.py CONFIG_JSON

0.2's ``get_runner("local"|"subprocess").run(...)`` with the functions of ``runner_child`` on
zarr-python arrays (0.2 reads and writes zarr through zarr-python), the same data and block
shape as our runner. Config keys: ``workload`` (``"smooth"``, ``"noop"`` or ``"idle"``),
``methods`` (``"0.2 local"``, ``"0.2 subprocess"``), ``input``, ``outputs`` (method -> zarr
array path), ``block_shape``, ``workers``, ``repeat``.
"""
from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner_child

JOB_TYPES = {"0.2 local": "local", "0.2 subprocess": "subprocess"}


def measurement(method: str, config: dict[str, Any]) -> runner_child.Measurement:
    import zarr
    from bioimage_py.runner import get_runner

    runner = get_runner(JOB_TYPES[method])
    block_shape = tuple(config["block_shape"])
    workers = int(config["workers"])

    if config["workload"] == "smooth":
        def measure() -> tuple[float, int]:
            source = zarr.open_array(config["input"], mode="r")
            output = zarr.open_array(config["outputs"][method], mode="r+")
            seconds = runner.run(
                runner_child.smooth_block, [source], [output], block_shape=block_shape,
                halo=[runner_child.HALO] * source.ndim, num_workers=workers,
                has_return_val=True,
            )
            return float(sum(seconds)), len(seconds)
    else:
        def measure() -> tuple[float, int]:
            source = zarr.open_array(config["input"], mode="r")
            runner.run(runner_child.noop_block, [source], block_shape=block_shape,
                       num_workers=workers)
            blocks = 1
            for n, b in zip(source.shape, block_shape):
                blocks *= -(-n // b)
            return 0.0, blocks
    return measure


def main() -> None:
    config = runner_child.read_config(sys.argv)
    runner_child.register_by_value()
    import bioimage_py.runner
    from bioimage_py import __version__

    if not __version__.startswith("0.2"):
        raise SystemExit(f"expected bioimage-py 0.2, imported {__version__} "
                         f"from {bioimage_py.__file__}")
    import scipy.ndimage  # noqa: F401  (what a worker imports: part of the idle interpreter)
    import zarr  # noqa: F401

    if config["workload"] == "idle":
        runner_child.emit({"rss": runner_child.rss_bytes()})
        return
    methods = {m: measurement(m, config) for m in config["methods"]}
    runs = runner_child.time_methods(methods, int(config["repeat"]))
    runner_child.emit({"runs": runs})


if __name__ == "__main__":
    main()
