"""The wrapper family against bioimage-py 0.2: values recorded with 0.2, and specs written by 0.2.

``tests/data/make_v02_wrapper_references.py`` (run with 0.2's interpreter) wrapped a folder of
TIFF slices in every 0.2 wrapper and recorded what 0.2 read for several regions, with the
wrappers' specs as 0.2 pickles them (cloudpickle where a lambda is inside). Here the same
constructor calls, written as 0.2 code writes them, must read the same values (same dtype, bit
for bit), and 0.2's specs must reopen as wrappers reading them too, also in another process.
"""
from __future__ import annotations

import functools
import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import scipy.ndimage as ndi

from bioimage_py import open_source
from bioimage_py.sources import Source, SourceSpec, from_spec
from bioimage_py.wrapper import (
    ExpandDimsSource,
    MultiTransformationSource,
    NormalizeSource,
    PadSource,
    RoiSource,
    SimpleTransformationSource,
    SimpleTransformationWithHaloSource,
    ThresholdSource,
    TransformationSource,
    WrapperSource,
)

DATA = Path(__file__).parent / "data" / "v02_wrappers"
CASES: dict[str, dict[str, Any]] = json.loads((DATA / "cases.json").read_text())
SPECS: dict[str, bytes] = pickle.loads((DATA / "specs.pkl").read_bytes())


@pytest.fixture(scope="module")
def references() -> Any:
    with np.load(DATA / "references.npz") as npz:
        yield dict(npz)


@pytest.fixture(scope="module")
def source() -> Source:
    return open_source(DATA / "slices", "*.tif")


def mask(source: Any) -> ThresholdSource:
    return ThresholdSource(source, 2500)


# The generator's constructor calls, as 0.2 code writes them.
OURS: dict[str, Callable[[Any], WrapperSource]] = {
    "threshold_default": lambda s: ThresholdSource(s, 2500),
    "threshold_less_equal": lambda s: ThresholdSource(s, 1000.5, np.less_equal),
    "threshold_callable": lambda s: ThresholdSource(
        s, 300, lambda a, t: np.abs(a.astype(np.int32) - 2500) < t
    ),
    "normalize_default": lambda s: NormalizeSource(s),
    "normalize_float64": lambda s: NormalizeSource(s, "float64"),
    "normalize_with_channels": lambda s: NormalizeSource(s, with_channels=True),
    "roi_slices": lambda s: RoiSource(s, np.s_[1:5, 2:, :7]),
    "roi_ints": lambda s: RoiSource(s, (2, slice(1, 6), -3)),
    "roi_squeeze": lambda s: RoiSource(s, (2, slice(1, 6)), squeeze=True),
    "pad_constant": lambda s: PadSource(s, (2, 3, 0)),
    "pad_reflect": lambda s: PadSource(s, (2, 3, 4), "reflect"),
    "pad_edge": lambda s: PadSource(s, (0, 2, 5), "edge"),
    "pad_symmetric_2d": lambda s: PadSource(RoiSource(s, (3,), squeeze=True), (4, 6), "symmetric"),
    "expand_default": lambda s: ExpandDimsSource(s),
    "expand_axes": lambda s: ExpandDimsSource(s, (0, -1)),
    "simple_ufunc": lambda s: SimpleTransformationSource(s, np.sqrt, dtype="float32"),
    "simple_lambda": lambda s: SimpleTransformationSource(
        s, lambda b: (b // 7).astype("int32") - 100, dtype="int32"
    ),
    "simple_with_channels": lambda s: SimpleTransformationSource(
        s, lambda b: b.max(axis=0), with_channels=True
    ),
    "halo_uniform": lambda s: SimpleTransformationWithHaloSource(
        s, functools.partial(ndi.uniform_filter, size=3, mode="reflect"), (1, 2, 2)
    ),
    "halo_gaussian_channels": lambda s: SimpleTransformationWithHaloSource(
        s,
        lambda b: ndi.gaussian_filter(b.astype(np.float32), sigma=(0, 1, 1)),
        (4, 4),
        with_channels=True,
        dtype="float32",
    ),
    "transformation_roi": lambda s: TransformationSource(
        s, lambda b, roi: b.astype(np.int64) + 1000 * roi[0].start + roi[2].start, dtype="int64"
    ),
    "multi_where": lambda s: MultiTransformationSource(
        lambda a, m: np.where(m, a, 0), s, mask(s)
    ),
    "multi_list": lambda s: MultiTransformationSource(
        lambda blocks: np.stack(blocks).sum(axis=0, dtype=np.int64), s, s, mask(s),
        apply_to_list=True, dtype="int64",
    ),
    "chain_threshold_normalize_roi": lambda s: ThresholdSource(
        NormalizeSource(RoiSource(s, np.s_[1:, :, 2:9])), 0.4
    ),
    "chain_expand_pad_roi": lambda s: ExpandDimsSource(
        PadSource(RoiSource(s, (slice(0, 4), 3), squeeze=True), (1, 2)), 0
    ),
}
NAMES = list(CASES)


def decode_read(read: list[Any]) -> tuple[Any, ...]:
    return tuple(
        Ellipsis if entry == "..." else slice(*entry) if isinstance(entry, list) else entry
        for entry in read
    )


def assert_reads_like_v02(wrapper: Source, name: str, references: dict[str, np.ndarray]) -> None:
    case = CASES[name]
    assert wrapper.shape == tuple(case["shape"])
    assert wrapper.dtype == np.dtype(case["dtype"])
    for i, read in enumerate(case["reads"]):
        got, want = np.asarray(wrapper[decode_read(read)]), references[f"{name}/{i}"]
        assert got.dtype == want.dtype, (name, read)
        assert got.shape == want.shape, (name, read)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} read {read}")


def relocated(spec: SourceSpec) -> SourceSpec:
    """0.2's spec with the TIFF folder's path pointed at where it lies now (in place)."""
    if spec.kind == "wrapper":
        wrapped = spec.wrapped if isinstance(spec.wrapped, list) else [spec.wrapped]
        for inner in wrapped:
            relocated(inner)
    else:
        spec.path = str(DATA / "slices")
    return spec


def v02_spec(name: str) -> SourceSpec:
    return relocated(pickle.loads(SPECS[name]))


def test_every_recorded_case_is_tested():
    assert set(OURS) == set(CASES) == set(SPECS)
    assert {type(OURS[n](np.zeros((6, 8, 10), np.uint16))).__name__ for n in NAMES} >= {
        "ThresholdSource", "NormalizeSource", "RoiSource", "PadSource", "ExpandDimsSource",
        "SimpleTransformationSource", "SimpleTransformationWithHaloSource",
        "TransformationSource", "MultiTransformationSource",
    }


def test_the_input_is_the_recorded_volume(source, references):
    np.testing.assert_array_equal(source[...], references["volume"])


@pytest.mark.parametrize("name", NAMES)
def test_values_equal_v02(source, references, name):
    assert_reads_like_v02(OURS[name](source), name, references)


@pytest.mark.parametrize("name", NAMES)
def test_values_equal_v02_over_numpy(references, name):
    assert_reads_like_v02(OURS[name](references["volume"]), name, references)


@pytest.mark.parametrize("name", NAMES)
def test_v02_specs_reopen_with_v02_values(references, name):
    spec = v02_spec(name)
    assert spec.kind == "wrapper" and "cls" in spec.params
    wrapper = from_spec(spec)
    assert type(wrapper).__name__ == spec.params["cls"]
    assert_reads_like_v02(wrapper, name, references)


@pytest.mark.parametrize("name", NAMES)
def test_reopened_v02_specs_round_trip_through_our_specs(references, name):
    """Reopened, the wrapper writes our spec form; it reopens (through JSON where no user
    callable is involved, else through cloudpickle) and reads the same values."""
    wrapper = from_spec(v02_spec(name))
    spec = wrapper.to_spec()
    assert spec.params["cls"] == type(wrapper).__name__
    try:
        text = spec.to_json()
    except TypeError as error:
        assert "callable" in str(error)
        rebuilt = from_spec(pickle.loads(cloudpickle.dumps(spec)))
    else:
        rebuilt = from_spec(SourceSpec.from_json(text))
    assert rebuilt.to_spec().params.keys() == spec.params.keys()
    assert_reads_like_v02(rebuilt, name, references)


SPEC_JSON_ABLE = [
    "threshold_default", "threshold_less_equal", "normalize_default", "normalize_float64",
    "normalize_with_channels", "roi_slices", "roi_ints", "roi_squeeze", "pad_constant",
    "pad_reflect", "pad_edge", "pad_symmetric_2d", "expand_default", "expand_axes",
    "chain_threshold_normalize_roi", "chain_expand_pad_roi",
]


@pytest.mark.parametrize("name", SPEC_JSON_ABLE)
def test_our_specs_of_the_generic_wrappers_are_json(source, name):
    spec = OURS[name](source).to_spec()
    assert SourceSpec.from_json(spec.to_json()) == spec


def test_v02_specs_reopen_in_another_process(tmp_path, references):
    """0.2's cloudpickled specs (lambdas inside) reopen in a fresh interpreter."""
    names = ["multi_list", "halo_gaussian_channels", "chain_expand_pad_roi"]
    reads = {name: decode_read(CASES[name]["reads"][1]) for name in names}
    payload = tmp_path / "specs.pkl"
    payload.write_bytes(cloudpickle.dumps({name: (v02_spec(name), reads[name]) for name in names}))
    script = (
        "import pickle, sys, numpy as np\n"
        "from bioimage_py.sources import from_spec\n"
        "cases = pickle.load(open(sys.argv[1], 'rb'))\n"
        "np.savez(sys.argv[2], **{n: from_spec(s)[r] for n, (s, r) in cases.items()})\n"
    )
    out = tmp_path / "out.npz"
    result = subprocess.run(
        [sys.executable, "-c", script, str(payload), str(out)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    with np.load(out) as got:
        for name in names:
            np.testing.assert_array_equal(got[name], references[f"{name}/1"])
            assert got[name].dtype == references[f"{name}/1"].dtype


def test_v02_spec_layout():
    """What 0.2 writes, as the registry reads it: class name under 'cls', the callable or ufunc
    itself in params, several wrapped specs as a list."""
    threshold = v02_spec("threshold_default")
    assert threshold.params == {"threshold": 2500.0, "operator": np.greater,
                                "cls": "ThresholdSource"}
    multi = v02_spec("multi_where")
    assert isinstance(multi.wrapped, list) and len(multi.wrapped) == 2
    assert callable(multi.params["transformation"])
    roi = v02_spec("roi_ints")
    assert roi.params["roi"] == (2, slice(1, 6), -3)


def test_module_layout_of_v02():
    """The import paths 0.2 code writes (SPEC, "Module layout")."""
    import importlib

    import bioimage_py.wrapper as wrapper

    layout = {
        "base": ["WrapperSource", "register_wrapper", "wrapper_from_spec",
                 "SimpleTransformationSource", "SimpleTransformationWithHaloSource",
                 "TransformationSource", "MultiTransformationSource"],
        "generic": ["ThresholdSource", "NormalizeSource", "RoiSource", "PadSource",
                    "ExpandDimsSource"],
        "resize": ["ResizedSource"],
        "affine": ["AffineSource"],
    }
    for module_name, names in layout.items():
        module = importlib.import_module(f"bioimage_py.wrapper.{module_name}")
        for name in names:
            assert getattr(wrapper, name) is getattr(module, name), (module_name, name)
    assert sorted(wrapper.__all__) == sorted(n for names in layout.values() for n in names)
    for old in ("threshold", "normalize", "roi", "pad", "expand_dims", "resized"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"bioimage_py.wrapper.{old}")
