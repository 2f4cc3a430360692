"""Cheap facts about the tree that keep it readable (STYLE.md: tinygrad's line budget)."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, require

# Code lines (no blanks, no comment-only lines) of the host SDK plus the reference runtime.
# Raise it deliberately, in its own commit, when a capability is worth the lines.
LINE_BUDGET = 16900


def _code_lines() -> int:
    files = sorted((ROOT / "sdk").rglob("*.py")) + [ROOT / "runtime" / "reference.py"]
    n = 0
    for f in files:
        for line in f.read_text().splitlines():
            s = line.strip()
            n += bool(s) and not s.startswith("#")
    return n


def test_sdk_stays_within_its_line_budget():
    n = _code_lines()
    assert n <= LINE_BUDGET, f"sdk/ + runtime/reference.py: {n} code lines > budget {LINE_BUDGET}"


def test_ruff_clean():
    require("ruff")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "-q", "sdk", "runtime", "targets",
                        "tests", "benchmarks", "examples"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
