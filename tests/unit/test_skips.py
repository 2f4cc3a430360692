"""A skip is for a missing tool or hardware, and goes through tests.conftest.require (which
CI's EDGEFORGE_REQUIRE_ALL=1 turns into a failure). No test may skip by itself: no bare
pytest.skip, no importorskip (our own modules and declared dependencies must import), no
skipif; a known, accepted failure is pytest.xfail with its reason. Seeds are fixed: no
hash() (salted per process) feeds a random generator."""
from __future__ import annotations

import ast

from tests.conftest import ROOT

ALLOWED = {ROOT / "tests" / "conftest.py"}      # require() itself, and the hardware marker


def _dotted(n: ast.AST) -> str | None:
    if isinstance(n, ast.Name):
        return n.id
    if isinstance(n, ast.Attribute):
        base = _dotted(n.value)
        return f"{base}.{n.attr}" if base else None
    return None


def _calls(tree: ast.AST) -> list[tuple[str, int]]:
    """Every dotted name used (called or as a decorator), with its line."""
    return [(d, n.lineno) for n in ast.walk(tree)
            if isinstance(n, (ast.Name, ast.Attribute)) and (d := _dotted(n))]


def test_every_skip_goes_through_require():
    bad = []
    for f in sorted((ROOT / "tests").rglob("*.py")):
        if f in ALLOWED:
            continue
        for name, line in _calls(ast.parse(f.read_text(), str(f))):
            if name in ("pytest.skip", "pytest.importorskip", "pytest.mark.skip",
                        "pytest.mark.skipif"):
                bad.append(f"{f.relative_to(ROOT)}:{line} {name}")
    assert not bad, "skips that bypass require():\n  " + "\n  ".join(sorted(set(bad)))


def test_no_salted_hash_seeds():
    bad = [f"{f.relative_to(ROOT)}:{line}" for f in sorted((ROOT / "tests").rglob("*.py"))
           for name, line in _calls(ast.parse(f.read_text(), str(f))) if name == "hash"]
    assert not bad, f"hash() differs per process (PYTHONHASHSEED): {bad}"


def test_the_scan_finds_a_planted_skip():
    tree = ast.parse("import pytest\ndef test_x():\n    pytest.skip('no')\n"
                     "m = pytest.importorskip('onnx')\nrng = f(hash('kws'))\n")
    names = {n for n, _ in _calls(tree)}
    assert {"pytest.skip", "pytest.importorskip", "hash"} <= names
    assert "pytest.mark.skipif" in {n for n, _ in _calls(ast.parse(
        "@pytest.mark.skipif(True, reason='x')\ndef test_y(): pass\n"))}
