"""Compression guard rails (issue 19): each step's fidelity cost, warnings when a step costs
too much, and the bounded search for the strongest pruning that fits."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeforge.compress import guard
from edgeforge.compress.prune import PruneError, compress
from tests.unit.test_cli_errors import cli, user_error
from tests.unit.test_prune import _chain, _x

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def test_sqnr_drop_adds_noise_powers() -> None:
    assert guard.sqnr_drop(40.0, float("inf")) == 0.0
    assert guard.sqnr_drop(40.0, 40.0) == pytest.approx(10 * np.log10(2))   # 3.01 dB
    assert guard.sqnr_drop(40.0, 60.0) < 0.05
    drops = [guard.sqnr_drop(30.0, c) for c in (50, 40, 30, 20, 10, 0)]
    assert drops == sorted(drops) and drops[-1] > 29.9                     # falls to ~0 dB
    assert guard.sqnr_drop(30.0, float("-inf")) == float("inf")


def test_search_finds_the_strongest_passing_scale() -> None:
    tried: list[float] = []

    def build(t: float) -> float:
        tried.append(t)
        return t
    t, res = guard.search(build, lambda r: r <= 0.3)
    assert 0.3 - 1 / 32 <= t <= 0.3 and res == t and tried[0] == 1.0
    assert guard.search(build, lambda r: True) == (1.0, 1.0)           # one build only
    assert guard.search(build, lambda r: False) == (0.0, None)


def test_accuracy_and_labels() -> None:
    out = np.eye(4)[[0, 1, 2, 3, 0]]
    assert guard.accuracy(out, np.array([0, 1, 2, 0, 0])) == pytest.approx(0.8)
    assert guard.accuracy(out, None) is None
    assert list(guard._labels(np.eye(3)[[2, 0]], 2, "d")) == [2, 0]      # one-hot rows
    with pytest.raises(Exception, match="2 entries for 3 samples"):
        guard._labels(np.array([1, 2]), 3, "d")


def test_unrefitted_pruning_warns_and_reports_each_step() -> None:
    g = _chain()
    calib = _x(256)                     # the refit needs data: 64 samples overfit
    _out, rep = compress(g, calib, prune=0.5, distill=False)
    assert [r["step"] for r in rep["steps"]] == ["prune"]
    row = rep["steps"][0]
    assert row["sqnr_drop_db"] > guard.WARN_SQNR_DROP_DB and row["sparsity"] > 0.45
    assert rep["warnings"] and "--prune 0.5" in rep["warnings"][0]
    assert "drop --no-distill" in rep["warnings"][0]
    # the default refits: a distill step after the prune step, better SQNR than without
    _out2, rep2 = compress(g, calib, prune=0.5)
    assert [r["step"] for r in rep2["steps"]] == ["prune", "distill"]
    assert rep2["steps"][-1]["sqnr_db"] > row["sqnr_db"] + 3.0
    assert rep2["output_sqnr_db"] == rep2["steps"][-1]["sqnr_db"]


def test_bounded_search_stays_within_and_is_strongest() -> None:
    g = _chain()
    calib = _x(64)
    _, free = compress(g, calib, prune=0.9, distill=False)
    assert free["steps"][-1]["sqnr_drop_db"] > 6.0          # the strongest setting breaks it
    _out, rep = compress(g, calib, prune=0.9, distill=False, max_sqnr_drop=6.0)
    s = rep["search"]
    assert 0 < s["scale"] < 1 and s["prune"] == pytest.approx(0.9 * s["scale"])
    assert rep["steps"][-1]["sqnr_drop_db"] <= 6.0 and not rep["warnings"]
    # one bisection step stronger breaks the bound (the search did not stop early)
    _, over = compress(g, calib, prune=s["prune"] + 0.9 / 32 + 1e-6, distill=False)
    assert over["steps"][-1]["sqnr_drop_db"] > 6.0 or s["scale"] > 1 - 1 / 32


def test_no_setting_fits_compiles_uncompressed_with_a_warning() -> None:
    g = _chain()
    _out, rep = compress(g, _x(64), prune=0.9, distill=False, max_sqnr_drop=1e-6)
    assert rep["search"]["scale"] == 0.0 and rep["steps"] == []
    assert rep["after"]["zero_weights"] == 0 and "without pruning" in rep["warnings"][0]


def test_bounds_need_data_labels_and_a_method() -> None:
    g = _chain()
    with pytest.raises(PruneError, match="need --calib"):
        compress(g, None, prune=0.5, max_sqnr_drop=3)
    with pytest.raises(PruneError, match="give one"):
        compress(g, _x(32), max_sqnr_drop=3)
    with pytest.raises(PruneError, match="needs labels"):
        compress(g, _x(32), prune=0.5, min_accuracy=0.9)


# ---------------------------------------------------------------- the story
@pytest.fixture(scope="module")
def residual():
    from edgeforge.frontends import load
    from edgeforge.quantize import prepare_float
    g = prepare_float(load(DIGITS / "digits_residual.onnx"))
    test = np.load(DIGITS / "test.npz")
    return g, np.load(DIGITS / "calib.npz")["input"], test["x"], test["y"]


@pytest.mark.slow
def test_residual_mobilenet_half_sparsity_never_silent(residual) -> None:
    """Issue 19's story on a residual MobileNetV2-style model with labels: 50% magnitude
    pruning without a refit is a cliff and says so; the default refit keeps accuracy; a
    --min-accuracy search keeps the bound on data it never saw (test.npz)."""
    g, calib, x, y = residual
    val = str(DIGITS / "val.npz")
    acc_f = guard.accuracy(guard.run_output(g, [x]), y)
    bad, rep = compress(g, calib, prune=0.5, distill=False, val_data=val)
    assert guard.accuracy(guard.run_output(bad, [x]), y) < acc_f - 0.2      # the cliff
    assert any("points of accuracy" in w for w in rep["warnings"])
    good, rep = compress(g, calib, prune=0.5, val_data=val)               # refit: default
    assert guard.accuracy(guard.run_output(good, [x]), y) >= acc_f - 0.015
    assert not rep["warnings"] and rep["steps"][-1]["step"] == "distill"


@pytest.mark.slow
def test_cli_warns_on_terminal_and_in_json(tmp_path: Path) -> None:
    r = cli("compile", DIGITS / "digits_residual.onnx", "--calib", DIGITS / "calib.npz",
            "-o", tmp_path / "out", "--prune", "0.5", "--no-distill", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    warns = summary["compress"]["warnings"]
    assert warns and "--prune 0.5" in warns[0] and "dB of output SQNR" in warns[0]
    assert "warning:" in r.stderr and "--prune 0.5" in r.stderr
    assert summary["compress"]["steps"][0]["sqnr_drop_db"] > 10
    user_error(cli("compile", DIGITS / "digits_residual.onnx", "--calib",
                   DIGITS / "calib.npz", "-o", tmp_path / "o2", "--max-sqnr-drop", "3"),
               "--prune")
