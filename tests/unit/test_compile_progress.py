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


def test_depthwise_rows_equal_the_features_the_normal_equations_built():
    """One copy into [C, rows, taps + 1] holds what layer_features + add's concatenate and
    transpose built (so the normal equations are the same floats)."""
    from edgeforge.ir import DwConv2dAttrs, Node, Op
    from edgeforge.quantize.lstsq import NormalEquations, depthwise_rows, layer_features
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 9, 8, 4)).astype(np.float32)
    for mult, stride, dil, pad in [(1, (1, 1), (1, 1), (1, 1, 1, 1)),
                                   (2, (2, 1), (2, 1), (0, 2, 1, 0))]:
        nd = Node(Op.DWCONV2D, ("x", "w", "b"), ("y",),
                  DwConv2dAttrs(stride=stride, pad=pad, dilation=dil))
        shape = (1, 3, 3, 4 * mult)
        f = layer_features(x, nd, shape)
        fx = np.concatenate([f, np.ones(f.shape[:1] + (1,) + f.shape[2:])], axis=1)
        rows = depthwise_rows(x, nd, shape)
        assert rows.dtype == np.float64
        assert np.array_equal(rows, np.ascontiguousarray(fx.transpose(2, 0, 1)))
        y = rng.standard_normal((f.shape[0], 4 * mult))
        a, b = NormalEquations(), NormalEquations()
        a.add(f, y, depthwise=True)
        b.add_channels(rows, y)
        assert np.array_equal(a.g, b.g) and np.array_equal(a.c, b.c)


def test_row_sums_equal_the_summed_layer_output():
    """Bias correction's mean error comes from summed input windows (the layers are linear)."""
    from edgeforge.ir import Conv2dAttrs, DwConv2dAttrs, FcAttrs, Node, Op
    from edgeforge.quantize.bias_correction import row_sums
    from edgeforge.runtime.reference import REFERENCE
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 6, 4)).astype(np.float32)
    cases = [(Op.CONV2D, Conv2dAttrs(stride=(2, 1), pad=(1, 0, 1, 2), dilation=(1, 2)),
              (5, 3, 3, 4), x),
             (Op.DWCONV2D, DwConv2dAttrs(stride=(1, 2), pad=(1, 1, 1, 1)), (1, 3, 3, 8), x),
             (Op.FC, FcAttrs(), (6, 24), x.reshape(14, 24))]
    for op, attrs, wshape, xin in cases:
        nd = Node(op, ("x", "w", "b"), ("y",), attrs)
        w = rng.standard_normal(wshape).astype(np.float32)
        b = rng.standard_normal(wshape[3] if op == Op.DWCONV2D else wshape[0])
        y = REFERENCE[op](xin, w, b.astype(np.float32), attrs).astype(np.float64)
        total, rows = row_sums(nd, xin, w, b.astype(np.float32))
        assert rows == y.size // y.shape[-1]
        np.testing.assert_allclose(total, y.reshape(-1, y.shape[-1]).sum(axis=0), rtol=1e-6)


def test_compile_runs_each_float_layer_once_per_calibration_batch(tmp_path, monkeypatch):
    """Calibration, bias correction with refit and the SQNR report share one float pass:
    a compile with 64 samples (two chunks, so the refit runs) evaluates every float layer
    kernel once per calibration batch, and no int8 graph runs outside bias correction."""
    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    from edgeforge.ir import WEIGHTED
    from edgeforge.runtime import reference
    calls: dict[str, int] = {}

    def counted(op, fn):
        def wrapper(*args, **kw):
            calls[op] = calls.get(op, 0) + 1
            return fn(*args, **kw)
        return wrapper
    for op in WEIGHTED:
        monkeypatch.setitem(reference.REFERENCE, op, counted(op, reference.REFERENCE[op]))
    runs: list[bool] = []
    real_run = reference.run

    def run(graph, *args, **kw):
        runs.append(graph.is_int8())
        return real_run(graph, *args, **kw)
    monkeypatch.setattr(reference, "run", run)
    calib = np.load(DIGITS / "calib.npz")["input"][:64]
    np.save(tmp_path / "calib.npy", calib)
    res = compile_model(DIGITS / "digits.onnx", tmp_path / "out", calib=str(tmp_path / "calib.npy"))
    g = load(DIGITS / "digits.onnx")
    layers = sum(n.op in WEIGHTED for n in g.nodes)
    batches = 2                                     # 64 samples in batches of 32
    # + 1: checks.py's input-scale warning runs the first layer on 8 samples
    assert layers >= 4 and sum(calls.values()) == layers * batches + 1, calls
    assert runs == [False] * batches                # the float graph, once per batch
    assert res.report["sqnr"] and res.report["sqnr"][-1]["sqnr_db"] > 20
    assert all(r["sqnr_db"] is not None for r in res.report["sqnr"] if r["op"] != "RESHAPE")


def test_mse_observer_search_equals_the_matrix_definition():
    """The mse observer's prefix-sum error (O(bins)) picks what the [candidates, bins]
    matrix form picked, with the same values to 1e-8."""
    import importlib
    cal = importlib.import_module("edgeforge.quantize.calibrate")

    def matrix(x, c, lo, hi):
        lo, hi = lo[:, None], hi[:, None]
        s = np.maximum(hi - lo, 1e-12) / 255.0
        below, above = np.clip(lo - x, 0, None), np.clip(x - hi, 0, None)
        inside = (x >= lo) & (x <= hi)
        return ((below ** 2 + above ** 2) @ c[:, None])[:, 0] + (inside @ c) * s[:, 0] ** 2 / 12
    rng = np.random.default_rng(6)
    grid = cal.MseObserver.GRID
    for t in range(60):
        a, b = sorted(rng.standard_normal(2) * 5)
        a = 0.0 if t % 3 == 0 else a
        x = a + (np.arange(256) + 0.5) * (b - a) / 256
        c = rng.poisson(rng.random() * 50, 256) * (rng.random(256) < 0.6).astype(float)
        lo0, hi0 = min(x[0], 0.0), max(x[-1], 0.0)
        for lo, hi in [(np.full(grid.size, lo0), hi0 * grid), (lo0 * grid, np.full(grid.size, hi0))]:
            want, got = matrix(x, c, lo, hi), cal._mse(x, c, lo, hi)
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)
            assert np.argmin(got) == np.argmin(want)


def test_onnx_constant_folding_under_a_profiler():
    """Folding's time budget borrows the profile hook: with cProfile attached (as
    benchmarks/compile_time.py --profile does) a model with folded constants still loads."""
    import cProfile

    from onnx import TensorProto, helper, numpy_helper

    from edgeforge.frontends import load
    w = numpy_helper.from_array(np.ones((1, 4), np.float32), "w")
    nodes = [helper.make_node("Identity", ["w"], ["wi"]), helper.make_node("Add", ["x", "wi"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.onnx"
        p.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
                      .SerializeToString())
        prof = cProfile.Profile()
        graph = prof.runcall(load, p)
    assert [n.op.value for n in graph.nodes] == ["ADD"]


def test_int8_gemm_in_float32_blocks_is_exact_at_the_bounds():
    """The reference's float32-block GEMM equals the integer product, with every operand at
    its extreme (int8 activations + offset = -255, weights -128: the largest partial sums),
    across block edges (514 taps), and for int16 operands (float64 path)."""
    from edgeforge.runtime.reference import _gemm
    rng = np.random.default_rng(7)
    for m, k, n, (lo, hi) in [(40, 4608, 16, (-255, 256)), (9, 514, 3, (-255, 256)),
                              (9, 515, 3, (-255, 256)), (7, 3, 5, (-255, 256)),
                              (6, 700, 4, (-32768, 32768))]:
        a = rng.integers(lo, hi, (m, k))
        b = rng.integers(-128, 128, (k, n))
        a[0], b[:, 0] = lo, -128
        want = np.array(a.astype(object).dot(b.astype(object)), dtype=np.int64)
        got = _gemm(a, b)
        assert got.dtype == np.int64 and np.array_equal(got, want), (m, k, n)


def test_c_weight_text_is_the_per_line_form():
    """weights.c spells int8 / uint8 arrays with one join; the text is the per-line form
    (24 values a line, each line ending in a comma) at every length around the line edges."""
    from edgeforge.codegen.c import _c_values
    rng = np.random.default_rng(8)
    for dtype in (np.int8, np.uint8):
        info = np.iinfo(dtype)
        for n in (0, 1, 23, 24, 25, 48, 49, 100):
            a = rng.integers(info.min, info.max + 1, n).astype(dtype)
            vals = [str(int(v)) for v in a]
            want = "\n".join("    " + ", ".join(vals[i:i + 24]) + ","
                             for i in range(0, n, 24)) or "    0"
            assert _c_values(a) == want, (dtype, n)


def test_conv_and_fc_rows_with_ones_equal_the_features_the_normal_equations_built():
    from edgeforge.ir import Conv2dAttrs, FcAttrs, Node, Op
    from edgeforge.quantize.lstsq import NormalEquations, layer_features, rows_with_ones
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 9, 8, 5)).astype(np.float32)
    conv = Conv2dAttrs(stride=(2, 1), pad=(1, 0, 1, 2), dilation=(1, 2))
    for nd, shape, xin in [(Node(Op.CONV2D, ("x", "w", "b"), ("y",), conv), (4, 3, 3, 5), x),
                           (Node(Op.FC, ("x", "w", "b"), ("y",), FcAttrs()), (6, 40),
                            x.reshape(-1, 40))]:
        f = layer_features(xin, nd, shape)
        rows = rows_with_ones(xin, nd, shape)
        assert np.array_equal(rows, np.concatenate([f, np.ones((f.shape[0], 1))], axis=1))
        y = rng.standard_normal((f.shape[0], 4))
        a, b = NormalEquations(), NormalEquations()
        a.add(f, y, depthwise=False)
        b.add_rows(rows, y)
        assert np.array_equal(a.g, b.g) and np.array_equal(a.c, b.c)


def test_a_record_past_its_budget_keeps_layer_inputs_and_the_same_bytes(tmp_path, monkeypatch):
    """When the float tensors to keep pass RECORD_MAX_BYTES, calibration keeps only the
    layer inputs (the refit runs its layers, compile runs sqnr_report): same model bytes
    and the same per-layer SQNR."""
    from edgeforge.compiler import compile_model
    from edgeforge.quantize import bias_correction
    calib = np.load(DIGITS / "calib.npz")["input"][:64]
    np.save(tmp_path / "calib.npy", calib)
    a = compile_model(DIGITS / "digits.onnx", tmp_path / "a", calib=str(tmp_path / "calib.npy"))
    monkeypatch.setattr(bias_correction, "RECORD_MAX_BYTES", 0)
    b = compile_model(DIGITS / "digits.onnx", tmp_path / "b", calib=str(tmp_path / "calib.npy"))
    assert (tmp_path / "a" / "model.tflite").read_bytes() == \
        (tmp_path / "b" / "model.tflite").read_bytes()
    assert [r["sqnr_db"] for r in a.report["sqnr"]] == [r["sqnr_db"] for r in b.report["sqnr"]]


def test_calibration_counts_that_leave_a_partial_batch_compile(tmp_path):
    """48 samples on a 32-sample batch: bias correction runs one batch while the SQNR record
    holds 48 samples; the one-pass SQNR sums must then stand aside (this was an IndexError)."""
    import onnx

    from edgeforge.compiler import compile_model
    src = ROOT / "tests" / "models" / "resnet_tiny.onnx"
    dims = onnx.load(str(src)).graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value or 1 for d in dims][1:]
    for n in (48, 33):
        calib = np.random.default_rng(n).normal(0, 1, [n, *shape]).astype(np.float32)
        res = compile_model(str(src), tmp_path / f"n{n}", calib=calib)
        assert (res.dir / "model.tflite").is_file() and res.report["sqnr"], n
