"""The command line: ``bioimage-py info`` and ``bioimage-py convert`` (``python -m bioimage_py``).

    bioimage-py info volume.zarr                  # format, shape, dtype, chunks, compression ...
    bioimage-py info container.n5                 # several arrays: lists them
    bioimage-py convert stack.tif volume.zarr --chunks 64 --shards 256 --compression zstd:5
    bioimage-py convert volume.zarr volume.n5 --workers 4 --job-type subprocess
    bioimage-py convert volume.zarr s3://bucket/volume.zarr --endpoint-url http://localhost:9000
    bioimage-py info https://example.org/data/volume.zarr

URL arguments (``s3://``, ``gs://``, ``http(s)://`` read-only) take ``--endpoint-url``,
``--region`` and ``--anonymous``; credentials come from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, the AWS config files, ...).

Every failure (a missing or damaged file, an unknown format, a bad key or option value, and
unexpected ones such as ``RecursionError``, ``OverflowError`` or ``MemoryError``) ends with one
line ``bioimage-py: error: ...`` naming the file or option on stderr and exit status 1, never a
traceback; usage errors exit with status 2 (argparse).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

PROG = "bioimage-py"
WRITABLE_FORMATS = ("zarr", "n5", "hdf5")
MAX_EXTENT = 2**63 - 1
"""The largest value of a shape option (``--chunks`` ...): array sizes are 64-bit."""
MAX_LEVEL = 2**31 - 1
"""The largest compression level accepted (codec levels are C ints)."""


class CliError(Exception):
    """An expected error: reported as one line, exit status 1."""


class _Step:
    """What the command is doing, to name the file in an error that does not name it."""

    def __init__(self) -> None:
        self.doing = "starting"
        self.names: tuple[str, ...] = ()

    def __call__(self, doing: str, *names: str) -> None:
        self.doing, self.names = doing, names


# --- argument parsing --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and convert microscopy volumes (zarr, N5, HDF5, TIFF, MRC, NIfTI, "
        "KNOSSOS, image folders).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser(
        "info", help="describe an array, or list the arrays of a container",
        description="Print format, shape, dtype, chunks, shards, compression and whether the "
        "format is writable; for a container of several arrays and no KEY, list the arrays.",
    )
    info.add_argument("path", metavar="PATH", help="file, folder or container")
    info.add_argument("key", metavar="KEY", nargs="?", help="the array inside the container")
    info.add_argument("--format", help="the format, instead of guessing it from the extension")
    _add_url_options(info)

    convert = commands.add_parser(
        "convert", help="convert an array to zarr, N5 or HDF5",
        description="Copy the array SRC block-wise into a new array DST. The destination format "
        "comes from DST's extension (.zarr, .n5, .h5) unless --format is given.",
    )
    convert.add_argument("src", metavar="SRC", help="the input file, folder or container")
    convert.add_argument("dst", metavar="DST", help="the output container or file")
    convert.add_argument("--src-key", help="the input array inside SRC (if it holds several)")
    convert.add_argument("--src-format", help="the input format, instead of SRC's extension")
    convert.add_argument("--key", help="the output array inside DST (default: the root for "
                         "zarr and N5, 'data' for HDF5)")
    convert.add_argument("--format", choices=WRITABLE_FORMATS, help="the output format")
    convert.add_argument("--zarr-format", type=int, choices=(2, 3), default=3,
                         help="zarr version of the output (default 3)")
    convert.add_argument("--chunks", help="output chunks, e.g. 64,64,64 or 64 (default: the "
                         "input's chunks, or 64 per axis)")
    convert.add_argument("--shards", help="output shards (zarr v3), e.g. 256,256,256")
    convert.add_argument("--compression", metavar="NAME[:LEVEL]",
                         help="e.g. zstd:3, gzip:1, blosc, raw (default per format)")
    convert.add_argument("--block-shape", help="blocks copied per task (default: the shards, "
                         "else the chunks)")
    convert.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                         help="threads or processes (default: the number of cores)")
    convert.add_argument("--job-type", choices=("local", "subprocess", "dask", "slurm"),
                         default="local",
                         help="threads (default), worker processes, or a dask LocalCluster")
    convert.add_argument("--ome", action="store_true",
                         help="write an OME-Zarr image pyramid at DST's root (NGFF 0.5 with "
                              "--zarr-format 3, 0.4 with 2)")
    convert.add_argument("--levels", type=int, default=None,
                         help="with --ome: the number of levels, full resolution included "
                              "(default: until a level fits one chunk)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing DST array")
    convert.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    _add_url_options(convert)
    return parser


def _add_url_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "URLs", "options of s3://, gs:// and http(s):// arguments (ignored for local paths); "
        "credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)",
    )
    group.add_argument("--endpoint-url", metavar="URL",
                       help="the S3-compatible server, e.g. http://localhost:9000 (default: "
                            "AWS, or $AWS_ENDPOINT_URL)")
    group.add_argument("--region", help="the bucket's region (default: $AWS_REGION)")
    group.add_argument("--anonymous", action="store_true",
                       help="unsigned requests (public buckets), no credentials")


def _url_options(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """The URL options given on the command line, for ``path`` when it is a URL (local paths
    take none)."""
    from bioimage_py.io.location import is_url

    if not is_url(path):
        return {}
    options: dict[str, Any] = {}
    if args.endpoint_url is not None:
        options["endpoint_url"] = args.endpoint_url
    if args.region is not None:
        options["region"] = args.region
    if args.anonymous:
        options["anonymous"] = True
    return options


def _resolve(path: str) -> str:
    """A local path made absolute; a URL as given (checked: scheme, bucket)."""
    from bioimage_py.io.location import check_location, is_url, normalize_location

    if is_url(path):
        path = normalize_location(path)
        check_location(path)
        return path
    return os.path.abspath(path)


def _shape_option(text: str | None, ndim: int, name: str) -> tuple[int, ...] | None:
    """``"64,32,32"`` (or one number for every axis) as a tuple of positive ints."""
    if text is None:
        return None
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise CliError(f"--{name} must be comma-separated integers, got {text!r}") from None
    if any(v > MAX_EXTENT for v in values):
        raise CliError(f"--{name} values must be at most 2**63 - 1, got {text!r}")
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim or any(v <= 0 for v in values):
        raise CliError(
            f"--{name} must be {ndim} positive integers (one per axis) or one, got {text!r}"
        )
    return values


def _compression_option(text: str | None) -> tuple[str | None, int | None]:
    if text is None:
        return None, None
    name, _, level = text.partition(":")
    if not name:
        raise CliError(f"--compression must be NAME or NAME:LEVEL, got {text!r}")
    if not level:
        return name, None
    try:
        value = int(level)
    except ValueError:
        raise CliError(f"the compression level must be an integer, got {level!r}") from None
    if abs(value) > MAX_LEVEL:
        raise CliError(f"--compression level {level} is out of range")
    return name, value


# --- info --------------------------------------------------------------------------------------


def _info(args: argparse.Namespace, step: _Step) -> int:
    from bioimage_py import io, open_source
    from bioimage_py.io.hierarchy import list_arrays
    from bioimage_py.io.ome import select_full_resolution

    path = _resolve(args.path)
    options = _url_options(args, path)
    if "://" not in path and not os.path.exists(path):
        raise CliError(f"{args.path!r} does not exist")
    key = args.key
    step(f"opening {args.path!r}", args.path, path)
    if key is None:
        container = io.open_file(path, format=args.format, **options)
        try:
            step(f"listing the arrays of {args.path!r}", args.path, path)
            arrays = list_arrays(container)
            if not arrays:
                raise CliError(f"{args.path!r} holds no arrays")
            if len(arrays) != 1:
                print(f"{args.path}: {len(arrays)} arrays")
                try:
                    image = select_full_resolution(container, "")
                except ValueError as err:  # the listing still helps to find the damage
                    print(f"  damaged OME-Zarr image: {err}")
                else:
                    if image is not None:
                        print(f"  OME-Zarr image: level {image[0]!r} (full resolution) opens "
                              "by default; 'info PATH LEVEL' gives a level's coordinates")
                for name in arrays:
                    array = container[name] if name else container
                    print(f"  {name or '(root)'}  shape {tuple(array.shape)}  "
                          f"dtype {array.dtype}")
                return 0
        finally:
            close = getattr(container, "close", None)
            if callable(close):
                close()
    source = open_source(path, key, format=args.format, **options)
    step(f"describing {args.path!r}", args.path, path)
    for label, value in _describe(source).items():
        print(f"{label + ':':<13}{value}")
    return 0


def _describe(source: Any) -> dict[str, str]:
    """The lines ``info`` prints for an opened ``FileSource``."""
    from bioimage_py import io
    from bioimage_py.io.location import is_read_only_location

    fmt = source.format
    version = _zarr_version(source) if fmt == "zarr" else None
    writable = "yes" if io.is_writable_format(fmt) else "no (read-only format)"
    if writable == "yes" and is_read_only_location(source.path):
        writable = "no (read-only location)"
    lines = {
        "path": source.path,
        "key": source.internal_path or "(root)",
        "format": fmt if version is None else f"{fmt} (v{version})",
        "shape": str(tuple(source.shape)),
        "dtype": str(source.dtype),
        "chunks": _tuple_or_dash(source.chunks),
        "shards": _tuple_or_dash(source.shards),
        "compression": _compression(source),
        "writable": writable,
    }
    ome = source.ome
    if ome is not None:  # a level of an OME-Zarr image: the image, this level's coordinates
        axes = " ".join(
            axis["name"] + (f" ({axis['unit']})" if axis.get("unit") else "")
            for axis in ome["axes"]
        )
        version = f"NGFF {ome['version']}" if ome.get("version") else "NGFF"
        lines["ome"] = f"{version} image, level {ome['level']} of {', '.join(ome['levels'])}"
        lines["axes"] = axes
        lines["scale"] = ", ".join(f"{v:g}" for v in ome["scale"])
        lines["translation"] = ", ".join(f"{v:g}" for v in ome["translation"])
    return lines


def _tuple_or_dash(value: Sequence[int] | None) -> str:
    return "-" if value is None else str(tuple(value))


def _read_json(source: Any, name: str) -> dict[str, Any]:
    """The metadata object ``name`` (``zarr.json``, ...) of ``source``'s array, for display;
    ``{}`` when it is missing or unreadable (the array opened, so the Rust core read what it
    needs from it). Local folders are read as files, zip files and URLs through the core."""
    from bioimage_py.io.location import split_storage_options
    from bioimage_py.io.metadata_json import read_json_in_store

    key = "/".join(part for part in (source.internal_path or "", name) if part)
    try:
        storage_options, _ = split_storage_options(source.path, source.open_kwargs)
        return read_json_in_store(
            source.path, key, _DISPLAYED_MEMBERS, storage_options
        ) or {}
    except (OSError, ValueError):
        return {}


# The metadata members info reads: parsing only these skips deeply nested user attributes.
_DISPLAYED_MEMBERS = ("codecs", "compressor", "compression", "compressionType")


def _zarr_version(source: Any) -> int | None:
    from bioimage_py.io.location import split_storage_options
    from bioimage_py.io.metadata_json import key_exists

    try:
        storage_options, _ = split_storage_options(source.path, source.open_kwargs)
        for name, version in (("zarr.json", 3), (".zarray", 2)):
            key = "/".join(part for part in (source.internal_path or "", name) if part)
            if key_exists(source.path, key, storage_options):
                return version
    except (OSError, ValueError):
        pass
    return None


def _compression(source: Any) -> str:
    """The codec as NAME[:LEVEL] from the metadata, or ``-`` where the format does not say."""
    if source.format == "zarr":
        v3 = _read_json(source, "zarr.json")
        if v3:
            codecs = v3.get("codecs", [])
            return _zarr3_codecs(codecs) if isinstance(codecs, list) else "-"
        compressor = _read_json(source, ".zarray").get("compressor")
        if not isinstance(compressor, dict):
            return "raw" if compressor is None else "-"
        return _codec(compressor.get("id"), compressor)
    if source.format == "n5":
        attributes = _read_json(source, "attributes.json")
        compression = attributes.get("compression")
        if isinstance(compression, dict):
            return _codec(compression.get("type"), compression)
        return str(attributes.get("compressionType", "-"))
    if source.format == "hdf5":
        return _hdf5_filters(source.path, source.internal_path)
    return "-"


def _zarr3_codecs(codecs: list[Any]) -> str:
    names = []
    for codec in codecs:
        if not isinstance(codec, dict):
            continue
        name, config = codec.get("name"), codec.get("configuration") or {}
        if not isinstance(config, dict):
            config = {}
        if name == "sharding_indexed":
            inner = config.get("codecs", [])
            return _zarr3_codecs(inner) if isinstance(inner, list) else "-"
        if name in ("bytes", "transpose", "crc32c"):
            continue
        names.append(_codec(name, config))
    return ", ".join(names) or "raw"


def _codec(name: Any, config: dict[str, Any]) -> str:
    name = str(name or "-")
    if name == "blosc":
        return f"blosc:{config.get('cname', '?')}:{config.get('clevel', '?')}"
    level = config.get("level", config.get("clevel"))
    return name if level is None else f"{name}:{level}"


def _hdf5_filters(path: str, key: str | None) -> str:
    try:
        import h5py
    except ImportError:
        return "-"
    with h5py.File(path, "r") as file:
        dataset = file[key or "/"]
        if dataset.compression is None:
            return "raw"
        opts = dataset.compression_opts
        text = dataset.compression if opts is None else f"{dataset.compression}:{opts}"
        return text + (" + shuffle" if dataset.shuffle else "")


# --- convert -----------------------------------------------------------------------------------


def _convert(args: argparse.Namespace, step: _Step) -> int:
    from bioimage_py import copy, create_array, open_source
    from bioimage_py.io.create import default_chunks

    from bioimage_py.io.files import resolve_format
    from bioimage_py.io.location import split_storage_options

    src_path = _resolve(args.src)
    if "://" not in src_path and not os.path.exists(src_path):
        raise CliError(f"{args.src!r} does not exist")
    step(f"opening {args.src!r}", args.src, src_path)
    source = open_source(src_path, args.src_key, format=args.src_format,
                         **_url_options(args, src_path))
    dst_path = _resolve(args.dst)
    dst_options = _url_options(args, dst_path)
    step(f"creating {args.dst!r}", args.dst, dst_path)
    fmt = args.format or resolve_format(
        dst_path, storage_options=split_storage_options(dst_path, dst_options)[0]
    )
    if fmt not in WRITABLE_FORMATS:
        raise CliError(
            f"cannot write {fmt} files; the output format must be one of "
            f"{', '.join(WRITABLE_FORMATS)} (choose with the extension or --format)"
        )
    key = args.key if args.key is not None else ("data" if fmt == "hdf5" else "")
    if dst_path == source.path and key.strip("/") == (source.internal_path or ""):
        raise CliError("SRC and DST are the same array")

    shape, ndim = tuple(source.shape), len(source.shape)
    chunks = _shape_option(args.chunks, ndim, "chunks")
    if chunks is None:
        chunks = tuple(min(c, max(n, 1)) for c, n in zip(source.chunks, shape)) \
            if source.chunks is not None else default_chunks(shape)
    shards = _shape_option(args.shards, ndim, "shards")
    block_shape = _shape_option(args.block_shape, ndim, "block-shape")
    compression, level = _compression_option(args.compression)
    if args.workers < 1:
        raise CliError(f"--workers must be at least 1, got {args.workers}")
    if args.levels is not None and not args.ome:
        raise CliError("--levels needs --ome")
    if args.ome:
        return _convert_to_ome(args, step, source, src_path, dst_path, fmt, key, shards,
                               compression, level, dst_options)

    started = time.perf_counter()
    try:
        output = create_array(
            dst_path, key, shape=shape, dtype=source.dtype, chunks=chunks, format=fmt,
            zarr_format=args.zarr_format, shards=shards, compression=compression,
            compression_level=level, overwrite=args.overwrite, **dst_options,
        )
    except ValueError as err:
        if "exists" in str(err) and not args.overwrite:
            where = f"an array {key!r}" if key else "an array at its root"
            raise CliError(f"{args.dst!r} already holds {where}; pass --overwrite to replace it") \
                from None
        raise
    step(f"converting {args.src!r} to {args.dst!r}", args.src, src_path, args.dst, dst_path)
    copy(source, output, block_shape=block_shape, job_type=args.job_type,
         num_workers=args.workers, progress=False if args.quiet else None)
    if not args.quiet:
        where = f"{args.dst}" + (f" [{key}]" if key else "")
        print(
            f"converted {args.src} {shape} {source.dtype} -> {where} ({fmt}, chunks "
            f"{tuple(output.chunks)}{f', shards {tuple(output.shards)}' if output.shards else ''}"
            f", {_compression(output)}) in {time.perf_counter() - started:.1f} s"
        )
    return 0


def _convert_to_ome(
    args: argparse.Namespace, step: _Step, source: Any, src_path: str, dst_path: str, fmt: str,
    key: str, shards: tuple[int, ...] | None, compression: str | None, level: int | None,
    dst_options: dict[str, Any],
) -> int:
    """``convert --ome``: an OME-Zarr pyramid at DST's root."""
    from bioimage_py.ome_pyramid import write_ome_pyramid

    if fmt != "zarr":
        raise CliError(f"--ome writes OME-Zarr: DST must be a zarr store, not {fmt}")
    if key:
        raise CliError("--ome writes the image at DST's root; drop --key")
    if args.levels is not None and args.levels < 1:
        raise CliError(f"--levels must be at least 1, got {args.levels}")
    started = time.perf_counter()
    step(f"converting {args.src!r} to {args.dst!r}", args.src, src_path, args.dst, dst_path)
    # --chunks only when given: the pyramid's defaults keep channel and time axes at 1.
    output = write_ome_pyramid(
        source, dst_path, levels=args.levels, zarr_format=args.zarr_format,
        chunks=_shape_option(args.chunks, len(source.shape), "chunks"), shards=shards,
        compression=compression, compression_level=level, overwrite=args.overwrite,
        job_type=args.job_type, num_workers=args.workers, **dst_options,
    )
    if not args.quiet:
        ome = output.ome or {}
        print(f"converted {args.src} {tuple(source.shape)} {source.dtype} -> {args.dst} "
              f"(OME-Zarr {ome.get('version')}, levels {', '.join(ome.get('levels', []))}) in "
              f"{time.perf_counter() - started:.1f} s")
    return 0


# --- entry point -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage error)."""
    args = _parser().parse_args(argv)
    from bioimage_py.errors import RunnerError

    # tifffile logs the damage it meets in a file (a broken page chain, bad tags) at ERROR level
    # before the reader raises its own error naming the file: one line says it all here.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)

    step = _Step()
    try:
        return _info(args, step) if args.command == "info" else _convert(args, step)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CliError as err:
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, KeyError, ImportError, RunnerError) as err:
        message = _one_line(err) or type(err).__name__
        if isinstance(err, KeyError):
            message = f"not found: {message}"
        elif isinstance(err, RunnerError):  # the rerun hint is for copy's callers, not ours
            first = " ".join(str(err.error).split())
            message = (f"{len(err.block_ids)} blocks were not converted; the first error: "
                       f"{type(err.error).__name__}: {first}")
        if "pass internal_path" in message:  # open_source's words; here the option is a key
            option = "--src-key" if args.command == "convert" else "KEY"
            message = message.replace("pass internal_path", f"pass {option}")
        print(f"{PROG}: error: {_with_step(message, step)}", file=sys.stderr)
        return 1
    except MemoryError as err:
        message = f"out of memory ({_one_line(err) or 'MemoryError'})"
        print(f"{PROG}: error: {message} while {step.doing}", file=sys.stderr)
        return 1
    except RecursionError as err:
        message = f"too deeply nested to process (RecursionError: {_one_line(err)})"
        print(f"{PROG}: error: {message} while {step.doing}", file=sys.stderr)
        return 1
    except Exception as err:  # anything else, e.g. OverflowError: still one line, no traceback
        message = f"{type(err).__name__}: {_one_line(err)}"
        print(f"{PROG}: error: {message} while {step.doing}", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _with_step(message: str, step: _Step) -> str:
    """``message``, followed by what the command was doing unless it names the file already."""
    if any(name and name in message for name in step.names) or not step.names:
        return message
    return f"{message} (while {step.doing})"
