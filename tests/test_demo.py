"""The README's main job: the demo runs end to end and its checks pass."""
from __future__ import annotations

from bioimage_py import demo


def test_demo_runs_and_verifies(tmp_path, capsys):
    assert demo.main(["--shape", "48", "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "block-wise result equals the whole-volume filter: True" in out
    assert "reopened it from the spec" in out and out.count(": True") == 2
