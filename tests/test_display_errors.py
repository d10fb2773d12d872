"""A DISPLAY that points at no X server is a startup error, not an invisible show."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_dead_display_is_one_error_line(scene_file, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": ":77", "HOME": str(tmp_path)}
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_show.py"),
            "-q",
            "show",
            "--scene",
            str(scene_file("")),
            "--seconds",
            "1",
            "--osc-port",
            "0",
            "--oscquery-port",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and ":77" in last, r.stderr
