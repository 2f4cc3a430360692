"""Observers, calibration data checks, the int8 IR contract quantize_model produces, and the
fidelity (SQNR vs float) of the quantized MLPerf Tiny float fixtures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeforge.errors import QuantizeError
from edgeforge.ir import OPS, Act, BinaryAttrs, Conv2dAttrs, Graph, Node, Op, Tensor
from edgeforge.quantize import OBSERVERS, calibrate, load_calib, quantize_model, sqnr_report
from edgeforge.quantize.bias_correction import run_int8_float_pairs
from edgeforge.quantize.calibrate import HistogramObserver
from edgeforge.quantize.quantize import prepare_float
from tests.conftest import fixture

ROOT = Path(__file__).resolve().parents[2]


def _fit(obs_name: str, x: np.ndarray, chunks: int = 8) -> tuple[float, float]:
    o = OBSERVERS[obs_name]()
    for c in np.array_split(x.astype(np.float32), chunks):
        o.update(c)
    return o.range()


def _qmse(x: np.ndarray, lo: float, hi: float) -> float:
    s = (hi - lo) / 255
    zp = np.round(-128 - lo / s)
    q = np.clip(np.round(x / s) + zp, -128, 127)
    return float(np.mean((x - (q - zp) * s) ** 2))


# ---------------------------------------------------------------- observers
def test_minmax_is_exact_range_and_contains_zero() -> None:
    x = np.random.default_rng(0).uniform(1.0, 3.0, 10_000)
    lo, hi = _fit("minmax", x)
    assert lo == 0.0 and hi == pytest.approx(x.max(), rel=1e-6)


def test_percentile_matches_gaussian_quantiles() -> None:
    x = np.random.default_rng(1).standard_normal(400_000)
    lo, hi = _fit("percentile", x)
    # 99.99th percentile of N(0, 1) is 3.719; histogram bins cost < 1%
    assert hi == pytest.approx(3.719, rel=0.03) and lo == pytest.approx(-3.719, rel=0.03)


@pytest.mark.parametrize("dist", ["gauss", "laplace"])
def test_mse_clips_tails_and_beats_minmax(dist: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(300_000) if dist == "gauss" else rng.laplace(size=300_000)
    lo, hi = _fit("mse", x)
    assert hi < x.max() and lo > x.min()           # heavy tails are clipped
    assert _qmse(x, lo, hi) < _qmse(x, *_fit("minmax", x))


def test_entropy_keeps_uniform_and_clips_outliers() -> None:
    rng = np.random.default_rng(3)
    u = rng.uniform(0, 1, 200_000)
    assert _fit("entropy", u)[1] > 0.9             # nothing to clip in a uniform range
    spiky = np.concatenate([rng.standard_normal(200_000) * 0.1, [50.0, -50.0]])
    lo, hi = _fit("entropy", spiky)
    assert hi < 5.0 and lo > -5.0                  # two outliers do not set the range


def test_histogram_memory_is_bounded_and_widening_keeps_counts() -> None:
    o = HistogramObserver()
    rng = np.random.default_rng(4)
    total = 0
    for k in range(20):                            # the range grows 20 times
        x = rng.standard_normal(5000) * (k + 1)
        o.update(x.astype(np.float32))
        total += x.size
    assert o.counts.shape == (2048,)
    assert o.counts.sum() == pytest.approx(total)
    assert o.edges[0] <= o.lo and o.edges[1] >= o.hi


# ---------------------------------------------------------------- calibration data
def _tiny_conv(act: Act = Act.RELU) -> Graph:
    rng = np.random.default_rng(5)
    g = Graph(name="tiny", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, 6, 6, 2)))
    g.const("w", rng.standard_normal((4, 3, 3, 2)).astype(np.float32))
    g.const("b", rng.standard_normal(4).astype(np.float32) * 0.1)
    g.add_tensor(Tensor("y", (1, 6, 6, 4)))
    g.nodes.append(Node(Op.CONV2D, ("x", "w", "b"), ("y",),
                        Conv2dAttrs(pad=(1, 1, 1, 1), act=act), "conv"))
    return g


def test_calib_npy_npz_and_batch_one_axis(tmp_path: Path) -> None:
    g = _tiny_conv()
    x = np.random.default_rng(6).standard_normal((10, 6, 6, 2)).astype(np.float32)
    np.save(tmp_path / "c.npy", x)
    np.savez(tmp_path / "c.npz", anything=x)
    for src in (tmp_path / "c.npy", tmp_path / "c.npz", x, x[:, None], {"x": x}):
        (arr,) = load_calib(src, g)
        assert arr.shape == (10, 6, 6, 2) and arr.dtype == np.float32


@pytest.mark.parametrize("bad, words", [
    (np.zeros((10, 6, 6, 3), np.float32), ["'x'", "[N, 6, 6, 2]", "[10, 6, 6, 3]"]),
    (np.zeros((10, 36, 2), np.float32), ["'x'", "[N, 6, 6, 2]"]),
    (np.array([["a"] * 2] * 3), ["'x'", "dtype", "[N, 6, 6, 2]"]),
    (np.zeros((0, 6, 6, 2), np.float32), ["'x'", "no samples"]),
    ([np.zeros((4, 6, 6, 2)), np.zeros((4, 6, 6, 2))], ["2 array", "1 input"]),
])
def test_calib_bad_data_is_one_clear_error(bad, words: list[str]) -> None:
    with pytest.raises(QuantizeError) as e:
        load_calib(bad, _tiny_conv())
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_calib_nan_and_count_mismatch_named(tmp_path: Path) -> None:
    x = np.ones((5, 6, 6, 2), np.float32)
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(QuantizeError, match=r"'x'.*NaN.*sample 3"):
        load_calib(x, _tiny_conv())
    g = Graph(name="two", inputs=["a", "b"], outputs=["y"])
    g.add_tensor(Tensor("a", (1, 4)))
    g.add_tensor(Tensor("b", (1, 4)))
    g.add_tensor(Tensor("y", (1, 4)))
    g.nodes.append(Node(Op.ADD, ("a", "b"), ("y",), BinaryAttrs()))
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 4)), b=np.zeros((5, 4)))
    with pytest.raises(QuantizeError, match=r"'b' has 5 samples.*'a' has 3"):
        load_calib(tmp_path / "two.npz", g)
    np.savez(tmp_path / "one.npz", a=np.zeros((3, 4)))
    with pytest.raises(QuantizeError, match=r"missing \['b'\]"):
        load_calib(tmp_path / "one.npz", g)
    with pytest.raises(QuantizeError, match="no such file"):
        load_calib(tmp_path / "nope.npz", g)


def test_float_only_op_left_is_named() -> None:
    g = Graph(name="div", inputs=["a", "b"], outputs=["y"])
    for n in ("a", "b", "y"):
        g.add_tensor(Tensor(n, (1, 4)))
    g.nodes.append(Node(Op.DIV, ("a", "b"), ("y",), BinaryAttrs(), "my_div"))
    with pytest.raises(QuantizeError, match=r"my_div.*DIV.*float-only"):
        quantize_model(g, [np.ones((4, 4)), np.ones((4, 4))], verbose=0)


# ---------------------------------------------------------------- the int8 contract
@pytest.fixture(scope="module")
def resnet8():
    from edgeforge.frontends.tflite import read_tflite
    from edgeforge.quantize.samples import photo_crops
    fg = read_tflite(fixture("ic_resnet8_float32.tflite"))
    x = photo_crops(160, seed=11)
    qg = quantize_model(fg, x[:96], verbose=0)
    return fg, qg, x[96:]


@pytest.fixture(scope="module")
def kws():
    from edgeforge.frontends.tflite import read_tflite
    from edgeforge.qmath import dequantize
    from edgeforge.quantize.samples import kws_variants
    gi = read_tflite(fixture("kws_ds_cnn_int8.tflite"))
    q = gi.tensors[gi.inputs[0]].quant
    x8 = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).reshape(1, 49, 10, 1)
    x = kws_variants(dequantize(x8, q.scale[0], q.zero_point[0]), 160, seed=12)
    fg = read_tflite(fixture("kws_ds_cnn_float32.tflite"))
    return fg, quantize_model(fg, x[:96], verbose=0), x[96:]


def test_int8_contract_on_resnet8(resnet8) -> None:
    qg = resnet8[1]
    for name in qg.inputs + qg.outputs:
        t = qg.tensors[name]
        assert t.dtype == "int8" and t.quant is not None and not t.quant.per_channel
    x = qg.tensors[qg.inputs[0]].quant             # pixels 0..255 -> scale 1, zp -128
    assert float(x.scale[0]) == pytest.approx(1.0, rel=1e-6) and int(x.zero_point[0]) == -128
    for n in qg.nodes:
        out = qg.tensors[n.outputs[0]].quant
        if n.op in (Op.CONV2D, Op.FC, Op.DWCONV2D):
            w, b = qg.tensors[n.inputs[1]], qg.tensors[n.inputs[2]]
            assert w.dtype == "int8" and b.dtype == "int32"
            assert w.quant.axis == (3 if n.op == Op.DWCONV2D else 0)
            assert w.quant.scale.size == w.shape[w.quant.axis]
            assert not np.any(w.quant.zero_point) and np.abs(w.data).max() <= 127
            in_s = float(qg.tensors[n.inputs[0]].quant.scale[0])
            np.testing.assert_allclose(b.quant.scale, in_s * w.quant.scale, rtol=1e-6)
        if n.op in (Op.AVGPOOL2D, Op.MAXPOOL2D, Op.RESHAPE):
            assert out == qg.tensors[n.inputs[0]].quant
        if OPS[n.op].fixed_out_q:
            assert (float(out.scale[0]), int(out.zero_point[0])) == OPS[n.op].fixed_out_q
        if getattr(n.attrs, "act", Act.NONE) == Act.RELU:
            assert int(out.zero_point[0]) == -128  # range starts at 0: no codes wasted
    assert qg.meta["quantize"]["observer"] == "mse"


def _out_sqnr(fg, qg, x) -> tuple[float, float]:
    """Output SQNR (dB) vs float, and top-1 agreement with float."""
    fg = prepare_float(fg)
    out = qg.outputs[0]
    sig = err = 0.0
    agree = []
    for f, q in run_int8_float_pairs(fg, qg, [x], [out]):
        sig += float(np.sum(f[out].astype(np.float64) ** 2))
        err += float(np.sum((f[out] - q[out]).astype(np.float64) ** 2))
        agree.append(f[out].argmax(-1) == q[out].argmax(-1))
    return 10 * np.log10(sig / err), float(np.mean(np.concatenate(agree)))


def test_resnet8_fidelity_floor(resnet8) -> None:
    db, agree = _out_sqnr(*resnet8)
    # measured ~17 dB on photo crops (the TFLite-converted fixture: 14.6 dB)
    assert db > 14.0 and agree > 0.8, (db, agree)


def test_kws_fidelity_floor(kws) -> None:
    db, agree = _out_sqnr(*kws)
    assert db > 19.0 and agree > 0.9, (db, agree)        # measured ~23.5 dB


def test_softmax_input_keeps_row_maxima() -> None:
    from edgeforge.quantize.calibrate import SoftmaxInputObserver
    o = SoftmaxInputObserver(beta=1.0)
    rows = np.array([[-40.0, 3.0, 9.0], [-30.0, 2.0, 5.0]], np.float32)
    o.update(rows)
    lo, hi = o.range()
    assert hi == 9.0 and lo == pytest.approx(5.0 - 10.0)   # lowest row max - 10, not -40


def test_sqnr_report_rows(kws) -> None:
    fg, qg, x = kws
    rows = sqnr_report(fg, qg, x[:32])
    assert [r["op"] for r in rows] == [n.op.value for n in qg.nodes]
    assert all(r["sqnr_db"] is not None and np.isfinite(r["sqnr_db"]) for r in rows)
    assert all(r["sqnr_db"] > 10 for r in rows)
    assert rows[0]["sqnr_db"] > rows[-2]["sqnr_db"] - 20   # error grows, but not wildly


def test_calibration_1000_resnet8_samples_batched() -> None:
    from edgeforge.frontends.tflite import read_tflite
    fg = prepare_float(read_tflite(fixture("ic_resnet8_float32.tflite")))
    x = np.random.default_rng(7).uniform(0, 255, (64, 32, 32, 3)).astype(np.float32)
    r1 = calibrate(fg, x, observer="minmax", batch_size=64, verbose=0)
    r2 = calibrate(fg, x, observer="minmax", batch_size=5, verbose=0)   # ragged batches
    assert r1.keys() == r2.keys() and len(r1) == len(fg.activations())
    for k in r1:
        assert r1[k] == pytest.approx(r2[k], rel=1e-5, abs=1e-5)


def test_calib_in_onnx_layout_is_moved_to_nhwc() -> None:
    from edgeforge.frontends import load
    g = load(ROOT / "examples" / "digits" / "digits.onnx")       # ONNX input [1, 1, 8, 8]
    x = np.load(ROOT / "examples" / "digits" / "calib.npz")["input"][:8]
    (nchw,) = load_calib(x.transpose(0, 3, 1, 2), g)
    (nhwc,) = load_calib(x, g)
    np.testing.assert_array_equal(nchw, x)
    np.testing.assert_array_equal(nhwc, x)


def test_unknown_observer_lists_the_known_ones() -> None:
    with pytest.raises(QuantizeError, match=r"'kl'.*minmax, percentile, entropy, mse"):
        quantize_model(_tiny_conv(), np.ones((4, 6, 6, 2), np.float32), observer="kl",
                       verbose=0)


def test_input_on_a_grid_is_quantized_losslessly() -> None:
    from edgeforge.quantize.calibrate import input_grid
    rng = np.random.default_rng(8)
    sixteenths = rng.integers(0, 17, (50, 6, 6, 2)) / 16.0
    assert input_grid(sixteenths) == (0.0, 255 / 16)
    assert input_grid(rng.integers(0, 256, 1000).astype(np.float32)) == (0.0, 255.0)
    assert input_grid(rng.standard_normal(1000)) is None          # no grid
    assert input_grid(np.arange(300.0)) is None                   # > 256 levels
    qg = quantize_model(_tiny_conv(), sixteenths.astype(np.float32), verbose=0)
    q = qg.tensors["x"].quant
    assert float(q.scale[0]) == 1 / 16 and int(q.zero_point[0]) == -128


def test_equalization_preserves_function_and_balances_ranges(kws) -> None:
    from edgeforge.quantize.calibrate import batch_runner
    from edgeforge.quantize.equalize import equalize_graph, equalize_pairs
    fg, _, x = kws
    g = prepare_float(fg)
    e = equalize_graph(g)
    pairs = equalize_pairs(e)
    assert len(pairs) == 4 and len(e.meta["equalized"]) == 4   # KWS: 4 dw -> pw pairs
    np.testing.assert_allclose(batch_runner(e)([x[:8]])[e.outputs[0]],
                               batch_runner(g)([x[:8]])[g.outputs[0]], rtol=1e-4, atol=1e-6)
    for dw, pw in pairs:
        r1 = np.abs(e.tensors[dw.inputs[1]].data).max(axis=(0, 1, 2))
        r2 = np.abs(e.tensors[pw.inputs[1]].data).max(axis=(0, 1, 2))
        np.testing.assert_allclose(r1, r2, rtol=1e-4)          # equal per-channel ranges
