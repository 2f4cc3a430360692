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
