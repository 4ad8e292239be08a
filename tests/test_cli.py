"""The command line end to end: ``python -m bioimage_py info/convert`` in a subprocess, on files
written by the peer libraries (tifffile, mrcfile, zarr-python, z5py, h5py), and ``cli.main``
in-process for the error cases."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import z5py
import zarr

from bioimage_py import cli, create_array, open_source

SHAPE = (20, 33, 40)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 4000, SHAPE, dtype=np.uint16)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bioimage_py", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_convert_tiff_to_zarr_n5_hdf5_and_back(tmp_path, data):
    tifffile.imwrite(tmp_path / "stack.tif", data)
    done = run("convert", "stack.tif", "vol.zarr", "--chunks", "8,16,16", "--shards", "16,32,32",
               "--compression", "zstd:5", "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "converted stack.tif" in done.stdout and "Traceback" not in done.stderr
    vol = open_source(tmp_path / "vol.zarr")
    assert vol.chunks == (8, 16, 16) and vol.shards == (16, 32, 32)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "vol.zarr"))[...], data)

    done = run("convert", "vol.zarr", "vol.n5", "--key", "raw/s0", "--job-type", "subprocess",
               "--workers", "2", "--compression", "gzip", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    np.testing.assert_array_equal(z5py.File(str(tmp_path / "vol.n5"), "r")["raw/s0"][...], data)

    done = run("convert", "vol.n5", "vol.h5", "--src-key", "raw/s0", "--key", "volume",
               "--chunks", "10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with h5py.File(tmp_path / "vol.h5", "r") as f:
        assert f["volume"].chunks == (10, 10, 10)
        np.testing.assert_array_equal(f["volume"][...], data)

    done = run("convert", "vol.h5", "v2.zarr", "--zarr-format", "2", "--compression", "raw",
               "--block-shape", "20,20,40", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    v2 = zarr.open_array(str(tmp_path / "v2.zarr"), mode="r")
    assert v2.metadata.zarr_format == 2 and v2.chunks == (10, 10, 10)
    np.testing.assert_array_equal(v2[...], data)


def test_convert_mrc_with_dask_workers(tmp_path, data):
    with mrcfile.new(tmp_path / "map.mrc") as mrc:
        mrc.set_data(data.astype(np.int16))
    done = run("convert", "map.mrc", "map.zarr", "--job-type", "dask", "--workers", "2",
               "--chunks", "16", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # MRC is presented with y flipped (0.2's orientation)
    np.testing.assert_array_equal(open_source(tmp_path / "map.zarr")[...],
                                  data.astype(np.int16)[:, ::-1, :])


def test_info_single_array_and_container(tmp_path, data):
    array = zarr.create_array(str(tmp_path / "a.zarr"), shape=SHAPE, chunks=(10, 11, 20),
                              shards=(20, 33, 40), dtype="uint16")
    array[...] = data
    done = run("info", "a.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert lines["format"].strip() == "zarr (v3)"
    assert lines["shape"].strip() == str(SHAPE) and lines["dtype"].strip() == "uint16"
    assert lines["chunks"].strip() == "(10, 11, 20)" and lines["shards"].strip() == str(SHAPE)
    assert lines["compression"].strip() == "zstd:0" and lines["writable"].strip() == "yes"

    with z5py.File(str(tmp_path / "c.n5"), "w") as f:
        f.create_dataset("raw", data=data, chunks=(10, 10, 10), compression="gzip", level=4)
        f.create_dataset("seg/s0", shape=(4, 5), dtype="uint64", chunks=(2, 2))
    done = run("info", "c.n5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 arrays" in done.stdout and "raw  shape (20, 33, 40)  dtype uint16" in done.stdout
    assert "seg/s0  shape (4, 5)  dtype uint64" in done.stdout
    done = run("info", "c.n5", "raw", cwd=tmp_path)
    assert "compression: gzip:4" in done.stdout and "format:      n5" in done.stdout

    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("x", data=data, chunks=(5, 11, 10), compression="gzip",
                         compression_opts=2, shuffle=True)
    assert "compression: gzip:2 + shuffle" in run("info", "f.h5", cwd=tmp_path).stdout

    tifffile.imwrite(tmp_path / "s.tif", data)
    out = run("info", "s.tif", cwd=tmp_path).stdout
    assert "compression: -" in out and "writable:    no (read-only format)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "missing.zarr"], "'missing.zarr' does not exist"),
        (["info", "a.zarr", "nope"], "internal_path 'nope' does not exist"),
        (["info", "a.xyz"], "Could not infer the file format"),
        (["convert", "missing.n5", "out.zarr"], "'missing.n5' does not exist"),
        (["convert", "a.zarr", "out.tif"], "cannot write tif files"),
        (["convert", "a.zarr", "out.xyz"], "Could not infer the file format"),
        (["convert", "a.zarr", "out.zarr", "--chunks", "8,8"], "--chunks must be 3 positive"),
        (["convert", "a.zarr", "out.zarr", "--chunks", "a,b,c"], "comma-separated integers"),
        (["convert", "a.zarr", "out.zarr", "--compression", "zstd:x"], "level must be an int"),
        (["convert", "a.zarr", "out.zarr", "--compression", "nope"], "compression"),
        (["convert", "a.zarr", "out.n5", "--shards", "16"], "cannot be sharded"),
        (["convert", "a.zarr", "out.zarr", "--block-shape", "5,8,8"], "does not align"),
        (["convert", "a.zarr", "out.zarr", "--workers", "0"], "--workers must be at least 1"),
        (["convert", "a.zarr", "a.zarr"], "SRC and DST are the same array"),
        (["convert", "a.zarr", "b.zarr"], "pass --overwrite"),
        (["convert", "a.zarr", "out.zarr", "--src-key", "k"], "internal_path 'k'"),
        (["convert", "two.zarr", "out.zarr"], "holds 2 arrays; pass --src-key to choose"),
        (["info", "two.zarr", "x/y"], "internal_path 'x/y' does not exist"),
    ],
)
def test_errors_are_one_line_and_exit_1(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    for name in ("a.zarr", "b.zarr", "two.zarr/x", "two.zarr/y"):
        zarr.create_array(name, shape=(8, 8, 8), chunks=(4, 4, 4), dtype="uint8")
    Path("a.xyz").write_text("?")
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("bioimage-py: error: ") and "\n" not in err, err
    assert message in err, err
    assert captured.out == ""


def test_error_in_subprocess_has_no_traceback(tmp_path):
    done = run("convert", "nothing.tif", "out.zarr", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "bioimage-py: error: 'nothing.tif' does not exist"


def test_usage_errors_exit_2(tmp_path):
    assert run(cwd=tmp_path).returncode == 2
    assert run("convert", "only-src", cwd=tmp_path).returncode == 2
    assert run("convert", "a", "b", "--job-type", "cluster", cwd=tmp_path).returncode == 2
    help_text = run("convert", "--help", cwd=tmp_path).stdout
    assert "--src-key" in help_text and "--compression" in help_text


def test_console_script_entry_point_is_cli_main():
    import tomllib

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts["bioimage-py"] == "bioimage_py.cli:main"
    assert os.path.exists(Path(cli.__file__).with_name("__main__.py"))


def test_failed_blocks_are_one_line(tmp_path, capsys):
    zarr.create_array(str(tmp_path / "a.zarr"), shape=(8, 8, 8), chunks=(4, 4, 4), dtype="uint8")
    chunk = tmp_path / "a.zarr" / "c" / "1" / "0" / "1"
    chunk.parent.mkdir(parents=True)
    chunk.write_bytes(b"not zstd")  # a corrupt chunk: its block fails
    assert cli.main(["convert", str(tmp_path / "a.zarr"), str(tmp_path / "b.n5"),
                     "--workers", "1"]) == 1
    err = capsys.readouterr().err.strip()
    # Blocks 5 (the corrupt chunk), 6 and 7: a run stops at its first failure.
    assert err.startswith("bioimage-py: error: 3 blocks were not converted; the first error: ")
    assert "\n" not in err and "chunk [1, 0, 1]" in err and "corrupt" in err


def test_convert_to_an_ome_zarr_pyramid(tmp_path, data):
    create_array(tmp_path / "in.zarr", shape=data.shape, dtype=data.dtype,
                 chunks=(16, 16, 16))[...] = data
    done = run("convert", "in.zarr", "out.ome.zarr", "--ome", "--levels", "3", "--chunks", "16",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "levels s0, s1, s2" in done.stdout
    full = open_source(tmp_path / "out.ome.zarr")
    np.testing.assert_array_equal(full[...], data)
    assert full.ome["levels"] == ["s0", "s1", "s2"]
    assert open_source(tmp_path / "out.ome.zarr", "s2").shape == tuple(
        -(-n // 4) for n in data.shape)
    for extra, message in [(["--levels", "2"], "--levels needs --ome"),
                           (["--ome", "--key", "raw"], "drop --key")]:
        failed = run("convert", "in.zarr", "other.zarr", *extra, cwd=tmp_path)
        assert failed.returncode == 1 and message in failed.stderr, failed.stderr
