"""Hostile and damaged inputs met by the Python side (issue 12): every one is a Python exception
naming the file (or the option), in bounded time and memory, never a crash.

- Files read without memory maps (TIFF, MRC): a file truncated after opening raises ``OSError``
  naming it, never SIGBUS (observed as a child process's return code); a header describing more
  data than the file holds raises ``ValueError`` naming it at open.
- Listing the arrays of a zarr store or N5 container ends on symlink cycles (a child process
  under a timeout) and is bounded in depth and entries.
- ``FileSource.chunk_exists`` rejects non-integer coordinates with ``TypeError``.
- Metadata (zarr v2/v3, N5, KNOSSOS, TIFF slices): non-UTF-8 bytes, JSON nested 100,000 levels
  deep, wrong value types, unknown ``node_type``: ``ValueError`` naming the file; deep nesting in
  user attributes does not stop an array from opening.
- The command line answers every failure with one ``bioimage-py: error:`` line and status 1.
- An HDF5 writer killed mid-write (SIGKILL): rerunning the blocks restores the file.

Files are written by the peer libraries (tifffile, mrcfile, zarr-python, z5py, h5py, imageio)
and then damaged the way transfers and other programs damage them.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import bioimage_py
import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import z5py
import zarr
from bioimage_py import _core, cli, create_array, open_source
from bioimage_py.io import hierarchy
from bioimage_py.io.metadata_json import read_json_object
from bioimage_py.io.raw_file import RawFileData, _run_axis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TIMEOUT = 120  # seconds a child process may take before the test calls it a hang
DEEP = 100_000  # nesting levels of the deep-JSON cases


def child(code: str, *, memory_mb: int | None = None,
          timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (address space capped at ``memory_mb``)."""
    prelude = "import resource\n"
    if memory_mb:
        limit = memory_mb << 20
        prelude += f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout)


def volume(shape=(6, 20, 33), dtype="uint16", seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, shape).astype(dtype)


# --- (5) files read without memory maps --------------------------------------------------------


def write_file(kind: str, path: Path, data: np.ndarray) -> None:
    if kind == "tif":
        tifffile.imwrite(path, data)
    else:
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(data)


@pytest.mark.parametrize(("kind", "kwargs"), [
    ("tif", {}), ("mrc", {}), ("mrc", {"flip_y": False}),
])
def test_file_truncated_after_opening_raises_oserror_never_sigbus(tmp_path, kind, kwargs):
    data = volume(dtype="int16")
    path = tmp_path / f"v.{kind}"
    write_file(kind, path, data)
    done = child(f"""
        import json, os, numpy as np, bioimage_py
        src = bioimage_py.open_source({str(path)!r}, **{kwargs!r})
        size = os.path.getsize({str(path)!r})
        outcome = {{}}
        for name, cut in (("middle", size // 2), ("header", 1024), ("empty", 0)):
            os.truncate({str(path)!r}, cut)
            for region in ("first", "last", "all"):
                roi = {{"first": np.s_[0:1], "last": np.s_[-1:], "all": np.s_[...]}}[region]
                try:
                    outcome[f"{{name}}/{{region}}"] = ["ok", src[roi].tolist()]
                except Exception as err:
                    outcome[f"{{name}}/{{region}}"] = [type(err).__name__, str(err)]
        print(json.dumps(outcome))
    """)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -7 would be SIGBUS
    outcome = json.loads(done.stdout)
    expected = data if kind == "tif" or kwargs else np.flip(data, axis=-2)
    # Truncated in the middle, the first slices are still there and read correctly.
    assert outcome["middle/first"] == ["ok", expected[0:1].tolist()]
    for key, (kind_name, message) in outcome.items():
        if key == "middle/first":
            continue
        assert kind_name == "OSError", (key, kind_name, message)
        assert str(path) in message and "truncated" in message


def test_tiff_rewritten_after_truncation_reads_again(tmp_path):
    data = volume()
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, data)
    src = open_source(path)
    assert src.array.contiguous
    os.truncate(path, 0)
    with pytest.raises(OSError, match="truncated"):
        src[2]
    tifffile.imwrite(path, data)  # the same layout written again: the open file reads it
    np.testing.assert_array_equal(src[...], data)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("keep", [0.3, 0.8])
def test_tiff_header_beyond_the_file_is_valueerror_at_open(tmp_path, compression, keep):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, volume(), compression=compression, imagej=True)
    os.truncate(path, int(os.path.getsize(path) * keep))
    with pytest.raises(ValueError, match="truncated") as info:
        open_source(path)
    assert str(path) in str(info.value)


def test_tiff_not_a_tiff_is_valueerror_naming_it(tmp_path):
    path = tmp_path / "junk.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 40)
    with pytest.raises(ValueError) as info:
        open_source(path)
    assert str(path) in str(info.value)


def test_corrupted_tiff_headers_fail_cleanly(tmp_path):
    """Random bytes of the first 400 (the header and first IFD) changed: opening and reading
    either work or raise ValueError / OSError naming the file (MemoryError where a damaged
    header asks for more than the capped address space), never anything else or a crash."""
    done = child(f"""
        import collections, json, logging, os, warnings
        import numpy as np, tifffile, bioimage_py
        logging.getLogger("tifffile").setLevel(logging.CRITICAL)
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(12)
        data = rng.integers(0, 1000, (4, 16, 16)).astype("uint16")
        path = os.path.join({str(tmp_path)!r}, "f.tif")
        outcomes = collections.Counter()
        for options in ({{}}, {{"compression": "zlib"}}, {{"imagej": True}}, {{"tile": (16, 16)}}):
            tifffile.imwrite(path, data, photometric="minisblack", **options)
            original = open(path, "rb").read()
            for _ in range(60):
                damaged = bytearray(original)
                for _ in range(int(rng.integers(1, 4))):
                    damaged[int(rng.integers(0, 400))] = int(rng.integers(0, 256))
                open(path, "wb").write(damaged)
                try:
                    bioimage_py.open_source(path)[...]
                    outcomes["ok"] += 1
                except (ValueError, OSError) as err:
                    outcomes[type(err).__name__ + (" naming it" if path in str(err) else "")] += 1
                except MemoryError:
                    outcomes["MemoryError"] += 1
                except Exception as err:
                    outcomes[f"{{type(err).__name__}}: {{err}}"] += 1
        print(json.dumps(outcomes))
    """, memory_mb=3072)
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes = json.loads(done.stdout)
    assert set(outcomes) <= {"ok", "ValueError naming it", "OSError naming it", "MemoryError"}, \
        outcomes
    assert outcomes["ValueError naming it"] > 0 and outcomes["ok"] > 0


def test_corrupted_mrc_headers_fail_cleanly(tmp_path):
    """Random bytes of the MRC header changed: the file opens and reads, or raises ValueError
    naming it (strict and permissive), never another exception (numpy's memmap raised
    OverflowError for some) or a crash."""
    done = child(f"""
        import collections, json, os, warnings
        import numpy as np, mrcfile, bioimage_py
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(5)
        path = os.path.join({str(tmp_path)!r}, "f.mrc")
        with mrcfile.new(path) as mrc:
            mrc.set_data(rng.integers(0, 1000, (4, 16, 16)).astype("int16"))
        original = open(path, "rb").read()
        outcomes = collections.Counter()
        for _ in range(150):
            damaged = bytearray(original)
            for _ in range(int(rng.integers(1, 4))):
                damaged[int(rng.integers(0, 224))] = int(rng.integers(0, 256))
            open(path, "wb").write(damaged)
            for permissive in (False, True):
                try:
                    bioimage_py.open_source(path, permissive=permissive)[...]
                    outcomes["ok"] += 1
                except (ValueError, OSError) as err:
                    outcomes[type(err).__name__ + (" naming it" if path in str(err) else "")] += 1
                except Exception as err:
                    outcomes[f"{{type(err).__name__}}: {{err}}"] += 1
        print(json.dumps(outcomes))
    """, memory_mb=1024)  # mrcfile allocated a stated extended header of 1.3 GB for one
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes = json.loads(done.stdout)
    assert set(outcomes) <= {"ok", "ValueError naming it"}, outcomes


@pytest.mark.parametrize("permissive", [False, True])
def test_mrc_extended_header_beyond_the_file_is_refused_before_allocating(tmp_path, permissive):
    path = tmp_path / "ext.mrc"
    write_file("mrc", path, volume(shape=(2, 4, 4), dtype="int16"))
    with open(path, "r+b") as f:  # nsymbt, word 24 of the header: 2 GiB - 1
        f.seek(92)
        f.write(np.int32(2**31 - 1).tobytes())
    done = child(f"""
        import warnings, bioimage_py
        warnings.simplefilter("ignore")
        try:
            bioimage_py.open_source({str(path)!r}, permissive={permissive})
        except ValueError as err:
            print(err)
    """, memory_mb=700)
    assert done.returncode == 0, done.stderr[-2000:]
    assert str(path) in done.stdout and "extended header of 2147483647 bytes" in done.stdout


def test_compressed_tiff_truncated_after_opening_is_oserror(tmp_path):
    data = volume()
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, data, compression="zlib")
    src = open_source(path)
    assert not src.array.contiguous
    np.testing.assert_array_equal(src[0], data[0])
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(OSError) as info:
        src[...]
    assert str(path) in str(info.value)


@pytest.mark.parametrize("permissive", [False, True])
def test_mrc_header_beyond_the_file_is_valueerror_at_open(tmp_path, permissive):
    path = tmp_path / "cut.mrc"
    write_file("mrc", path, volume(dtype="int16"))
    os.truncate(path, os.path.getsize(path) - 100)
    with pytest.warns(RuntimeWarning) if permissive else _no_warning():
        with pytest.raises(ValueError, match="truncated") as info:
            open_source(path, permissive=permissive)
    message = str(info.value)
    assert str(path) in message and "(6, 20, 33)" in message


class _no_warning:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_mrc_bad_header_is_valueerror_naming_it(tmp_path):
    path = tmp_path / "bad.mrc"
    path.write_bytes(b"\x00" * 1024)
    with pytest.raises(ValueError) as info:
        open_source(path)
    assert str(path) in str(info.value)


def test_mrc_large_regions_read_flipped_in_pieces(tmp_path):
    data = volume(shape=(40, 130, 120), dtype="int16")  # 1.2 MB: read in pieces of 1 MiB
    path = tmp_path / "big.mrc"
    write_file("mrc", path, data)
    src = open_source(path)
    flipped = np.flip(data, axis=-2)
    for roi in (np.s_[...], np.s_[3:39, 5:129, 1:119], np.s_[::1, 64], np.s_[17]):
        np.testing.assert_array_equal(src[roi], flipped[roi])
    np.testing.assert_array_equal(open_source(path, flip_y=False)[2:38], data[2:38])


def test_mrc_close_after_truncation_does_not_crash(tmp_path):
    path = tmp_path / "v.mrc"
    write_file("mrc", path, volume(dtype="int16"))
    done = child(f"""
        import os, bioimage_py
        src = bioimage_py.open_source({str(path)!r})
        os.truncate({str(path)!r}, 0)
        src.array.close()
        print("closed")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "closed", done.stderr[-2000:]


def test_image_stack_slices_truncated_before_and_after_opening(tmp_path):
    data = volume(shape=(3, 16, 16))
    for z in range(3):
        tifffile.imwrite(tmp_path / f"s{z}.tif", data[z])
    src = open_source(tmp_path, "*.tif")
    damaged = tmp_path / "s1.tif"
    os.truncate(damaged, 100)
    with pytest.raises(OSError) as info:
        src[1]
    assert str(damaged) in str(info.value)
    np.testing.assert_array_equal(src[2], data[2])  # the other slices still read
    with pytest.raises(ValueError) as info:
        open_source(tmp_path, "*.tif")
    assert str(damaged) in str(info.value)


def test_png_slice_damaged_after_opening_is_oserror(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    data = volume(shape=(2, 16, 16), dtype="uint8")
    for z in range(2):
        iio.imwrite(tmp_path / f"p{z}.png", data[z])
    src = open_source(tmp_path, "*.png")
    damaged = tmp_path / "p0.png"
    damaged.write_bytes(damaged.read_bytes()[:60])
    with pytest.raises(OSError) as info:
        src[0]
    assert str(damaged) in str(info.value)


@st.composite
def stored_regions(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    roi = []
    for n in shape:
        start = draw(st.integers(0, n - 1))
        roi.append(slice(start, draw(st.integers(start + 1, n))))
    dtype = draw(st.sampled_from(["u1", ">u2", "<i4", ">f8"]))
    return shape, tuple(roi), dtype, draw(st.integers(0, 40))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored_regions())
def test_raw_file_reads_equal_numpy_at_every_granularity(case):
    shape, roi, dtype, offset = case
    data = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "raw.bin")
        with open(path, "wb") as f:
            f.write(b"\x07" * offset + data.tobytes() + b"tail")
        raw = RawFileData(path, offset, shape, dtype)
        try:
            expected = data[roi]
            got = raw.read(roi)
            assert got.dtype == np.dtype(dtype) and got.flags.c_contiguous
            np.testing.assert_array_equal(got, expected)
            extent = tuple(s.stop - s.start for s in roi)
            run_axis = _run_axis(extent, shape)
            for level in range(run_axis + 1):  # every read plan the cost model may choose
                out = np.empty(extent, dtype=dtype)
                if level == run_axis:
                    raw._read_runs(raw._checked_fd(), roi, out, level)
                else:
                    raw._read_gathered(raw._checked_fd(), roi, out, level)
                np.testing.assert_array_equal(out, expected)
        finally:
            raw.close()


def test_raw_file_reads_many_short_runs(tmp_path):
    """A plane across rows: hundreds of reads, their offsets computed with numpy."""
    data = volume(shape=(24, 30, 17), dtype=">i2")
    path = tmp_path / "raw.bin"
    path.write_bytes(b"h" * 3 + data.tobytes())
    raw = RawFileData(str(path), 3, data.shape, data.dtype)
    roi = (slice(0, 24), slice(0, 30), slice(5, 6))
    out = np.empty((24, 30, 1), dtype=data.dtype)
    raw._read_runs(raw._checked_fd(), roi, out, 2)  # 720 one-element reads
    np.testing.assert_array_equal(out, data[roi])
    np.testing.assert_array_equal(raw.read(roi), data[roi])
    raw.close()
    with pytest.raises(ValueError, match="closed"):
        raw.read(roi)


def test_raw_file_is_read_safely_from_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    data = volume(shape=(16, 32, 32))
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, data)
    src = open_source(path)
    rois = [np.s_[z:z + 3, y:y + 9, x:] for z in range(12) for y in (0, 5) for x in (0, 7)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda roi: src[roi], rois))
    for roi, got in zip(rois, results):
        np.testing.assert_array_equal(got, data[roi])


# --- (6) listing the arrays of a container -----------------------------------------------------


def zarr_tree(root: Path, zarr_format: int) -> None:
    """Arrays ``a`` and ``sub/b`` (and the empty group ``sub/c``), written by zarr-python."""
    group = zarr.open_group(str(root), mode="w", zarr_format=zarr_format)
    group.create_array("a", shape=(4,), chunks=(2,), dtype="uint8")
    group.create_array("sub/b", shape=(4,), chunks=(2,), dtype="uint8")
    group.create_group("sub/c")


def n5_tree(root: Path) -> None:
    with z5py.File(str(root), "w") as f:
        f.create_dataset("a", shape=(4,), chunks=(2,), dtype="uint8")
        f.create_dataset("sub/b", shape=(4,), chunks=(2,), dtype="uint8")
        f.create_group("sub/c")


CYCLES = {
    "up": [("sub/up", "..")],  # one link back to the root
    "branching": [("sub/c/up1", "../.."), ("sub/c/up2", "../..")],  # 2^depth paths without a guard
    "siblings": [("sub/to_root", ".."), ("sub/c/to_sub", "..")],
    "self": [("sub/self", "self")],  # a link to itself (ELOOP)
    "absolute": [("sub/c/abs", None)],  # an absolute link to the root
}


@pytest.mark.parametrize("cycle", list(CYCLES))
@pytest.mark.parametrize("fmt", ["zarr3", "zarr2", "n5"])
def test_listing_ends_on_symlink_cycles(tmp_path, fmt, cycle):
    root = tmp_path / ("c.n5" if fmt == "n5" else "c.zarr")
    if fmt == "n5":
        n5_tree(root)
    else:
        zarr_tree(root, 3 if fmt == "zarr3" else 2)
    for link, target in CYCLES[cycle]:
        os.symlink(target if target is not None else str(root), root / link)
    done = child(f"""
        import json
        from bioimage_py import io, open_source
        from bioimage_py.io.hierarchy import list_arrays
        print(json.dumps(list_arrays(io.open_file({str(root)!r}))))
        try:
            open_source({str(root)!r})
        except ValueError as err:
            print(json.dumps(str(err)))
    """, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    listed, message = done.stdout.splitlines()
    assert json.loads(listed) == ["a", "sub/b"]
    assert "holds 2 arrays" in json.loads(message)


def test_info_lists_a_container_with_a_symlink_cycle(tmp_path):
    root = tmp_path / "c.zarr"
    zarr_tree(root, 3)
    for link, target in CYCLES["branching"]:
        os.symlink(target, root / link)
    done = subprocess.run([sys.executable, "-m", "bioimage_py", "info", str(root)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"{root}: 2 arrays" in done.stdout and "sub/b  shape (4,)" in done.stdout


def test_an_array_linked_into_a_container_is_listed_under_each_name(tmp_path):
    root = tmp_path / "c.zarr"
    zarr_tree(root, 3)
    other = tmp_path / "other.zarr"
    zarr.create_array(str(other), shape=(3,), dtype="uint8")
    os.symlink(other, root / "linked")  # an array elsewhere, linked in
    os.symlink("sub", root / "alias")  # a second name of a group: its arrays listed once
    assert hierarchy.list_arrays(bioimage_py.io.open_file(str(root))) == ["a", "alias/b", "linked"]
    assert open_source(root, "linked").shape == (3,)


@st.composite
def group_trees(draw):
    """Random hierarchies: ``{path: kind}`` with kinds array/group/bare folder."""
    names = st.sampled_from(["a", "b", "c", "data", "s0", ".hidden"])
    tree: dict[str, str] = {}
    frontier = [""]
    for _ in range(draw(st.integers(1, 12))):
        parent = draw(st.sampled_from(frontier))
        path = f"{parent}/{draw(names)}".strip("/")
        if path in tree or any(path.startswith(p + "/") for p, k in tree.items() if k == "array"):
            continue
        kind = draw(st.sampled_from(["array", "group", "bare"]))
        tree[path] = kind
        if kind != "array":
            frontier.append(path)
    return tree


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group_trees(), st.sampled_from(["zarr3", "zarr2", "n5"]))
def test_listing_equals_the_rust_listing_without_links(tree, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "c.n5" if fmt == "n5" else "c.zarr")
        if fmt == "n5":
            root.mkdir()
            (root / "attributes.json").write_text('{"n5": "4.0.0"}')
        else:
            zarr.open_group(str(root), mode="w", zarr_format=3 if fmt == "zarr3" else 2)
        for path, kind in sorted(tree.items()):
            folder = root / path
            if kind != "array":
                folder.mkdir(parents=True, exist_ok=True)
            if kind == "array" and fmt == "n5":
                with z5py.File(str(root), "a") as f:
                    f.create_dataset(path, shape=(2,), chunks=(2,), dtype="uint8")
            elif kind == "array":
                zarr.create_array(str(root), name=path, shape=(2,), dtype="uint8",
                                  zarr_format=3 if fmt == "zarr3" else 2)
            elif kind == "group" and fmt != "n5":
                zarr.open_group(str(root), path=path, mode="a",
                                zarr_format=3 if fmt == "zarr3" else 2)
            elif kind == "group":
                (folder / "attributes.json").write_text("{}")
        rust = (_core.list_n5_arrays if fmt == "n5" else _core.list_zarr_arrays)(str(root))
        ours = hierarchy.walk_native_arrays(str(root), "n5" if fmt == "n5" else "zarr")
        assert ours == rust


def test_listing_too_deep_is_a_clear_valueerror(tmp_path):
    root = tmp_path / "deep.zarr"
    zarr.open_group(str(root), mode="w")
    deep = root.joinpath(*["g"] * (hierarchy.MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    with pytest.raises(ValueError, match="levels deep") as info:
        hierarchy.list_arrays(bioimage_py.io.open_file(str(root)))
    assert str(root) in str(info.value)


def test_listing_too_many_entries_is_a_clear_valueerror(tmp_path, monkeypatch):
    root = tmp_path / "wide.n5"
    n5_tree(root)
    for i in range(20):
        (root / f"empty{i}").mkdir()
    monkeypatch.setattr(hierarchy, "MAX_ENTRIES", 10)
    with pytest.raises(ValueError, match="stopped after 10") as info:
        open_source(root)
    assert "internal_path" in str(info.value) and str(root) in str(info.value)
    assert open_source(root, "sub/b").shape == (4,)  # a key needs no listing


def test_generic_containers_with_cyclic_keys_end(tmp_path):
    class Group(dict):
        """A container whose member ``loop`` is itself: a cycle through ``keys()``."""

    group = Group()
    group["loop"] = group
    with pytest.raises(ValueError, match="levels deep"):
        hierarchy.list_arrays(group)


# --- (8) chunk_exists --------------------------------------------------------------------------


@pytest.fixture(params=["zarr3", "zarr2", "n5", "hdf5"])
def chunked(request, tmp_path):
    fmt = request.param
    name = {"zarr3": "c.zarr", "zarr2": "c.zarr", "n5": "c.n5", "hdf5": "c.h5"}[fmt]
    src = create_array(tmp_path / name, "g/a", shape=(8, 8), chunks=(4, 4), dtype="uint8",
                       zarr_format=2 if fmt == "zarr2" else 3)
    src[0:4, 4:8] = 1
    return src


BAD_COORDINATES = [
    (0.0, 1), (0, 1.5), (np.float32(0), 1), (np.float64(1), 0), ("0", 1), (0, None), (True, 1),
    (np.bool_(False), 0), (0, [1]), (0, np.array([1])), "01", 0, None, 1.5, b"\x00\x01",
]


@pytest.mark.parametrize("coords", BAD_COORDINATES, ids=repr)
def test_chunk_exists_rejects_non_integer_coordinates(chunked, coords):
    with pytest.raises(TypeError, match="integer"):
        chunked.chunk_exists(coords)
    if isinstance(coords, tuple):
        with pytest.raises(TypeError):  # as indexing rejects them
            chunked[coords]


@pytest.mark.parametrize("coords", [(0,), (0, 1, 0), ()])
def test_chunk_exists_wrong_length_names_the_array(chunked, coords):
    with pytest.raises(ValueError, match="coordinates") as info:
        chunked.chunk_exists(coords)
    assert chunked.path in str(info.value) and "g/a" in str(info.value)


@pytest.mark.parametrize("coords", [(2, 0), (0, -1), (2**64, 0), (-(2**70), 0)])
def test_chunk_exists_outside_the_grid_names_the_array(chunked, coords):
    with pytest.raises(ValueError, match="outside the chunk grid") as info:
        chunked.chunk_exists(coords)
    assert chunked.path in str(info.value)


def test_chunk_exists_takes_python_and_numpy_integers(chunked):
    assert chunked.chunk_exists((0, 1)) is True
    assert chunked.chunk_exists([np.int64(0), np.uint8(1)]) is True
    assert chunked.chunk_exists(np.array([1, 1])) is False


# --- (4) metadata ------------------------------------------------------------------------------

DEEP_LIST = "[" * DEEP + "]" * DEEP
DEEP_OBJECT = '{"a":' * DEEP + "1" + "}" * DEEP
DATA = np.arange(16, dtype="uint8").reshape(4, 4)


def write_peer_array(fmt: str, root: Path, key: str) -> Path:
    """A 4x4 uint8 array at ``key`` written by zarr-python or z5py; its metadata file."""
    if fmt == "n5":
        with z5py.File(str(root), "a") as f:
            f.create_dataset(key or "", data=DATA, chunks=(2, 2), compression="raw") if key \
                else None
        if not key:  # z5py cannot put a dataset at the root: write it in a group, then lift it
            with z5py.File(str(root), "a") as f:
                f.create_dataset("tmp", data=DATA, chunks=(2, 2), compression="raw")
            for entry in (root / "tmp").iterdir():
                entry.rename(root / entry.name)
            (root / "tmp").rmdir()
        return root / key / "attributes.json"
    zarr_format = 3 if fmt == "zarr3" else 2
    array = zarr.create_array(str(root), name=key or None, shape=(4, 4), chunks=(2, 2),
                              dtype="uint8", zarr_format=zarr_format, compressors=None)
    array[...] = DATA
    return root / key / ("zarr.json" if zarr_format == 3 else ".zarray")


def edit(path: Path, change: dict[str, Any] | None = None, *, raw: dict[str, str] | None = None,
         drop: tuple[str, ...] = ()) -> None:
    """Rewrite the JSON metadata at ``path``: members changed or dropped, or a member's JSON
    text replaced by ``raw`` (for values json cannot produce: deep nesting, invalid bytes)."""
    meta = json.loads(path.read_text())
    meta.update(change or {})
    for key in drop:
        meta.pop(key, None)
    text = json.dumps(meta)
    data = text.encode()
    for key, value in (raw or {}).items():
        placeholder = json.dumps({key: meta.get(key, "@@")})[1:-1]
        marker = f'"{key}": "@@"'
        text = text.replace(placeholder, marker) if key in meta else text[:-1] + f", {marker}}}"
        data = text.encode().replace(b'"@@"', value.encode("latin-1"))
    path.write_bytes(data)


def attributes_member(fmt: str) -> str:
    """Where user attributes live: zarr v3 ``attributes``, an N5 top-level key."""
    return "attributes" if fmt == "zarr3" else "my_attribute"


SHAPE = {"zarr3": "shape", "zarr2": "shape", "n5": "dimensions"}
DTYPE = {"zarr3": "data_type", "zarr2": "dtype", "n5": "dataType"}


def metadata_cases() -> list[Any]:
    """(fmt, case, how to damage the metadata file, expected: "opens" or "ValueError")."""
    cases = []
    for fmt in ("zarr3", "zarr2", "n5"):
        attrs = attributes_member(fmt)
        add = [
            ("non-utf8-bytes", lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()), "error"),
            ("truncated-json", lambda p: p.write_bytes(p.read_bytes()[:30]), "error"),
            ("empty-file", lambda p: p.write_bytes(b""), "error"),
            ("not-an-object", lambda p: p.write_text("[1, 2, 3]"), "error"),
            ("deep-whole-file", lambda p: p.write_text(DEEP_LIST), "error"),
            ("deep-shape", lambda p, f=fmt: edit(p, raw={SHAPE[f]: DEEP_LIST}), "error"),
            ("shape-string", lambda p, f=fmt: edit(p, {SHAPE[f]: "abc"}), "error"),
            ("shape-floats", lambda p, f=fmt: edit(p, {SHAPE[f]: [1.5, 4]}), "error"),
            ("shape-negative", lambda p, f=fmt: edit(p, {SHAPE[f]: [-1, 4]}), "error"),
            ("shape-null", lambda p, f=fmt: edit(p, {SHAPE[f]: None}), "error"),
            ("shape-2**64", lambda p, f=fmt: edit(p, {SHAPE[f]: [2**64, 4]}), "error"),
            ("dtype-number", lambda p, f=fmt: edit(p, {DTYPE[f]: 5}), "error"),
            ("dtype-unknown", lambda p, f=fmt: edit(p, {DTYPE[f]: "complex512"}), "error"),
        ]
        if fmt != "zarr2":
            add += [
                ("non-utf8-in-attributes",
                 lambda p, a=attrs: edit(p, raw={a: '"\xff\xfe"'}), "error"),
                ("deep-list-in-attributes",
                 lambda p, a=attrs: edit(p, raw={a: '{"x": %s}' % DEEP_LIST}), "opens"),
                ("deep-object-in-attributes",
                 lambda p, a=attrs: edit(p, raw={a: DEEP_OBJECT}), "opens"),
            ]
        else:
            # User attributes (.zattrs) are never read to open an array: damage there does not
            # stop the data from reading.
            add += [
                ("zattrs-non-utf8",
                 lambda p: p.with_name(".zattrs").write_bytes(b'{"a": "\xff"}'), "opens"),
                ("zattrs-deep",
                 lambda p: p.with_name(".zattrs").write_text('{"a": %s}' % DEEP_LIST), "opens"),
                ("zattrs-not-an-object",
                 lambda p: p.with_name(".zattrs").write_text("[1]"), "opens"),
                ("compressor-string", lambda p: edit(p, {"compressor": "gzip"}), "error"),
                ("filters-object", lambda p: edit(p, {"filters": {}}), "error"),
                ("order-number", lambda p: edit(p, {"order": 5}), "error"),
            ]
        if fmt == "zarr3":
            add += [
                ("node-type-unknown", lambda p: edit(p, {"node_type": "banana"}), "error"),
                ("node-type-number", lambda p: edit(p, {"node_type": 7}), "error"),
                ("node-type-missing", lambda p: edit(p, drop=("node_type",)), "error"),
                ("chunk-grid-list", lambda p: edit(p, {"chunk_grid": []}), "error"),
                ("codecs-string", lambda p: edit(p, {"codecs": "gzip"}), "error"),
                ("fill-value-object", lambda p: edit(p, {"fill_value": {}}), "error"),
                ("zarr-format-string", lambda p: edit(p, {"zarr_format": "3"}), "error"),
            ]
        if fmt == "n5":
            add += [
                ("block-size-string", lambda p: edit(p, {"blockSize": "x"}), "error"),
                ("compression-type-number", lambda p: edit(p, {"compression": {"type": 5}}),
                 "error"),
            ]
        cases += [(fmt, name, damage, expected) for name, damage, expected in add]
    return cases


METADATA_PARAMS = []
for _fmt, _case, _damage, _expected in metadata_cases():
    for _layout in ("root", "keyed", "listed"):
        METADATA_PARAMS.append(pytest.param(_fmt, _damage, _expected, _layout,
                                            id=f"{_fmt}-{_case}-{_layout}"))


@pytest.mark.parametrize(("fmt", "damage", "expected", "layout"), METADATA_PARAMS)
def test_damaged_metadata_is_a_valueerror_naming_the_file(tmp_path, fmt, damage, expected,
                                                          layout):
    """``layout``: the array at the root, at ``grp/a`` opened by key, or found by listing."""
    root = tmp_path / ("c.n5" if fmt == "n5" else "c.zarr")
    key = "" if layout == "root" else "grp/a"
    if key and fmt == "n5":
        with z5py.File(str(root), "w"):
            pass
    elif key:
        zarr.open_group(str(root), mode="w", zarr_format=3 if fmt == "zarr3" else 2)
    metadata = write_peer_array(fmt, root, key)
    damage(metadata)
    if expected == "opens":
        src = open_source(root, key if layout == "keyed" else None)
        np.testing.assert_array_equal(src[...], DATA)
        return
    with pytest.raises(ValueError) as info:
        open_source(root, key if layout == "keyed" else None)
    err = info.value
    assert not isinstance(err, UnicodeError)
    assert str(metadata.parent) in str(err) or str(metadata) in str(err), str(err)


def test_metadata_reader_against_json_on_deep_files(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"keep": [1, {"x": "]}\\""}], "deep": %s, "n": -1.5e3, "t": true}'
                    % DEEP_LIST)
    assert read_json_object(path, members=("keep", "n", "t")) == {
        "keep": [1, {"x": ']}"'}], "n": -1500.0, "t": True}
    with pytest.raises(ValueError, match="nested too deeply") as info:
        read_json_object(path)
    assert str(path) in str(info.value)
    assert read_json_object(tmp_path / "missing.json") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5), st.booleans())
def test_metadata_reader_skipping_members_equals_json(obj, indent):
    """The path that skips deep members parses the others exactly as ``json`` does."""
    from bioimage_py.io.metadata_json import _parse_members

    text = json.dumps(obj, indent=2 if indent else None, ensure_ascii=not indent)
    members = list(obj)[::2]
    assert _parse_members("m.json", text, members) == {k: obj[k] for k in members}
    assert _parse_members("m.json", text, None) == obj


def test_knossos_conf_with_absurd_boundary_names_the_file(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    cube = tmp_path / "ds" / "mag1" / "x0000" / "y0000" / "z0000"
    cube.mkdir(parents=True)
    iio.imwrite(cube / "ds_mag1_x0000_y0000_z0000.png", np.zeros((128 * 128, 128), "uint8"))
    conf = tmp_path / "ds" / "knossos.conf"
    for boundary in ("9" * 5000, "0", "-3", "1e9", "99999999999999999999"):
        conf.write_text(f"boundary x {boundary};\nboundary y 10;\nboundary z 10;\n")
        with pytest.raises(ValueError, match="boundary x") as info:
            open_source(tmp_path / "ds")
        assert str(conf) in str(info.value)
    conf.write_bytes(b"\xff\xfe comment\nboundary x 10;\nboundary y 20;\nboundary z 30;\n")
    assert open_source(tmp_path / "ds").shape == (30, 20, 10)  # non-UTF-8 comments are fine


def test_knossos_odd_folder_names_are_not_cubes(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    cube = tmp_path / "ds" / "mag1" / "x0000" / "y0000" / "z0000"
    cube.mkdir(parents=True)
    iio.imwrite(cube / "ds_mag1_x0000_y0000_z0000.png", np.ones((128 * 128, 128), "uint8"))
    for name in ("x" + "9" * 250, "x\u00b2", "x99999999999"):
        (tmp_path / "ds" / "mag1" / name).mkdir()
    src = open_source(tmp_path / "ds")
    assert src.shape == (128, 128, 128)


def test_knossos_damaged_cube_names_the_file(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    folder = tmp_path / "ds" / "mag1" / "x0000" / "y0000" / "z0000"
    folder.mkdir(parents=True)
    cube = folder / "ds_mag1_x0000_y0000_z0000.png"
    iio.imwrite(cube, np.ones((128 * 128, 128), "uint8"))
    src = open_source(tmp_path / "ds")
    cube.write_bytes(cube.read_bytes()[:100])
    with pytest.raises(OSError) as info:
        src[0]
    assert str(cube) in str(info.value)
    cube.write_bytes(b"not a png")
    with pytest.raises(ValueError) as info:
        open_source(tmp_path / "ds")
    assert str(cube) in str(info.value)


# --- (9) the command line ----------------------------------------------------------------------


def cli_run(*args: str, cwd: Path, memory_mb: int | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from bioimage_py.cli import main; sys.exit(main(sys.argv[1:]))"
    prelude = ("import resource; resource.setrlimit(resource.RLIMIT_AS, "
               f"({memory_mb} << 20, {memory_mb} << 20)); " if memory_mb else "")
    return subprocess.run([sys.executable, "-c", prelude + code, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT)


def assert_one_error_line(done: subprocess.CompletedProcess, *names: str) -> str:
    err = done.stderr.strip()
    assert done.returncode == 1, (done.returncode, err)
    assert err.startswith("bioimage-py: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    assert any(name in err for name in names), err
    return err


@pytest.mark.parametrize(("option", "value"), [
    ("--chunks", "99999999999999999999"),
    ("--chunks", "4,4,99999999999999999999"),
    ("--shards", "99999999999999999999"),
    ("--block-shape", "99999999999999999999"),
    ("--compression", "zstd:99999999999999999999"),
    ("--compression", "gzip:-99999999999999999999"),
    ("--chunks", "9" * 5000),
    ("--chunks", "9223372036854775807"),
])
def test_cli_absurd_option_values_are_one_line(tmp_path, option, value):
    tifffile.imwrite(tmp_path / "s.tif", volume(shape=(4, 8, 8)), photometric="minisblack")
    done = cli_run("convert", "s.tif", "out.zarr", option, value, cwd=tmp_path)
    assert_one_error_line(done, option.lstrip("-"), "out.zarr")


def test_cli_damaged_metadata_is_one_line(tmp_path):
    zarr.create_array(str(tmp_path / "a.zarr"), shape=(4, 4), dtype="uint8")
    (tmp_path / "a.zarr" / "zarr.json").write_text(DEEP_LIST)  # RecursionError in json today
    assert_one_error_line(cli_run("info", "a.zarr", cwd=tmp_path), "a.zarr")
    assert_one_error_line(cli_run("convert", "a.zarr", "b.n5", cwd=tmp_path), "a.zarr")
    (tmp_path / "a.zarr" / "zarr.json").write_bytes(b'{"zarr_format": 3, "node_type": "\xff"}')
    assert_one_error_line(cli_run("info", "a.zarr", cwd=tmp_path), "a.zarr")
    (tmp_path / "a.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "x"}')
    assert_one_error_line(cli_run("info", "a.zarr", cwd=tmp_path), "a.zarr")


def test_cli_truncated_tiff_is_one_line(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", volume(shape=(4, 64, 64)), photometric="minisblack")
    os.truncate(tmp_path / "s.tif", 5000)
    assert_one_error_line(cli_run("info", "s.tif", cwd=tmp_path), "s.tif")


def test_cli_out_of_memory_is_one_line(tmp_path):
    m = tifffile.memmap(tmp_path / "huge.tif", shape=(64, 4096, 4096), dtype="uint8")  # sparse
    del m
    done = cli_run("convert", "huge.tif", "out.zarr", "--block-shape", "64,4096,4096",
                   "--quiet", cwd=tmp_path, memory_mb=700)
    err = assert_one_error_line(done, "huge.tif")
    assert "MemoryError" in err


@pytest.mark.parametrize("error", [MemoryError(), RecursionError("maximum recursion depth"),
                                   OverflowError("int too big"), ZeroDivisionError("boom")])
def test_cli_unexpected_errors_are_one_line_naming_the_files(tmp_path, capsys, monkeypatch,
                                                             error):
    tifffile.imwrite(tmp_path / "s.tif", volume(shape=(4, 8, 8)), photometric="minisblack")

    def failing_copy(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(bioimage_py, "copy", failing_copy)
    assert cli.main(["convert", str(tmp_path / "s.tif"), str(tmp_path / "o.zarr")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bioimage-py: error: ") and "\n" not in err
    assert "s.tif" in err and "o.zarr" in err and type(error).__name__ in err or \
        "out of memory" in err


# --- (10) HDF5 writers killed mid-write --------------------------------------------------------

_KILLED_WRITER = """
    import os, sys, time
    from bioimage_py import copy, open_source
    from bioimage_py.wrapper import SimpleTransformationSource
    h5, src_path, tmp_root, marker = sys.argv[1:5]
    calls = 0

    def paced(block):
        # Block 32 tells the parent to kill; from block 40 on the run waits to be killed, so
        # the kill lands while blocks 32-39 are read, written and recorded.
        global calls
        calls += 1
        if calls == 32:
            open(marker, "w").close()
        if calls >= 40:
            time.sleep(3600)
        return block

    src = SimpleTransformationSource(open_source(src_path), paced)
    out = open_source(h5, "data", mode="r+")
    copy(src, out, block_shape=(16, 16, 16), job_config={"tmp_root": tmp_root}, progress=False)
"""


@pytest.mark.parametrize("rerun", ["resume_from", "block_ids"])
def test_hdf5_writer_killed_mid_write_is_restored_by_a_rerun(tmp_path, rerun):
    shape, blocks = (64, 64, 64), 64
    new = volume(shape=shape, seed=3)
    create_array(tmp_path / "new.zarr", shape=shape, dtype="uint16", chunks=(16, 16, 16))[...] = new
    out = create_array(tmp_path / "out.h5", "data", shape=shape, dtype="uint16",
                       chunks=(16, 16, 16))
    out[...] = 7  # every chunk exists: the killed run rewrites them
    del out
    jobs, marker = tmp_path / "jobs", tmp_path / "kill-now"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_WRITER), str(tmp_path / "out.h5"),
         str(tmp_path / "new.zarr"), str(jobs), str(marker)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists():
            assert writer.poll() is None, writer.stderr.read()
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.001)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    with h5py.File(tmp_path / "out.h5", "r") as f:  # h5py still opens what the kill left
        assert f["data"].shape == shape
    src = open_source(tmp_path / "new.zarr")
    out = open_source(tmp_path / "out.h5", "data", mode="r+")
    if rerun == "resume_from":
        (job,) = glob.glob(str(jobs / "*"))
        bioimage_py.copy(src, out, block_shape=(16, 16, 16), resume_from=job, progress=False)
    else:
        bioimage_py.copy(src, out, block_shape=(16, 16, 16), block_ids=range(blocks),
                         progress=False)
    del out
    with h5py.File(tmp_path / "out.h5", "r") as f:
        np.testing.assert_array_equal(f["data"][...], new)
