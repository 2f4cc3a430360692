"""Shared test plumbing: fixture paths and the one rule for missing tools.

A test that needs an external tool calls `require("qemu-system-arm")`. Locally a missing tool
skips the test; with EDGEFORGE_REQUIRE_ALL=1 (CI) it FAILS, so CI can never go green by
skipping what it was meant to prove.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "mlperf_tiny"
REQUIRE_ALL = os.environ.get("EDGEFORGE_REQUIRE_ALL") == "1"


def _found(name: str) -> bool:
    """A tool on PATH, an absolute path, a daemon in /usr/sbin or /sbin, or a module."""
    if shutil.which(name) or any(shutil.which(name, path=d) for d in ("/usr/sbin", "/sbin")):
        return True
    if "/" in name:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:   # "a.b" whose parent package is missing
        return False


def require(*names: str) -> None:
    """Skip (or fail under EDGEFORGE_REQUIRE_ALL=1) unless every tool/module is present.

    A name with a '/' or no dots that is found on PATH counts as a tool; otherwise it is
    looked up as a Python module.
    """
    missing = [n for n in names if not _found(n)]
    if missing:
        msg = f"missing: {', '.join(missing)}"
        if REQUIRE_ALL:
            pytest.fail(msg + " (EDGEFORGE_REQUIRE_ALL=1)", pytrace=False)
        pytest.skip(msg)


def fixture(name: str) -> Path:
    p = FIXTURES / name
    if not p.exists():
        require(str(p))
    return p


def pytest_addoption(parser):
    parser.addoption("--port", default=None, help="serial port of a physical board")
    parser.addoption("--host", default=None, help="ssh://user@host of a physical Linux board")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--port") or config.getoption("--host"):
        return
    skip = pytest.mark.skip(reason="needs physical hardware: pass --port or --host")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
