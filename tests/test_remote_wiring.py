"""URLs and zipped zarrs in the Python layer. Without a server: URL parsing, format detection
errors, the storage options (checked, recorded in specs, never credentials), read-only locations
refused before anything is touched, and zip files (written by zarr-python's ``ZipStore``, v2 and
v3, and by zipping a folder with ``zipfile``) opened read-only. The last part uses the moto S3
and HTTP servers of ``object_store_servers`` for what the Python layer adds on a store: modes
``"w"`` / ``"a"`` and their safety rule, format probing, groups, damaged metadata, OME-Zarr
pyramids written and read, and the CLI's URL options.

Reads and writes of the data themselves against real servers are in ``test_remote_s3.py`` /
``test_remote_http.py``.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import zarr

from bioimage_py import _core, copy, create_array, open_source, write_ome_pyramid
from bioimage_py import io as bio_io
from bioimage_py.cli import main as cli_main
from bioimage_py.errors import ReadOnlyLocationError
from bioimage_py.io.files import infer_extension, open_file
from bioimage_py.io.location import (
    check_location,
    describe_key,
    is_local,
    is_read_only_location,
    is_url,
    is_zip,
    join_key,
    normalize_location,
    split_storage_options,
    url_scheme,
)
from bioimage_py.sources import FileSource, SourceSpec, from_spec

pytest_plugins = ["object_store_servers"]

needs_store_core = pytest.mark.skipif(
    not hasattr(_core, "store_get"), reason="the core's store API (issue 13) is not built yet"
)

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


# --- URLs: parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scheme"),
    [
        ("s3://bucket/vol.zarr", "s3"),
        ("S3://bucket/vol.zarr", "s3"),
        ("gs://bucket", "gs"),
        ("https://host/data/vol.zarr", "https"),
        ("http://127.0.0.1:8000/vol.n5", "http"),
        ("/data/vol.zarr", None),
        ("vol.zarr", None),
        ("C:\\data\\vol.zarr", None),
        ("weird/dir://x", None),
    ],
)
def test_url_scheme(path, scheme):
    assert url_scheme(path) == scheme
    assert is_url(path) == (scheme is not None)


def test_locations_local_zip_url():
    assert is_zip("vol.zarr.zip") and is_zip("/a/B.ZIP")
    assert not is_zip("https://host/vol.zarr.zip")  # a URL, not a local zip file
    assert is_local("/a/vol.zarr") and not is_local("/a/vol.zip") and not is_local("s3://b/k")
    assert is_read_only_location("https://h/v.zarr") and is_read_only_location("v.zarr.zip")
    assert not is_read_only_location("s3://b/v.zarr") and not is_read_only_location("v.zarr")
    assert normalize_location("s3://b/vol.zarr//") == "s3://b/vol.zarr"
    assert normalize_location("/local/dir/") == "/local/dir/"
    assert join_key("a/", "/b/c/") == "a/b/c" and join_key("", "") == ""
    assert describe_key("s3://b/v.zarr", "g/zarr.json") == "s3://b/v.zarr/g/zarr.json"
    assert describe_key("/x/v.zarr.zip", "zarr.json") == "/x/v.zarr.zip/zarr.json"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://host/vol.zarr", "unsupported URL scheme 'ftp'"),
        ("az://container/vol.zarr", "unsupported URL scheme 'az'"),
        ("file:///data/vol.zarr", "or a local path"),
        ("s3:///vol.zarr", "names no bucket"),
        ("https:///vol.zarr", "names no host"),
        ("https://host/vol.zarr.zip", "local files only"),
    ],
)
def test_bad_urls_fail_up_front(url, match):
    with pytest.raises(ValueError, match=match):
        check_location(url)
    with pytest.raises(ValueError, match=match):
        open_source(url)


def test_extension_of_urls():
    assert infer_extension("s3://bucket/prefix/data.zarr/") == ".zarr"
    assert infer_extension("gs://bucket/img.ome.zarr") == ".zarr"
    assert infer_extension("vol.zarr.zip") == ".zip"
    assert bio_io.format_for_extension(".zip") == "zarr"


@pytest.mark.parametrize("url", ["s3://bucket/vol.h5", "https://host/img.tif", "gs://b/v.mrc"])
def test_url_of_a_local_only_format_is_refused(url):
    with pytest.raises(ValueError, match="local paths only"):
        open_source(url)


@pytest.mark.parametrize("format", ["hdf5", "tif", "mrc"])
def test_url_with_a_local_only_format_is_refused(format):
    with pytest.raises(ValueError, match=f"format '{format}' reads local files only"):
        open_source("s3://bucket/vol", format=format)
    with pytest.raises(ValueError, match="reads local files only"):
        create_array("s3://bucket/vol", "data", shape=(4,), dtype="uint8", format=format)


def test_registry_knows_which_formats_open_urls(tmp_path):
    from bioimage_py.io.registry import supports_urls

    assert supports_urls("zarr") and supports_urls("n5")
    assert not supports_urls("hdf5") and not supports_urls("folder")


# --- storage options --------------------------------------------------------------------------


def test_split_storage_options():
    options, rest = split_storage_options(
        "s3://b/v.zarr",
        {"endpoint_url": "http://localhost:9000", "region": "eu-west-1", "anonymous": True,
         "missing_chunks": "error", "chunk_cache_bytes": 0},
    )
    assert options == {"endpoint_url": "http://localhost:9000", "region": "eu-west-1",
                       "anonymous": True}
    assert rest == {"missing_chunks": "error", "chunk_cache_bytes": 0}
    # None means not given: local paths accept it
    assert split_storage_options("/x/v.zarr", {"endpoint_url": None}) == (None, {})
    assert split_storage_options("s3://b/v.zarr", {}) == (None, {})


@pytest.mark.parametrize("option", [
    {"endpoint_url": "http://localhost:9000"}, {"region": "us-east-1"}, {"anonymous": True},
    {"anonymous": False},
])
def test_url_options_on_a_local_path_are_a_value_error(tmp_path, option):
    path = tmp_path / "vol.zarr"
    create_array(path, shape=(4, 4), dtype="uint8")
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"{name} apply to URLs.*local path"):
        open_source(path, **option)
    with pytest.raises(ValueError, match="apply to URLs"):
        create_array(tmp_path / "other.zarr", shape=(4,), dtype="uint8", **option)
    with pytest.raises(ValueError, match="apply to URLs"):
        open_file(path, **option)
    with pytest.raises(ValueError, match="apply to URLs.*local zip file"):
        open_source(tmp_path / "vol.zarr.zip", **option)
    # nothing was created by the refused call
    assert not (tmp_path / "other.zarr").exists()


@pytest.mark.parametrize("name", [
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "secret", "key", "token",
    "credentials", "password",
])
def test_credentials_are_never_arguments(tmp_path, name):
    for call in (
        lambda: open_source("s3://bucket/vol.zarr", **{name: SECRET}),
        lambda: create_array("s3://bucket/vol.zarr", shape=(4,), dtype="uint8",
                             **{name: SECRET}),
        lambda: open_source(tmp_path / "vol.zarr", **{name: SECRET}),
    ):
        with pytest.raises(TypeError, match="from the environment") as info:
            call()
        assert SECRET not in str(info.value)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected option endpoint for the zarr container"):
        open_source("s3://bucket/vol.zarr", endpoint="http://localhost:9000")
    with pytest.raises(TypeError, match="endpoint_url, region, anonymous"):
        open_source("gs://bucket/vol.n5", profile="default")


def test_unknown_option_on_a_local_container_is_a_type_error(tmp_path):
    create_array(tmp_path / "vol.zarr", shape=(4,), dtype="uint8")
    with pytest.raises(TypeError, match="unexpected option bogus"):
        open_source(tmp_path / "vol.zarr", bogus=1)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"endpoint_url": "localhost:9000"}, ValueError, "http:// or https:// URL"),
        ({"endpoint_url": "s3://other"}, ValueError, "http:// or https:// URL"),
        ({"endpoint_url": "http://"}, ValueError, "http:// or https:// URL"),
        ({"endpoint_url": 9000}, TypeError, "endpoint_url must be a str"),
        ({"region": ""}, ValueError, "region must not be empty"),
        ({"region": 1}, TypeError, "region must be a str"),
        ({"anonymous": "yes"}, TypeError, "anonymous must be True or False"),
        ({"anonymous": 1}, TypeError, "anonymous must be True or False"),
    ],
)
def test_bad_option_values(options, error, match):
    with pytest.raises(error, match=match):
        open_source("s3://bucket/vol.zarr", **options)
    with pytest.raises(error, match=match):
        create_array("s3://bucket/vol.zarr", shape=(4,), dtype="uint8", **options)


def test_endpoint_and_region_do_not_apply_to_http_urls():
    with pytest.raises(ValueError, match="its own endpoint"):
        open_source("https://host/vol.zarr", endpoint_url="http://localhost:9000")
    with pytest.raises(ValueError, match="its own endpoint"):
        open_source("http://host/vol.zarr", region="eu-west-1")


# --- read-only locations ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["r+", "a", "w"])
@pytest.mark.parametrize("url", ["https://host/vol.zarr", "http://127.0.0.1:9/vol.n5"])
def test_http_urls_are_read_only(url, mode):
    with pytest.raises(ReadOnlyLocationError, match="HTTP.*read-only") as info:
        open_source(url, mode=mode)
    assert url in str(info.value)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", ["https://host/vol.zarr", "http://host/x.n5"])
def test_create_array_refuses_http(url):
    with pytest.raises(ReadOnlyLocationError, match="cannot create an array in"):
        create_array(url, shape=(4,), dtype="uint8")


def test_write_ome_pyramid_refuses_http_and_zip(tmp_path):
    image = np.zeros((8, 8), "uint8")
    with pytest.raises(ReadOnlyLocationError, match="cannot write an OME-Zarr image to"):
        write_ome_pyramid(image, "https://host/img.ome.zarr")
    with pytest.raises(ReadOnlyLocationError, match="zip files are read-only"):
        write_ome_pyramid(image, tmp_path / "img.zarr.zip")


@pytest.mark.parametrize("mode", ["r+", "a", "w"])
def test_zip_files_are_read_only_before_anything_is_touched(tmp_path, mode):
    path = tmp_path / "vol.zarr.zip"
    path.write_bytes(b"not even a zip file")
    with pytest.raises(ReadOnlyLocationError, match="zip files are read-only") as info:
        open_source(path, mode=mode)
    assert str(path) in str(info.value)
    with pytest.raises(ReadOnlyLocationError, match="zip files are read-only"):
        create_array(path, "a", shape=(4,), dtype="uint8")
    assert path.read_bytes() == b"not even a zip file"


def test_a_missing_zip_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.zarr.zip")


# --- specs ------------------------------------------------------------------------------------


def _remote_source(**open_kwargs):
    """A FileSource as open_source makes it for a remote array (the array itself is local
    data: what is tested is what the source records)."""
    return FileSource(
        np.arange(12, dtype="uint8").reshape(3, 4), path="s3://bucket/vol.zarr",
        internal_path="raw", format="zarr", mode="r", open_kwargs=open_kwargs,
    )


def test_specs_record_url_and_options_never_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    source = _remote_source(endpoint_url="http://localhost:9000", region="eu-west-1",
                            anonymous=False, missing_chunks="error")
    spec = source.to_spec()
    assert spec.kind == "file" and spec.path == "s3://bucket/vol.zarr"
    assert spec.internal_path == "raw"
    assert spec.params == {"format": "zarr", "mode": "r", "endpoint_url": "http://localhost:9000",
                           "region": "eu-west-1", "anonymous": False, "missing_chunks": "error"}
    text = spec.to_json()
    assert SourceSpec.from_json(text) == spec
    for dump in (text, repr(spec), repr(source), pickle.dumps(spec), pickle.dumps(source)):
        shown = dump if isinstance(dump, str) else dump.decode("latin-1")
        assert SECRET not in shown and "AKIDEXAMPLE" not in shown


def test_remote_spec_reopens_with_its_options(monkeypatch):
    """FileSource.reopen passes the recorded URL and options back to open_source."""
    calls = []

    def fake_open_source(path, internal_path=None, format=None, mode="r", **kwargs):
        calls.append((path, internal_path, format, mode, kwargs))
        return "reopened"

    monkeypatch.setattr("bioimage_py.sources.file_source.open_source", fake_open_source)
    spec = _remote_source(endpoint_url="http://localhost:9000", anonymous=True).to_spec()
    assert from_spec(SourceSpec.from_json(spec.to_json())) == "reopened"
    assert calls == [("s3://bucket/vol.zarr", "raw", "zarr", "r",
                      {"endpoint_url": "http://localhost:9000", "anonymous": True})]


# --- zip files --------------------------------------------------------------------------------


def _zip_with_zarr_python(path, zarr_format, arrays):
    store = zarr.storage.ZipStore(str(path), mode="w")
    root = zarr.open_group(store, mode="w", zarr_format=zarr_format)
    for key, data in arrays.items():
        array = root.create_array(key, shape=data.shape, chunks=(3,) * data.ndim,
                                  dtype=data.dtype)
        array[...] = data
    store.close()


def _zip_folder(folder, path, top=None):
    """Zip ``folder``'s files with ``zipfile``, at the archive's root (or under ``top``)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for dirpath, _, files in os.walk(folder):
            for name in files:
                full = os.path.join(dirpath, name)
                arcname = os.path.relpath(full, folder).replace(os.sep, "/")
                archive.write(full, arcname if top is None else f"{top}/{arcname}")


@needs_store_core
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_python_zip_store_opens_read_only(tmp_path, zarr_format):
    data = np.arange(7 * 8 * 5, dtype="int16").reshape(7, 8, 5)
    path = tmp_path / "vol.zarr.zip"
    _zip_with_zarr_python(path, zarr_format, {"raw": data, "seg/labels": data.astype("uint32")})
    source = open_source(path, "raw")
    assert source.format == "zarr" and not source.writable and source.path == str(path)
    np.testing.assert_array_equal(source[:], data)
    np.testing.assert_array_equal(source[2:5, ::1, 3], data[2:5, :, 3])
    with pytest.raises(TypeError, match="read-only"):
        source[0, 0, 0] = 1
    labels = open_source(path, "seg/labels")
    np.testing.assert_array_equal(labels[:], data)
    # several arrays: the message lists them
    with pytest.raises(ValueError, match="internal_path.*'raw', 'seg/labels'"):
        open_source(path)
    with pytest.raises(ValueError, match="does not exist.*'raw', 'seg/labels'"):
        open_source(path, "nope")
    # the spec reopens in this process and in another one
    spec = source.to_spec()
    assert spec.path == str(path) and spec.params == {"format": "zarr", "mode": "r"}
    np.testing.assert_array_equal(from_spec(spec)[:], data)
    script = (
        "import sys, numpy as np; from bioimage_py.sources import SourceSpec, from_spec; "
        "s = from_spec(SourceSpec.from_json(sys.argv[1])); print(int(np.asarray(s[:]).sum()))"
    )
    out = subprocess.run([sys.executable, "-c", script, spec.to_json()], check=True,
                         capture_output=True, text=True).stdout
    assert int(out) == int(data.sum())


@needs_store_core
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zipped_folder_opens(tmp_path, zarr_format):
    data = np.random.default_rng(0).integers(0, 1000, (9, 10), dtype="uint16")
    folder = tmp_path / "vol.zarr"
    create_array(folder, shape=data.shape, dtype=data.dtype, chunks=(4, 4),
                 zarr_format=zarr_format)[...] = data
    path = tmp_path / "vol.zarr.zip"
    _zip_folder(folder, path)
    source = open_source(path)  # a root array
    assert source.internal_path == "" and source.chunks == (4, 4)
    np.testing.assert_array_equal(source[:], data)
    # the same folder zipped under a top-level folder: one array, found by listing
    nested = tmp_path / "nested.zip"
    _zip_folder(folder, nested, top="vol.zarr")
    source = open_source(nested)
    assert source.internal_path == "vol.zarr"
    np.testing.assert_array_equal(source[:], data)


@needs_store_core
def test_zipped_n5_is_probed(tmp_path):
    data = np.arange(30, dtype="uint16").reshape(5, 6)
    create_array(tmp_path / "v.n5", "raw", shape=data.shape, dtype=data.dtype)[...] = data
    _zip_folder(tmp_path / "v.n5", tmp_path / "v.n5.zip")
    source = open_source(tmp_path / "v.n5.zip")
    assert source.format == "n5" and source.internal_path == "raw" and not source.writable
    np.testing.assert_array_equal(source[...], data)
    assert source.to_spec().params == {"format": "n5", "mode": "r"}
    np.testing.assert_array_equal(from_spec(source.to_spec())[...], data)


@needs_store_core
def test_zip_container_lookups(tmp_path):
    data = np.ones((4, 4), "uint8")
    path = tmp_path / "c.zip"
    _zip_with_zarr_python(path, 3, {"a/b/raw": data})
    container = open_file(path)
    assert "a" in container and "a/b" in container and "a/b/raw" in container
    assert "x" not in container
    group = container["a"]
    assert group.list_arrays() == ["b/raw"]
    np.testing.assert_array_equal(group["b/raw"][:], data)
    with pytest.raises(KeyError):
        container["a/nope"]
    assert bio_io.open_array(path)[1] == "a/b/raw"


@needs_store_core
def test_zip_with_damaged_metadata_names_the_file(tmp_path):
    path = tmp_path / "bad.zarr.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("zarr.json", b'{"zarr_format": 3, "node_type": ')
    with pytest.raises(ValueError, match="bad.zarr.zip/zarr.json.*not valid JSON"):
        open_source(path)


@needs_store_core
def test_copy_from_a_zip_and_cli_convert(tmp_path):
    data = np.arange(10 * 12, dtype="float32").reshape(10, 12)
    path = tmp_path / "in.zarr.zip"
    _zip_with_zarr_python(path, 2, {"raw": data})
    out = create_array(tmp_path / "out.zarr", shape=data.shape, dtype=data.dtype, chunks=(3, 3))
    copy(open_source(path, "raw"), out, job_type="subprocess", num_workers=2)
    np.testing.assert_array_equal(out[:], data)
    assert cli_main(["convert", str(path), str(tmp_path / "cli.n5"), "--src-key", "raw",
                     "--quiet"]) == 0
    np.testing.assert_array_equal(open_source(tmp_path / "cli.n5")[:], data)


def test_cli_refuses_zip_and_http_outputs(tmp_path, capsys):
    source = tmp_path / "in.zarr"
    create_array(source, shape=(4, 4), dtype="uint8")
    for dst in (str(tmp_path / "out.zarr.zip"), "https://host/out.zarr"):
        assert cli_main(["convert", str(source), dst, "--quiet"]) == 1
        err = capsys.readouterr().err
        assert "read-only" in err and dst in err


@needs_store_core
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_in_a_zip(tmp_path, zarr_format):
    image = np.arange(16 * 20, dtype="uint8").reshape(16, 20)
    folder = tmp_path / "img.ome.zarr"
    write_ome_pyramid(image, folder, levels=2, zarr_format=zarr_format, voxel_size=0.5)
    path = tmp_path / "img.ome.zarr.zip"
    _zip_folder(folder, path)
    source = open_source(path)
    assert source.internal_path == "s0"
    np.testing.assert_array_equal(source[:], image)
    ome = source.ome
    assert ome["levels"] == ["s0", "s1"] and ome["scale"] == [0.5, 0.5]
    assert open_source(path, "s1").ome["scale"] == [1.0, 1.0]


@needs_store_core
def test_cli_info_on_a_zip(tmp_path, capsys):
    data = np.zeros((6, 6), "uint8")
    path = tmp_path / "v.zarr.zip"
    _zip_with_zarr_python(path, 3, {"raw": data})
    assert cli_main(["info", str(path), "raw"]) == 0
    out = capsys.readouterr().out
    assert "zarr (v3)" in out and "(6, 6)" in out and "read-only location" in out
    assert "zstd" in out


def test_json_of_a_zip_spec_is_plain(tmp_path):
    spec = FileSource(np.zeros(3), path=str(tmp_path / "v.zarr.zip"), internal_path="raw",
                      format="zarr").to_spec()
    assert json.loads(spec.to_json())["path"].endswith("v.zarr.zip")


@pytest.mark.parametrize("path", ["https://host/out.zarr", "/data/out.zarr.zip"])
def test_runner_names_read_only_locations_of_outputs(path):
    output = FileSource(np.zeros((4, 4), "uint8"), path=path, internal_path="", format="zarr")
    with pytest.raises(TypeError, match="read-only.*cannot be written"):
        copy(np.ones((4, 4), "uint8"), output)


# --- on the test servers: what the Python layer adds ------------------------------------------


@needs_store_core
def test_mode_w_on_s3_deletes_only_a_container(s3_server, s3_bucket):
    s3, options = s3_server, {"endpoint_url": s3_server.endpoint_url}
    base = f"s3://{s3_bucket}"
    create_array(f"{base}/vol.zarr", "raw", shape=(4, 4), chunks=(2, 2), dtype="uint8",
                 **options)[...] = 1
    create_array(f"{base}/vol.zarr2", "raw", shape=(4, 4), chunks=(2, 2), dtype="uint8",
                 format="zarr", **options)[...] = 2
    s3.put(s3_bucket, "other/notes.txt", b"not a container")
    before = s3.keys(s3_bucket)

    container = open_file(f"{base}/vol.zarr", mode="w", **options)
    assert container.list_arrays() == []
    after = s3.keys(s3_bucket)
    # the container's keys replaced by an empty root group; the neighbour with a common
    # prefix ("vol.zarr2") and everything else untouched
    assert after == sorted([k for k in before if not k.startswith("vol.zarr/")]
                           + ["vol.zarr/zarr.json"])
    for url in (f"{base}/other", base):
        with pytest.raises(ValueError, match="refusing to overwrite.*no zarr container"):
            open_file(url, mode="w", format="zarr", **options)
    assert s3.keys(s3_bucket) == after


@needs_store_core
def test_mode_a_on_s3_creates_a_root_group_once(s3_server, s3_bucket):
    options = {"endpoint_url": s3_server.endpoint_url}
    open_file(f"s3://{s3_bucket}/new.n5", mode="a", **options)
    assert s3_server.keys(s3_bucket) == ["new.n5/attributes.json"]
    create_array(f"s3://{s3_bucket}/new.n5", "raw", shape=(5,), dtype="uint8", **options)
    open_file(f"s3://{s3_bucket}/new.n5", mode="a", **options)  # existing: left as it is
    assert open_source(f"s3://{s3_bucket}/new.n5", **options).internal_path == "raw"
    with pytest.raises(FileNotFoundError, match="no zarr container there") as info:
        open_source(f"s3://{s3_bucket}/missing.zarr", "raw", mode="r+", **options)
    assert f"s3://{s3_bucket}/missing.zarr" in str(info.value)


@needs_store_core
def test_format_probed_at_urls_without_suffix(s3_server, s3_bucket):
    options = {"endpoint_url": s3_server.endpoint_url}
    base = f"s3://{s3_bucket}"
    create_array(f"{base}/volume", "raw", shape=(3,), dtype="uint8", format="n5", **options)
    create_array(f"{base}/image", shape=(3,), dtype="uint8", format="zarr", zarr_format=2,
                 **options)
    assert open_source(f"{base}/volume", **options).format == "n5"
    source = open_source(f"{base}/image", **options)
    assert source.format == "zarr" and source.internal_path == ""
    assert source.to_spec().params["format"] == "zarr"
    with pytest.raises(ValueError, match="Could not infer the format of .*nothing"):
        open_source(f"{base}/nothing", **options)
    with pytest.raises(ValueError, match="Could not infer"):  # new array, no suffix, no format
        create_array(f"{base}/new", shape=(3,), dtype="uint8", **options)


@needs_store_core
def test_groups_and_damaged_metadata_on_s3(s3_server, s3_bucket):
    options = {"endpoint_url": s3_server.endpoint_url}
    url = f"s3://{s3_bucket}/g.zarr"
    create_array(url, "a/b/c", shape=(3,), dtype="uint8", **options)[...] = 7
    container = open_file(url, **options)
    assert "a" in container and "a/b" in container and "a/b/c" in container
    assert "x" not in container
    group = container["a"]
    assert group.list_arrays() == ["b/c"] and group.location == f"{url}/a"
    np.testing.assert_array_equal(group["b"]["c"][:], [7, 7, 7])
    with pytest.raises(KeyError):
        container["a/x"]
    s3_server.put(s3_bucket, "bad.zarr/zarr.json", b'{"zarr_format": 3,')
    with pytest.raises(ValueError, match=f"s3://{s3_bucket}/bad.zarr/zarr.json.*not valid JSON"):
        open_source(f"s3://{s3_bucket}/bad.zarr", **options)
    s3_server.put(s3_bucket, "odd.zarr/zarr.json", b'{"zarr_format": 3, "node_type": "x"}')
    with pytest.raises(ValueError, match="odd.zarr/zarr.json.*node_type 'x'"):
        open_source(f"s3://{s3_bucket}/odd.zarr", **options)


@needs_store_core
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_pyramid_on_s3(s3_server, s3_bucket, zarr_format):
    options = {"endpoint_url": s3_server.endpoint_url}
    image = np.arange(32 * 40, dtype="uint16").reshape(32, 40)
    url = f"s3://{s3_bucket}/img.ome.zarr"
    level = write_ome_pyramid(image, url, levels=3, zarr_format=zarr_format, voxel_size=0.25,
                              **options)
    assert level.path == url and level.to_spec().params["endpoint_url"] == options[
        "endpoint_url"]
    source = open_source(url, **options)  # the full-resolution level by default
    assert source.internal_path == "s0"
    np.testing.assert_array_equal(source[...], image)
    ome = source.ome
    assert ome["levels"] == ["s0", "s1", "s2"] and ome["scale"] == [0.25, 0.25]
    assert ome["version"] == {2: "0.4", 3: "0.5"}[zarr_format]
    assert open_source(url, "s2", **options).ome["scale"] == [1.0, 1.0]
    # the level arrays carry their NGFF conventions, patched through the store
    name = "s1/zarr.json" if zarr_format == 3 else "s1/.zarray"
    metadata = json.loads(_core.store_get(url, name, storage_options=options))
    if zarr_format == 3:
        assert metadata["dimension_names"] == ["y", "x"]
    else:
        assert metadata["dimension_separator"] == "/"
    # peers read it: zarr-python through obstore
    import remote_peers as peers

    group = zarr.open_group(peers.zarr_store(options["endpoint_url"], url, read_only=True),
                            mode="r")
    np.testing.assert_array_equal(group["s1"][...], image[::2, ::2])


@needs_store_core
def test_cli_on_s3(s3_server, s3_bucket, tmp_path, capsys, monkeypatch):
    endpoint = s3_server.endpoint_url
    monkeypatch.chdir(tmp_path)
    data = np.arange(20 * 24, dtype="uint8").reshape(20, 24)
    create_array("in.zarr", shape=data.shape, chunks=(8, 8), dtype=data.dtype)[...] = data
    url = f"s3://{s3_bucket}/cli.ome.zarr"
    assert cli_main(["convert", "in.zarr", url, "--ome", "--levels", "2", "--endpoint-url",
                     endpoint, "--quiet"]) == 0
    assert open_source(url, endpoint_url=endpoint).ome["levels"] == ["s0", "s1"]
    assert cli_main(["info", url, "s0", "--endpoint-url", endpoint]) == 0
    out = capsys.readouterr().out
    assert url in out and "zarr (v3)" in out and "NGFF 0.5" in out and "zstd" in out
    assert cli_main(["info", url, "--endpoint-url", endpoint]) == 0
    out = capsys.readouterr().out
    assert "2 arrays" in out and "s0" in out and "s1" in out
    assert cli_main(["convert", url, "back.n5", "--src-key", "s1", "--endpoint-url", endpoint,
                     "--quiet"]) == 0
    np.testing.assert_array_equal(open_source("back.n5")[...], data[::2, ::2])
    # options are for URLs: a local SRC is opened without them
    assert cli_main(["convert", "back.n5", f"s3://{s3_bucket}/again.zarr", "--endpoint-url",
                     endpoint, "--region", "us-east-1", "--quiet"]) == 0
    spec = open_source(f"s3://{s3_bucket}/again.zarr", endpoint_url=endpoint).to_spec()
    assert spec.params == {"format": "zarr", "mode": "r", "endpoint_url": endpoint}


@needs_store_core
def test_http_container_without_listing(http_server):
    folder, base = http_server.new_folder("wiring")
    data = np.arange(12, dtype="int32").reshape(3, 4)
    create_array(folder / "g.zarr", "a/raw", shape=data.shape, dtype=data.dtype)[...] = data
    source = open_source(f"{base}/g.zarr", "a/raw")
    np.testing.assert_array_equal(source[...], data)
    assert not source.writable
    with pytest.raises(ValueError, match="HTTP servers do not list keys; pass internal_path"):
        open_source(f"{base}/g.zarr")
    with pytest.raises(ValueError, match="no zarr metadata at it"):
        open_source(f"{base}/missing.zarr")
    with pytest.raises(ValueError, match="'a/nope' does not exist.*do not list keys"):
        open_source(f"{base}/g.zarr", "a/nope")
    assert open_file(f"{base}/g.zarr")["a"]["raw"].shape == data.shape


@needs_store_core
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_over_http_opens_without_listing(http_server, zarr_format):
    folder, base = http_server.new_folder(f"ome{zarr_format}")
    image = np.arange(16 * 12, dtype="float32").reshape(16, 12)
    write_ome_pyramid(image, folder / "img.ome.zarr", levels=2, zarr_format=zarr_format,
                      voxel_size=(2.0, 0.5), unit="micrometer")
    url = f"{base}/img.ome.zarr"
    source = open_source(url)  # the metadata name the levels: no listing needed
    assert source.internal_path == "s0" and not source.writable
    np.testing.assert_array_equal(source[...], image)
    assert source.ome["scale"] == [2.0, 0.5] and source.ome["axes"][0]["unit"] == "micrometer"
    assert open_source(url, "s1").ome["scale"] == [4.0, 1.0]
