"""Compile speed-ups keep their numbers, and long steps report progress (issue 11 item 3)."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT
from tests.unit.test_frictions import _stderr_on_a_terminal

DIGITS = ROOT / "examples" / "digits"


def _srdhm_ints(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on Python ints (the definition)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    s = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return s // (1 << 31) if s >= 0 else -((-s) // (1 << 31))


def test_srdhm_matches_its_definition_on_edges_and_random_pairs():
    from edgeforge.qmath import srdhm
    edge = [-(1 << 31), (1 << 31) - 1, 0, 1, -1, 1 << 30, -(1 << 30), (1 << 30) + 1, 3, -3]
    rng = np.random.default_rng(0)
    a = [x for x in edge for _ in edge] + rng.integers(-(1 << 31), 1 << 31, 2000).tolist()
    b = [y for _ in edge for y in edge] + rng.integers(-(1 << 31), 1 << 31, 2000).tolist()
    got = srdhm(np.array(a), np.array(b))
    assert got.tolist() == [_srdhm_ints(x, y) for x, y in zip(a, b)]


def test_depthwise_taps_equal_the_einsum():
    from edgeforge.runtime.reference import _dw_taps, windows
    rng = np.random.default_rng(1)
    x = rng.integers(-256, 256, (2, 9, 7, 5)).astype(np.int64)
    w = rng.integers(-127, 128, (3, 3, 5)).astype(np.int64)
    win = windows(x, (3, 3), (2, 1), (1, 1), (1, 1, 1, 1))
    want = np.einsum("nhwijc,ijc->nhwc", win, w)
    assert np.array_equal(_dw_taps(win, w), want)


def test_stacked_ridge_solve_equals_one_by_one():
    from edgeforge.quantize.bias_correction import _ridge_solve
    from edgeforge.quantize.lstsq import NormalEquations
    rng = np.random.default_rng(2)
    f, y = rng.standard_normal((400, 9, 6)), rng.standard_normal((400, 6))
    ne = NormalEquations()
    ne.add(f, y, depthwise=True)
    fx = np.concatenate([f, np.ones((400, 1, 6))], axis=1)
    np.testing.assert_allclose(ne.g, np.einsum("rtc,rsc->cts", fx, fx), rtol=1e-12)
    np.testing.assert_allclose(ne.c, np.einsum("rtc,rc->ct", fx, y), rtol=1e-12, atol=1e-12)
    w0 = rng.standard_normal((10, 6))
    one = np.stack([_ridge_solve(ne.g[c], ne.c[c], w0[:, c], 1.0) for c in range(6)], axis=1)
    np.testing.assert_allclose(_ridge_solve(ne.g, ne.c, w0.T, 1.0, stacked=True).T, one,
                               rtol=1e-10, atol=1e-12)


def test_dual_refit_solve_equals_the_normal_equations():
    """Fewer rows than unknowns: the R x R dual gives the D x D ridge solution."""
    from edgeforge.quantize.bias_correction import _dual_solve, _ridge_solve
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((60, 200)) + 0.3, rng.standard_normal((60, 5))
    flat0 = rng.standard_normal((5, 201))
    xa = np.concatenate([x, np.ones((60, 1))], axis=1)
    primal = _ridge_solve(xa.T @ xa, xa.T @ y, flat0.T, 1.0).T
    np.testing.assert_allclose(_dual_solve(x, y, flat0, 1.0), primal, rtol=0, atol=1e-9)


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rows: list[tuple[str, int, int, str]] = []

    def emit(self, r: logging.LogRecord) -> None:
        self.rows.append((r.stage, r.done, r.total, r.detail))


def test_quantize_reports_stage_layer_and_sample_progress():
    from edgeforge.frontends import load
    from edgeforge.quantize import quantize_model
    log = logging.getLogger("edgeforge.progress")
    h, level = _Events(), log.level
    log.addHandler(h)
    log.setLevel(logging.DEBUG)
    try:
        calib = np.load(DIGITS / "calib.npz")["input"][:64]
        quantize_model(load(DIGITS / "digits_float.tflite"), calib, verbose=0)
    finally:
        log.removeHandler(h)
        log.setLevel(level)
    cal = [r for r in h.rows if r[0] == "calibrating"]
    assert cal[0][1] == 0 and cal[-1][1:3] == (64, 64)              # samples, to the end
    bias = [r for r in h.rows if r[0] == "bias correction"]
    assert bias[-1][1] == bias[-1][2] and any(r[3].startswith("FC ") for r in bias)
    assert [r[1] for r in bias] == sorted(r[1] for r in bias)       # layer by layer


def test_cli_draws_progress_on_a_terminal_only(tmp_path):
    args = ["compile", DIGITS / "digits.onnx", "--calib", DIGITS / "calib.npz"]
    piped = subprocess.run([sys.executable, "-m", "edgeforge.cli", *map(str, args), "-o",
                            str(tmp_path / "a")], capture_output=True, text=True,
                           timeout=300, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "bias correction" not in piped.stderr and "calibrating" not in piped.stderr
    err = _stderr_on_a_terminal(*args, "-o", tmp_path / "b")
    assert "bias correction" in err and "compile: writing" in err
    assert (tmp_path / "b" / "model.tflite").read_bytes() == \
        (tmp_path / "a" / "model.tflite").read_bytes()
