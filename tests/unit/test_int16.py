"""16x8 (int16 activations, int8 weights): the int16 reference is bit-exact to TFLM under
profile tflm and to LiteRT BUILTIN_REF under profile litert, on the TFLite converter's own
16x8 models (tests/models/int16, made by tests/models/make_16x8.py), and its arithmetic
matches its integer definitions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeforge import qparams16 as q16
from edgeforge.frontends import load
from edgeforge.qmath import Numerics
from edgeforge.runtime import peers
from edgeforge.runtime import reference as R
from tests.conftest import require

MODELS = sorted((Path(__file__).resolve().parents[1] / "models" / "int16").glob("*.tflite"))


def _inputs(shape: tuple[int, ...], n: int, seed: int) -> list[np.ndarray]:
    """Half full-range int16, half small (most of a calibrated range sits near zero)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-32768 if k % 2 else -3000, 32768 if k % 2 else 3000, shape)
            .astype(np.int16) for k in range(n)]


@pytest.mark.parametrize("numerics", [Numerics.TFLM, Numerics.LITERT])
@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_converter_16x8_model_bit_exact(path, numerics):
    require("tflite_micro", "ai_edge_litert")
    g = load(path)
    assert any(g.tensors[t].dtype == "int16" for t in g.activations())
    peer = peers.TflmRunner(path) if numerics == Numerics.TFLM else peers.LitertRunner(path)
    params = R.prepare_graph(g, numerics)
    assert all(isinstance(q, q16.Quant16) for q in params)
    for k, x in enumerate(_inputs(g.tensors[g.inputs[0]].shape, 16, seed=3)):
        ours = R.run(g, [x], numerics=numerics, params=params)[g.outputs[0]]
        theirs = peer.run([x])[0].reshape(ours.shape)
        assert ours.dtype == theirs.dtype == np.int16
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{path.stem} input {k}")


def test_requantize64_is_the_reduced_multiplier_rounding_shift():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(1 << 40), 1 << 40, 2000)
    mult = rng.integers(1 << 30, (1 << 31) - 1, 2000)
    shift = rng.integers(-20, 3, 2000)
    got = q16.requantize64(acc, mult, shift)
    for a, m, s, y in zip(acc[:200], mult[:200], shift[:200], got[:200]):
        red = (int(m) + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
        total = 15 - int(s)
        assert int(y) == (int(a) * red + (1 << (total - 1))) >> total
    # saturating reduction: a multiplier past 0x7FFF0000 uses 0x7FFF
    assert int(q16.requantize64(1 << 20, 0x7FFFFFFF, 0)) == ((1 << 20) * 0x7FFF + (1 << 14)) >> 15


def test_lut16_lookup_interpolates_between_entries():
    lut = np.arange(513, dtype=np.int64) * 100 - 25600
    x = np.array([-32768, -32768 + 64, -1, 0, 127, 128, 32767])
    got = q16.lut16_lookup(x, lut.astype(np.int16))
    idx = 256 + (x >> 7)
    want = lut[idx] + ((lut[idx + 1] - lut[idx]) * (x & 127) + 64 >> 7)
    np.testing.assert_array_equal(got, want)


def test_logistic_tanh_follow_the_float_functions():
    q = q16.SigmoidQuant16(0, 0)                  # power-of-two input scale 2^-12: [-8, 8)
    x = np.arange(-32768, 32768, 97)
    real = x / 4096.0
    lo = q16.logistic16(x, q).astype(np.float64) / 32768
    th = q16.tanh16(x, q).astype(np.float64) / 32768
    assert np.abs(lo - 1 / (1 + np.exp(-real))).max() < 1e-4
    assert np.abs(th - np.tanh(real)).max() < 2e-4
    assert q16.logistic16(np.array([0]), q)[0] == 16384 and q16.tanh16(np.array([0]), q)[0] == 0


def test_int16_zero_point_is_refused():
    from edgeforge.errors import QuantizeError
    from edgeforge.ir import Graph, Node, Op, QuantParams, Tensor
    g = Graph(name="zp")
    g.add_tensor(Tensor("x", (1, 4), "int16", QuantParams(np.float32(0.01), 5)))
    g.add_tensor(Tensor("y", (1, 4), "int16", QuantParams(np.float32(0.01), 0)))
    from edgeforge.ir import ReshapeAttrs
    g.nodes.append(Node(Op.RESHAPE, ("x",), ("y",), ReshapeAttrs((1, 4)), "r"))
    g.inputs, g.outputs = ["x"], ["y"]
    with pytest.raises(QuantizeError, match="zero point 5"):
        R.prepare_graph(g)


@pytest.fixture(scope="module")
def resnet_tiny():
    """resnet_tiny.onnx quantized to int8, its float graph and minmax ranges (shared)."""
    from edgeforge.quantize.calibrate import calibrate, load_calib
    from edgeforge.quantize.quantize import prepare_float, quantize_model
    g = load(Path(__file__).resolve().parents[1] / "models" / "resnet_tiny.onnx")
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(0)
    calib = rng.normal(0, 1, (48,) + tuple(shape[1:])).astype(np.float32)
    qg = quantize_model(g, calib)
    fg = prepare_float(g)
    ranges = calibrate(fg, load_calib(calib, fg), observer="minmax")
    ev = rng.normal(0, 1, (12,) + tuple(shape[1:])).astype(np.float32)
    return fg, qg, ranges, ev


def _deq_run(g, x, numerics="tflm"):
    from edgeforge.qmath import dequantize, quantize
    t = g.tensors[g.inputs[0]]
    xq = quantize(x, float(t.quant.scale[0]), int(t.quant.zero_point[0]), t.dtype)
    y = R.run(g, [xq], numerics=numerics)[g.outputs[0]]
    o = g.tensors[g.outputs[0]].quant
    return xq, y, dequantize(y, o.scale[0], o.zero_point[0])


@pytest.mark.parametrize("half", [False, True], ids=["all_int16", "mixed"])
def test_widened_graph_bit_exact_and_better(resnet_tiny, half):
    """Our own 16x8 / mixed graphs: written .tflite runs byte-equal in TFLM and LiteRT, and
    int16 everywhere beats int8 by far in output SQNR."""
    require("tflite_micro", "ai_edge_litert")
    from edgeforge.codegen.tflite import tflite_bytes
    from edgeforge.quantize.mixed import widen, widenable
    from edgeforge.quantize.quantize import sqnr_db
    fg, qg, ranges, ev = resnet_tiny
    layers = set(widenable(qg)[::2]) if half else None
    g16 = widen(fg, qg, ranges, layers)
    kinds = {g16.tensors[n.outputs[0]].dtype for n in g16.nodes}
    assert kinds == ({"int8", "int16"} if half else {"int16"})
    if half:
        assert any(n.op.value == "QUANTIZE" for n in g16.nodes)
    data = tflite_bytes(g16)
    for numerics, peer in (("tflm", peers.TflmRunner(data)), ("litert", peers.LitertRunner(data))):
        for x in ev[:4]:
            xq, ours, _ = _deq_run(g16, x[None], numerics)
            np.testing.assert_array_equal(ours, peer.run([xq])[0].reshape(ours.shape))
    if not half:
        f = np.concatenate([R.run(fg, [x[None]])[fg.outputs[0]] for x in ev])
        q8 = np.concatenate([_deq_run(qg, x[None])[2] for x in ev])
        q16 = np.concatenate([_deq_run(g16, x[None])[2] for x in ev])
        assert sqnr_db(f, q16) > sqnr_db(f, q8) + 10.0


def test_int16_bias_correction_improves_the_16x8_graph(resnet_tiny):
    """The int8 graph's bias correction offsets int8 input error; re-corrected at int16 the
    16x8 graph's output gets closer to float (VWW MobileNet: 42.6 -> 46.5 dB)."""
    from edgeforge.quantize.mixed import correct_bias16, widen
    from edgeforge.quantize.quantize import sqnr_db
    fg, qg, ranges, ev = resnet_tiny
    g16 = widen(fg, qg, ranges)
    f = np.concatenate([R.run(fg, [x[None]])[fg.outputs[0]] for x in ev])
    before = sqnr_db(f, np.concatenate([_deq_run(g16, x[None])[2] for x in ev]))
    biases = {n.inputs[2]: g16.tensors[n.inputs[2]].data.copy() for n in g16.nodes
              if n.op.value == "CONV2D"}
    rng = np.random.default_rng(9)
    calib = rng.normal(0, 1, (32,) + tuple(fg.tensors[fg.inputs[0]].shape[1:])).astype(np.float32)
    done = correct_bias16(fg, g16, [calib])
    assert done and all(g16.tensors[b].data.dtype == np.int64 for b in biases)
    assert any(not np.array_equal(g16.tensors[b].data, v) for b, v in biases.items())
    after = sqnr_db(f, np.concatenate([_deq_run(g16, x[None])[2] for x in ev]))
    assert after > before


def test_compile_activations_on_a_quantized_model_is_one_clear_error(tmp_path):
    from tests.unit.test_cli_errors import cli, user_error
    src = Path(__file__).resolve().parents[1] / "fixtures" / "mlperf_tiny" / "kws_ds_cnn_int8.tflite"
    r = cli("compile", src, "-o", tmp_path / "d", "--activations", "auto")
    user_error(r, "kws_ds_cnn_int8.tflite", "--activations auto", "float models")
    assert not (tmp_path / "d").exists()


def test_compile_converter_16x8_model_keeps_its_int16_io(tmp_path):
    """A converter-made 16x8 .tflite (int16 graph I/O) compiles: the manifest, model.h and
    model.tflite keep int16 inputs / outputs with the converter's scales."""
    from edgeforge.compiler import compile_model
    src = next(p for p in MODELS if p.stem == "small_cnn")
    g = load(src)
    res = compile_model(src, tmp_path / "d")
    assert [t.dtype for t in res.manifest.inputs + res.manifest.outputs] == ["int16", "int16"]
    assert res.manifest.outputs[0].scale == pytest.approx(float(g.tensors[g.outputs[0]].quant.scale[0]))
    h = (tmp_path / "d" / "c" / "model.h").read_text()
    assert "int16_t *ef_model_input(int i);" in h and "int16_t *ef_model_output(int i);" in h
    assert "#define EF_MODEL_OUTPUT0_TYPE int16_t" in h
    d = load(tmp_path / "d" / "model.tflite")
    assert [d.tensors[n].dtype for n in d.inputs + d.outputs] == ["int16", "int16"]


def test_rank_layers_puts_the_small_output_path_first(resnet_tiny):
    """auto widens the output's own path first: the output layer, then back through every
    small (<= tail_bytes) widenable producer; big activations keep their damage rank."""
    from edgeforge.quantize.mixed import output_tail, rank_layers
    qg = resnet_tiny[1]
    rows = [{"tensor": n.outputs[0], "sqnr_db": 40.0 - k} for k, n in enumerate(qg.nodes)]
    small = 16 * max(qg.tensors[o].nbytes for o in qg.outputs)      # 160 B: pool, reshape
    tail = output_tail(qg, small)
    assert tail[0] == qg.outputs[0] and len(tail) >= 2
    assert all(qg.tensors[t].nbytes <= small for t in tail)
    big = [n.outputs[0] for n in qg.nodes if qg.tensors[n.outputs[0]].nbytes > small]
    assert big and not set(big) & set(tail)
    ranked = rank_layers(qg, rows, tail_bytes=small)
    assert ranked[:len(tail)] == tail and sorted(ranked) == sorted(rank_layers(qg, rows))
