"""pytest plugin: a session-scoped `slurm_cluster` fixture, a real SLURM cluster on this machine.

Load it with `pytest_plugins = ["slurm_fixture"]` in a test module or in tests/conftest.py. The
fixture runs `scripts/slurm_cluster.py start` (apt-installing slurm and munge when missing), sets
SLURM_CONF for the session and, at the end, stops the cluster unless another test session still
uses it or a developer started it by hand. A cluster that cannot start fails the tests: nothing is
skipped. Every test using the fixture gets the `slurm` marker (`-m slurm`, `-m "not slurm"`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm_cluster.py"
FIXTURE_OWNER = "pytest"
# CPUs the node offers when the fixture starts it: a few one-CPU jobs (dask workers) may then run at
# once on a two-core CI machine; slurm does not enforce CPU binding here (task/none).
MIN_TEST_CPUS = 4


def load_slurm_script() -> ModuleType:
    """scripts/slurm_cluster.py as a module (scripts/ is not a package)."""
    name = "bioimage_py_slurm_cluster_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None, SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slurm: runs jobs on the local SLURM cluster of scripts/slurm_cluster.py")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker("slurm")


@pytest.fixture(scope="session")
def slurm_script() -> ModuleType:
    """scripts/slurm_cluster.py as a module, without starting anything."""
    return load_slurm_script()


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Any]:
    """The running cluster's `ClusterState` (partition, node, conf_path, env, ...).

    SLURM_CONF points at its slurm.conf for the whole session, so subprocesses (sbatch from
    dask-jobqueue, the jobs themselves) find it even where /etc/slurm/slurm.conf is not ours.
    """
    script = load_slurm_script()
    with script.cluster_in_use():
        try:
            state = script.start(cpus=max(os.cpu_count() or 1, MIN_TEST_CPUS),
                                 started_by=FIXTURE_OWNER)
        except script.SlurmClusterError as exc:
            pytest.fail(f"the local SLURM cluster did not start: {exc}", pytrace=False)
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = state.conf_path
        try:
            yield state
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous
    # Out of cluster_in_use: stops only when no other session holds it and a fixture started it.
    script.stop(started_by=FIXTURE_OWNER)
