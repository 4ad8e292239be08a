"""Shared benchmark plumbing: release-build check, peak memory, ratios and markdown tables.

Small on purpose; every benchmark in ``benches/`` reports the same way: best-of-N wall times of
the same data in the same run, and ratios against the peers.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEBUG_BUILD_BYTES",
    "build_warning",
    "environment",
    "fmt_ratio",
    "fmt_seconds",
    "markdown_table",
    "peak_rss_bytes",
    "reset_peak_rss",
    "rss_bytes",
]

# A release build of the extension is some 20 MB (the HDF5 library and the TLS stack of the
# remote stores included); a debug build (or one with debug info) is ten times that. A
# heuristic, not a proof: see ``build_warning``.
DEBUG_BUILD_BYTES = 64 * 1024 * 1024


def build_warning() -> str | None:
    """A warning when ``bioimage_py._core`` looks like a debug build, else None."""
    from bioimage_py import _core

    path = _core.__file__
    size = os.path.getsize(path)
    if size > DEBUG_BUILD_BYTES:
        return (
            f"bioimage_py._core ({path}) is {size / 2**20:.0f} MiB: it looks like a DEBUG build "
            "(or one with debug info). Timings of our reader are not meaningful; rebuild with "
            "`maturin develop --release` (or `pip install .`)."
        )
    return None


def environment() -> dict[str, Any]:
    """Machine and library versions, recorded with every result."""
    versions: dict[str, Any] = {}
    for name in ("numpy", "bioimage_py", "zarr", "zarrs", "tensorstore", "z5py", "numcodecs"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001  (not installed: recorded as None)
            versions[name] = None
    from bioimage_py import _core

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "core_extension_bytes": os.path.getsize(_core.__file__),
        "versions": versions,
    }


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """The current resident set size (Linux), or the high-water mark where that is unknown."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The resident set size high-water mark of this process (Rust allocations included)."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.2f}"


def fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table with padded columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


def run_and_report(
    args: Any,
    prefix: str,
    run: Callable[[Any, str], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """The common main of a benchmark: warn about a debug build, ``run(args, root)`` in
    ``args.workdir`` (default a temporary folder, removed after), print ``report(results)`` and
    save the results to ``args.json`` when given."""
    warning = build_warning()
    if warning:
        print("WARNING: " + warning, file=sys.stderr, flush=True)
    root = args.workdir or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(root, exist_ok=True)
    try:
        results = run(args, root)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results
