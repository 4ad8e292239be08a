"""Chunked reads from an S3 server against the peers: zarr v3 and sharded zarr v3 on local moto.

BUILD FIRST, IN RELEASE MODE: timings of a debug build are meaningless.

    .venv/bin/maturin develop --release                  # (or: pip install .)
    pip install tensorstore zarr obstore "moto[server]"  # the peers and the server (`bench` extra)
    python benches/bench_s3.py                           # 512^3, best of 3
    python benches/bench_s3.py --size 128 --repeat 1     # a quick smoke run
    python benches/bench_s3.py --json results.json       # also save the results

The script warns when ``bioimage_py._core`` looks like a debug build.

Server: a moto S3 server (``moto[server]``) started by the benchmark in a child process on a free
localhost port (``scripts/object_store_servers.py``) and stopped at the end; dummy credentials in
the environment, path-style addressing, plain HTTP. Every reader talks to the same server, whose
own request handling (Python) is part of every time: the ratios compare the clients.

Data (``volumes.synthetic_volume``): the uint16 volume of ``bench_zarr_n5.py`` (512^3 by default,
``--size``), written once *by zarr-python through obstore's S3Store* as
- zarr v3, 64^3 chunks, zstd(3)
- zarr v3 sharded: shards of ``--shard`` (256^3 by default) holding 64^3 chunks, zstd(3)
each an array at the root of its own key prefix of the bucket.

Workloads (regions in C order; every reader opens a fresh handle per repetition, so caches start
cold; the open is part of the timed work):
- W1: every chunk, one read call each.
- W2: 128^3 blocks grown by an 8-voxel halo, clipped to the array: the block-wise runner.
- W3: one read of the whole volume.

Readers: ours (``bioimage_py.open_source(url, endpoint_url=...)``), tensorstore (its ``s3``
kvstore; default context: no chunk cache, as users open it), zarr-python 3 over obstore's
``S3Store`` (``zarr.storage.ObjectStore``). Every result is compared with the numpy reference once
(first repetition) before any time counts. Times are the best of ``--repeat`` repetitions,
repetitions interleaved across readers. Ratios are peer time / our time: > 1 means we are faster
(target of issue 13: ahead of the best peer on every row).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import volumes  # noqa: E402
from bench_zarr_n5 import Mismatch, check_equal  # noqa: E402
from volumes import Region  # noqa: E402

WORKLOADS = ("W1", "W2", "W3")
READERS = ("ours", "tensorstore", "zarr-python")
BUCKET = "bench"
REGION = "us-east-1"
TARGET = 1.0  # ahead of the best peer
SERVERS_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "object_store_servers.py"
# Dummy credentials: moto accepts any signed request. No profile, config file or instance
# metadata lookups.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
AWS_UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@dataclass(frozen=True)
class Layout:
    """One stored copy of the volume on the server."""

    key: str
    title: str
    prefix: str  # the array's key prefix in BUCKET
    sharded: bool

    def url(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"


LAYOUTS = {
    "zarr3": Layout("zarr3", "zarr v3, zstd(3)", "vol_v3.zarr", False),
    "sharded": Layout("sharded", "zarr v3 sharded, zstd(3)", "vol_sharded.zarr", True),
}


def load_servers_script() -> ModuleType:
    """scripts/object_store_servers.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("object_store_servers_script", SERVERS_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def obstore_s3(endpoint: str, layout: Layout) -> Any:
    from obstore.store import S3Store

    return S3Store(BUCKET, prefix=layout.prefix, endpoint=endpoint, region=REGION,
                   allow_http=True, virtual_hosted_style_request=False)


def write_peer(endpoint: str, layout: Layout, data: np.ndarray, chunks: tuple[int, ...],
               shards: tuple[int, ...] | None) -> None:
    """Store ``data`` at ``layout`` with zarr-python through obstore."""
    import zarr
    from zarr.codecs import ZstdCodec
    from zarr.storage import ObjectStore

    array = zarr.create_array(ObjectStore(obstore_s3(endpoint, layout)), shape=data.shape,
                              chunks=chunks, shards=shards if layout.sharded else None,
                              dtype=data.dtype, compressors=ZstdCodec(level=3), fill_value=0,
                              zarr_format=3, overwrite=True)
    array[...] = data


# --------------------------------------------------------------------------------------------
# Readers: open a fresh handle, read a region.


class Reader:
    name = ""

    def open(self, endpoint: str, layout: Layout) -> Any:
        raise NotImplementedError

    def read(self, handle: Any, region: Region) -> np.ndarray:
        return handle[region]


class Ours(Reader):
    name = "ours"

    def open(self, endpoint: str, layout: Layout) -> Any:
        import bioimage_py

        return bioimage_py.open_source(layout.url(), endpoint_url=endpoint)


class TensorStore(Reader):
    name = "tensorstore"

    def open(self, endpoint: str, layout: Layout) -> Any:
        import tensorstore as ts

        kvstore = {"driver": "s3", "bucket": BUCKET, "path": layout.prefix + "/",
                   "endpoint": endpoint, "aws_region": REGION,
                   "aws_credentials": {"type": "environment"}}
        return ts.open({"driver": "zarr3", "kvstore": kvstore}, read=True).result()

    def read(self, handle: Any, region: Region) -> np.ndarray:
        return handle[region].read().result()


class ZarrPython(Reader):
    name = "zarr-python"

    def open(self, endpoint: str, layout: Layout) -> Any:
        import zarr
        from zarr.storage import ObjectStore

        return zarr.open_array(ObjectStore(obstore_s3(endpoint, layout), read_only=True),
                               mode="r")


def all_readers() -> list[Reader]:
    return [Ours(), TensorStore(), ZarrPython()]


def time_reads(reader: Reader, endpoint: str, layout: Layout, regions: list[Region],
               reference: np.ndarray, check: bool) -> float:
    """Open a fresh handle and read every region; the summed time of the open and the reads
    (comparisons with the reference, on the checking repetition, are not timed)."""
    start = time.perf_counter()
    handle = reader.open(endpoint, layout)
    elapsed = time.perf_counter() - start
    for region in regions:
        start = time.perf_counter()
        result = reader.read(handle, region)
        elapsed += time.perf_counter() - start
        if check:
            check_equal(result, reference[region], f"region {region}")
        del result
    del handle
    return elapsed


# --------------------------------------------------------------------------------------------
# Running and reporting.


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, root: str) -> dict[str, Any]:
    del root  # the data lives on the server
    size, chunks = args.size, (args.chunks,) * 3
    shards = (min(args.shard, size),) * 3
    block, halo = (args.block,) * 3, (args.halo,) * 3
    layouts = [LAYOUTS[k] for k in args.layouts.split(",")]
    workloads = [w for w in WORKLOADS if w in args.workloads.split(",")]
    wanted = args.readers.split(",")
    unknown = set(wanted) - set(READERS)
    if unknown:
        raise SystemExit(f"unknown readers {sorted(unknown)}; choose from {READERS}")
    readers = [r for r in all_readers() if r.name in wanted]

    for name in AWS_UNSET:
        os.environ.pop(name, None)
    os.environ.update(AWS_ENV)

    start = time.perf_counter()
    reference = volumes.synthetic_volume(size, seed=args.seed)
    generation = time.perf_counter() - start
    log(f"generated {reference.shape} {reference.dtype} in {generation:.1f} s "
        f"({reference.nbytes / 2**20:.0f} MiB, {np.mean(reference == 0):.0%} zero)")
    shape = reference.shape
    regions = {"W1": volumes.chunk_regions(shape, chunks),
               "W2": volumes.halo_block_regions(shape, block, halo),
               "W3": [(slice(0, size),) * 3]}
    labels = {"W1": f"W1 chunks ({len(regions['W1'])} reads)",
              "W2": f"W2 halo blocks ({len(regions['W2'])} reads)",
              "W3": "W3 full read"}
    report: dict[str, Any] = {
        "config": {"size": size, "chunks": chunks, "shards": shards, "block": block,
                   "halo": halo, "repeat": args.repeat, "seed": args.seed,
                   "generation_seconds": generation},
        "environment": harness.environment(),
        "build_warning": harness.build_warning(),
        "labels": labels,
        "layouts": {},
    }

    script = load_servers_script()
    with script.s3_server() as server:
        endpoint = server.url
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        log(f"moto S3 server at {endpoint} (pid {server.pid})")
        for layout in layouts:
            start = time.perf_counter()
            write_peer(endpoint, layout, reference, chunks, shards)
            objects = [o for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=layout.prefix + "/") for o in page.get("Contents", ())]
            stored = sum(o["Size"] for o in objects)
            log(f"{layout.title}: written by zarr-python in {time.perf_counter() - start:.1f} s, "
                f"{len(objects)} objects, {stored / 2**20:.1f} MiB")
            result: dict[str, Any] = {"title": layout.title, "objects": len(objects),
                                      "bytes": stored, "times": {}}
            report["layouts"][layout.key] = result
            for workload in workloads:
                row = {r.name: {"seconds": None, "reps": [], "note": None} for r in readers}
                result["times"][workload] = row
                for rep in range(args.repeat):
                    for reader in readers:
                        cell = row[reader.name]
                        if cell["note"]:  # failed earlier: do not retry
                            continue
                        try:
                            seconds = time_reads(reader, endpoint, layout, regions[workload],
                                                 reference, check=rep == 0)
                        except Mismatch as exc:
                            cell.update(note=f"WRONG RESULT: {exc}", wrong=True)
                            log(f"  {layout.key} {workload} {reader.name}: WRONG RESULT: {exc}")
                            continue
                        except Exception as exc:  # noqa: BLE001  (reported, the run goes on)
                            cell["note"] = f"error: {type(exc).__name__}: {exc}"[:300]
                            log(f"  {layout.key} {workload} {reader.name}: "
                                f"{traceback.format_exc(limit=3)}")
                            continue
                        cell["reps"].append(seconds)
                        cell["seconds"] = min(cell["reps"])
                        log(f"  {layout.key} {workload} {reader.name} rep {rep + 1}: "
                            f"{seconds:.3f} s")
            result["table"] = format_table(result, [r.name for r in readers], labels)
            s3_delete_prefix(s3, layout.prefix + "/")  # moto keeps objects in memory
    return report


def s3_delete_prefix(s3: Any, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def format_table(result: dict[str, Any], names: list[str], labels: dict[str, str]) -> str:
    peers = [n for n in names if n != "ours"]
    headers = ["workload", *[f"{n} (s)" for n in names], *[f"{p} / ours" for p in peers],
               "best peer / ours", "met"]
    rows = []
    notes = []
    for workload, row in result["times"].items():
        cells, ratios = [], []
        for name in names:
            cell = row[name]
            cells.append(harness.fmt_seconds(cell["seconds"]) if cell["seconds"] is not None
                         else ("WRONG" if cell.get("wrong") else "n/a"))
            if cell["note"]:
                notes.append(f"- {name} ({workload}): {cell['note']}")
        ours = row.get("ours", {}).get("seconds")
        for peer in peers:
            peer_time = row[peer]["seconds"]
            ratios.append(harness.fmt_ratio(peer_time / ours if ours and peer_time else None))
        peer_times = [row[p]["seconds"] for p in peers if row[p]["seconds"] is not None]
        best = min(peer_times) / ours if ours and peer_times else None
        met = "" if best is None else ("yes" if best >= TARGET else "MISS")
        rows.append([labels[workload], *cells, *ratios, harness.fmt_ratio(best), met])
    table = harness.markdown_table(headers, rows)
    return table + ("\n\n" + "\n".join(notes) if notes else "")


def report_text(report: dict[str, Any]) -> str:
    cfg, env = report["config"], report["environment"]
    lines = [f"\n## bench_s3: {cfg['size']}^3 uint16 on a local moto S3 server, chunks "
             f"{cfg['chunks'][0]}^3 (shards {cfg['shards'][0]}^3), blocks {cfg['block'][0]}^3 + "
             f"halo {cfg['halo'][0]}, best of {cfg['repeat']}\n",
             f"{env['cpu_count']} cores, {env['platform']}, python {env['python']}; " + ", ".join(
                 f"{k} {v}" for k, v in env["versions"].items() if v),
             "Times in seconds (lower is better), open included; ratio = peer time / our time "
             f"(> 1: we are faster; target >= {TARGET}x the best peer)."]
    for result in report["layouts"].values():
        lines += [f"\n### {result['title']}  ({result['objects']} objects, "
                  f"{result['bytes'] / 2**20:.1f} MiB)\n", result["table"]]
    if report["build_warning"]:
        lines.append(f"\nWARNING: {report['build_warning']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512, help="edge of the cubic volume (default 512)")
    p.add_argument("--chunks", type=int, default=64, help="chunk edge (default 64)")
    p.add_argument("--shard", type=int, default=256,
                   help="shard edge of the sharded layout (default 256; clipped to --size)")
    p.add_argument("--block", type=int, default=128, help="W2 block edge (default 128)")
    p.add_argument("--halo", type=int, default=8, help="W2 halo (default 8)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions, best counts (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated subset")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset")
    p.add_argument("--readers", default=",".join(READERS),
                   help=f"comma-separated subset of: {', '.join(READERS)} (default: all)")
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)  # for harness
    p.add_argument("--json", default=None, help="save the results to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    harness.run_and_report(parse_args(argv), "bench_s3_", run, report_text)


if __name__ == "__main__":
    main()
