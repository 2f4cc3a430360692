"""Issue 11's second group of ops (transformer set, TRANSPOSE_CONV, ...): ONNX import against
onnxruntime, the Erf-GELU fusion, and small multi-op int8 models written by our .tflite
writer, byte-equal with TFLM and LiteRT and with the generated C. The single-op cases live in
tests/opcases.py (so test_reference_opcases and tests/c/test_kernels_opcases cover them)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.conftest import require
from tests.unit.test_onnx_import import _check, _init, _ops, _save

D = 16
RNG = np.random.default_rng(11)
T_STEPS, HID, FEAT = 5, 8, 6          # small recurrent layers


def _layernorm_nodes(x: str, out: str, opset: int) -> tuple[list, list]:
    g, b = RNG.normal(1, 0.2, D), RNG.normal(0, 0.2, D)
    return ([helper.make_node("LayerNormalization", [x, "ln_g", "ln_b"], [out], axis=-1,
                              epsilon=1e-5)], [_init("ln_g", g), _init("ln_b", b)])


def test_layernorm_decomposes_into_int8_ops(tmp_path):
    nodes, inits = _layernorm_nodes("x", "y", 17)
    g = _check(_save(tmp_path, nodes, [("x", [1, 5, D])], [("y", [1, 5, D])], inits, opset=17))
    ops = _ops(g)
    assert {"MEAN", "SQUARED_DIFFERENCE", "RSQRT"} <= set(ops), ops


def _legacy_layernorm(tmp_path, name="legacy_ln"):
    """LayerNorm as torch.onnx exports it before opset 17."""
    n = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]),
         helper.make_node("Sub", ["x", "m"], ["d"]),
         helper.make_node("Pow", ["d", "two"], ["d2"]),
         helper.make_node("ReduceMean", ["d2"], ["v"], axes=[-1]),
         helper.make_node("Add", ["v", "eps"], ["ve"]),
         helper.make_node("Sqrt", ["ve"], ["s"]),
         helper.make_node("Div", ["d", "s"], ["nrm"]),
         helper.make_node("Mul", ["nrm", "ln_g"], ["sc"]),
         helper.make_node("Add", ["sc", "ln_b"], ["y"])]
    inits = [_init("two", np.float32(2)), _init("eps", np.float32(1e-5)),
             _init("ln_g", RNG.normal(1, 0.2, D)), _init("ln_b", RNG.normal(0, 0.2, D))]
    return _save(tmp_path, n, [("x", [1, 5, D])], [("y", [1, 5, D])], inits, name=name)


def test_legacy_layernorm_divides_by_rsqrt(tmp_path):
    ops = _ops(_check(_legacy_layernorm(tmp_path)))
    assert "RSQRT" in ops and "DIV" not in ops and "SQRT" not in ops, ops


@pytest.mark.parametrize("order", ["x_half_last", "half_first", "mul_by_inv_sqrt2"])
def test_erf_gelu_pattern_fuses_to_one_gelu(tmp_path, order):
    n = [helper.make_node("Div", ["x", "sqrt2"], ["d"]) if order != "mul_by_inv_sqrt2"
         else helper.make_node("Mul", ["x", "isqrt2"], ["d"]),
         helper.make_node("Erf", ["d"], ["e"]),
         helper.make_node("Add", ["e", "one"], ["p"])]
    if order == "half_first":
        n += [helper.make_node("Mul", ["x", "half"], ["xh"]),
              helper.make_node("Mul", ["xh", "p"], ["y"])]
    else:
        n += [helper.make_node("Mul", ["x", "p"], ["xp"]),
              helper.make_node("Mul", ["xp", "half"], ["y"])]
    inits = [_init("sqrt2", np.float32(2 ** 0.5)), _init("isqrt2", np.float32(2 ** -0.5)),
             _init("one", np.float32(1)), _init("half", np.float32(0.5))]
    g = _check(_save(tmp_path, n, [("x", [1, 4, D])], [("y", [1, 4, D])], inits))
    assert _ops(g) == ["GELU"]


def test_gelu_op_sqrt_exp_pow(tmp_path):
    n = [helper.make_node("Gelu", ["x"], ["g"], approximate="tanh"),
         helper.make_node("Exp", ["g"], ["e"]),
         helper.make_node("Sqrt", ["e"], ["s"]),
         helper.make_node("Pow", ["s", "two"], ["y"])]
    g = _check(_save(tmp_path, n, [("x", [1, 4, D])], [("y", [1, 4, D])],
                     [_init("two", np.float32(2))], opset=20))
    assert _ops(g) == ["GELU", "EXP", "SQRT", "MUL"]


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("keep", [0, 1])
def test_reductions(tmp_path, op, keep):
    opset = 18   # axes as an input for all three
    n = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keep)]
    out = [1, 3, 1, 5] if keep else [1, 3, 5]
    g = _check(_save(tmp_path, n, [("x", [1, 3, 4, 5])], [("y", out)],
                     [_init("axes", np.array([2], np.int64))], opset=opset))
    assert {"SUM", "REDUCE_MAX", "REDUCE_MIN"} & set(_ops(g))


@pytest.mark.parametrize("idx", [np.array(0), np.array([3, 0, 1]), np.array([[1, -1], [0, 2]])])
def test_gather_constant_indices(tmp_path, idx):
    n = [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)]
    out = [1] + list(idx.shape) + [D]
    g = _check(_save(tmp_path, n, [("x", [1, 5, D])], [("y", out)],
                     [_init("idx", idx.astype(np.int64))]))
    assert "GATHER" in _ops(g)


def test_prelu_per_channel_is_one_op(tmp_path):
    n = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("PRelu", ["c", "s"], ["y"])]
    inits = [_init("w", RNG.normal(0, 0.3, (6, 3, 3, 3))),
             _init("s", RNG.uniform(0, 0.5, (6, 1, 1)))]
    g = _check(_save(tmp_path, n, [("x", [1, 3, 8, 8])], [("y", [1, 6, 6, 6])], inits))
    assert _ops(g) == ["CONV2D", "PRELU"]


@pytest.mark.parametrize("k,s,p,op", [(2, 2, 0, 0), (3, 2, 1, 1), (3, 1, 1, 0), (4, 2, 1, 0)])
def test_conv_transpose(tmp_path, k, s, p, op):
    n = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[k, k],
                          strides=[s, s], pads=[p, p, p, p], output_padding=[op, op])]
    o = (5 - 1) * s + k - 2 * p + op
    inits = [_init("w", RNG.normal(0, 0.3, (4, 3, k, k))), _init("b", RNG.normal(0, 0.1, 3))]
    g = _check(_save(tmp_path, n, [("x", [1, 4, 5, 5])], [("y", [1, 3, o, o])], inits))
    assert _ops(g) == ["TRANSPOSE_CONV"]


def test_conv_transpose_1d(tmp_path):
    n = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[4], strides=[2],
                          pads=[1, 1])]
    g = _check(_save(tmp_path, n, [("x", [1, 4, 7])], [("y", [1, 2, 14])],
                     [_init("w", RNG.normal(0, 0.3, (4, 2, 4)))]))
    assert "TRANSPOSE_CONV" in _ops(g)


# ---------------------------------------------------------------- small multi-op int8 models
def _block(tmp_path, act: str, name: str):
    """A pre-norm transformer block on [1, T, D] tokens + a class-token Gather: LayerNorm,
    q/k/v projections, q @ k^T (two activations), softmax over the last axis, @ v, residual,
    LayerNorm, MLP with `act` (Relu, or torch's Erf-GELU pattern), residual."""
    t, d, f = 6, D, 24
    w = {k: RNG.normal(0, 0.3, s) for k, s in
         (("wq", (d, d)), ("wk", (d, d)), ("wv", (d, d)), ("w1", (d, f)), ("w2", (f, d)))}
    n = _layernorm_nodes("x", "h", 17)[0] + [
        helper.make_node("MatMul", ["h", "wq"], ["q"]),
        helper.make_node("MatMul", ["h", "wk"], ["k"]),
        helper.make_node("MatMul", ["h", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"]),
        helper.make_node("Mul", ["s0", "scale"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["a"]),
        helper.make_node("Add", ["x", "a"], ["r"]),
        helper.make_node("LayerNormalization", ["r", "ln_g", "ln_b"], ["h2"], axis=-1),
        helper.make_node("MatMul", ["h2", "w1"], ["m"])]
    if act == "Relu":
        n.append(helper.make_node("Relu", ["m"], ["g"]))
    else:
        n += [helper.make_node("Div", ["m", "sqrt2"], ["md"]),
              helper.make_node("Erf", ["md"], ["me"]),
              helper.make_node("Add", ["me", "one"], ["mp"]),
              helper.make_node("Mul", ["m", "mp"], ["mm"]),
              helper.make_node("Mul", ["mm", "half"], ["g"])]
    n += [helper.make_node("MatMul", ["g", "w2"], ["o"]),
          helper.make_node("Add", ["r", "o"], ["y"]),
          helper.make_node("Gather", ["y", "cls"], ["c"], axis=1)]
    inits = _layernorm_nodes("x", "h", 17)[1] + [_init(k, v) for k, v in w.items()] + [
        _init("scale", np.float32(d ** -0.5)), _init("sqrt2", np.float32(2 ** 0.5)),
        _init("one", np.float32(1)), _init("half", np.float32(0.5)),
        _init("cls", np.array(0, np.int64))]
    return _save(tmp_path, n, [("x", [1, t, d])], [("c", [1, d])], inits, opset=17, name=name)


def _unet_tail(tmp_path, name: str):
    """Encoder conv -> ConvTranspose x2 upsampling -> concat skip -> PRelu -> ReduceMax over
    channels -> ReduceMean over width (the U-Net decoder step plus a new reduction; SUM is in
    the opcases: LiteRT's reference int8 SUM is broken)."""
    n = [helper.make_node("Conv", ["x", "w0"], ["e"], strides=[2, 2], pads=[1, 1, 1, 1]),
         helper.make_node("ConvTranspose", ["e", "wt", "bt"], ["u"], strides=[2, 2],
                          kernel_shape=[2, 2]),
         helper.make_node("Concat", ["u", "x"], ["cat"], axis=1),
         helper.make_node("PRelu", ["cat", "sl"], ["pr"]),
         helper.make_node("ReduceMax", ["pr"], ["mx"], axes=[1], keepdims=1),
         helper.make_node("ReduceMean", ["mx"], ["y"], axes=[3], keepdims=0)]
    inits = [_init("w0", RNG.normal(0, 0.3, (8, 3, 3, 3))),
             _init("wt", RNG.normal(0, 0.3, (8, 3, 2, 2))), _init("bt", RNG.normal(0, .1, 3)),
             _init("sl", RNG.uniform(0.05, 0.4, (6, 1, 1)))]
    return _save(tmp_path, n, [("x", [1, 3, 8, 8])], [("y", [1, 1, 8])], inits, name=name)


def _rnn_kws(tmp_path, op: str, name: str):
    """torch's batch-first export: Transpose [1, T, F] -> [T, 1, F], the RNN, its last h."""
    gates = 4 if op == "LSTM" else 3
    inits = [_init("W", RNG.normal(0, 0.4, (1, gates * HID, FEAT))),
             _init("R", RNG.normal(0, 0.4, (1, gates * HID, HID))),
             _init("B", RNG.normal(0, 0.2, (1, 2 * gates * HID)))]
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    outs = ["", "h"] + ([""] if op == "LSTM" else [])
    n = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
         helper.make_node(op, ["xt", "W", "R", "B"], outs, hidden_size=HID, **attrs)]
    return _save(tmp_path, n, [("x", [1, T_STEPS, FEAT])], [("h", [1, 1, HID])], inits,
                 opset=14, name=name)


MULTI = {"block_relu": lambda p: _block(p, "Relu", "block_relu"),
         "lstm_small": lambda p: _rnn_kws(p, "LSTM", "lstm_small"),
         "gru_small": lambda p: _rnn_kws(p, "GRU", "gru_small"),
         "legacy_ln": lambda p: _legacy_layernorm(p),
         "block_gelu": lambda p: _block(p, "gelu", "block_gelu"),
         "unet_tail": lambda p: _unet_tail(p, "unet_tail")}
NO_TFLM = {"block_gelu": "TFLM has no GELU kernel (the tflm profile runs LiteRT's table)"}


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
@pytest.mark.parametrize("name", sorted(MULTI))
def test_multi_op_int8_equals_peers_and_c(tmp_path, name, numerics):
    """Float import matches onnxruntime; compiled int8 (SQNR reported > 20 dB) is byte-equal
    with TFLM (tflm) or LiteRT BUILTIN_REF (litert) and with the generated C."""
    require("tflite_micro", "ai_edge_litert", "gcc")
    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    path = MULTI[name](tmp_path)
    _check(path, rtol=1e-4)
    shape = ([1, 6, D] if name.startswith("block") else [1, 3, 8, 8] if name == "unet_tail"
             else [1, 5, D] if name == "legacy_ln" else [1, T_STEPS, FEAT])
    calib = np.random.default_rng(3).normal(0, 1, [32] + shape[1:]).astype(np.float32)
    res = compile_model(path, tmp_path / "out", calib=calib, numerics=numerics)
    sqnr = res.report["sqnr"][-1]["sqnr_db"]
    assert sqnr > 20.0, f"{name}: SQNR {sqnr:.1f} dB"
    tfl = res.dir / "model.tflite"
    g = load(tfl)
    if numerics == "tflm" and name in NO_TFLM:
        peer = None     # no runtime has both TFLM's rounding and a GELU: C vs reference only
    else:
        peer = peers.TflmRunner(tfl) if numerics == "tflm" else peers.LitertRunner(tfl)
    [spec] = res.manifest.inputs        # calibration-like samples, then one uniform random
    x8 = calib[:3].transpose(0, 2, 3, 1) if calib.ndim == 4 else calib[:3]
    xs = [np.clip(np.round(v / spec.scale) + spec.zero_point, -128, 127).astype(np.int8)
          .reshape(spec.shape) for v in x8]
    xs.append(np.random.default_rng(5).integers(-128, 128, spec.shape).astype(np.int8))
    ys = CModel(res.dir).run_batch([np.stack(xs)])[0]
    for i, x in enumerate(xs):
        ours = run(g, [x], numerics=numerics)[g.outputs[0]]
        assert i == len(xs) - 1 or np.unique(ours).size > 1, f"{name}: constant output"
        if peer is not None:
            theirs = peer.run([x])[0].reshape(ours.shape)
            assert np.array_equal(ours, theirs), f"{name} [{numerics}] input {i}"
        assert np.array_equal(ys[i].reshape(ours.shape), ours), f"{name} C, input {i}"


# ---------------------------------------------------------------- recurrent layers (unrolled)
def _rnn_model(tmp_path, op: str, *, direction="forward", init="none", layout=0, lbr=1,
               outputs=("Y", "Y_h"), name="rnn"):
    g = 4 if op == "LSTM" else 3
    x_shape = [1, T_STEPS, FEAT] if layout else [T_STEPS, 1, FEAT]
    inits = [_init("W", RNG.normal(0, 0.4, (1, g * HID, FEAT))),
             _init("R", RNG.normal(0, 0.4, (1, g * HID, HID))),
             _init("B", RNG.normal(0, 0.2, (1, 2 * g * HID)))]
    ins = ["x", "W", "R", "B", ""]
    inputs = [("x", x_shape)]
    state = [1, 1, HID]
    if init == "const":
        inits += [_init("h0", RNG.normal(0, 0.5, state)), _init("c0", RNG.normal(0, 0.5, state))]
        ins += ["h0"] + (["c0"] if op == "LSTM" else [])
    elif init == "input":
        inputs += [("h0", state)] + ([("c0", state)] if op == "LSTM" else [])
        ins += ["h0"] + (["c0"] if op == "LSTM" else [])
    attrs = {"hidden_size": HID, "direction": direction, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    names = ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]
    outs = [n if n in outputs else "" for n in names]
    y_shape = [1, T_STEPS, 1, HID] if layout else [T_STEPS, 1, 1, HID]
    shapes = {"Y": y_shape, "Y_h": [1, 1, HID], "Y_c": [1, 1, HID]}
    n = [helper.make_node(op, ins, outs, **attrs)]
    return _save(tmp_path, n, inputs, [(o, shapes[o]) for o in outputs], inits, opset=14,
                 name=name)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
@pytest.mark.parametrize("variant", ["plain", "reverse", "const_init", "input_init", "lbr0"])
def test_rnn_unrolled_matches_onnxruntime(tmp_path, op, variant):
    if variant == "lbr0" and op == "LSTM":
        variant = "all_outputs"
    kw = {"reverse": {"direction": "reverse"}, "const_init": {"init": "const"},
          "input_init": {"init": "input"}, "lbr0": {"lbr": 0},
          "all_outputs": {"outputs": ("Y", "Y_h", "Y_c")}}.get(variant, {})
    g = _check(_rnn_model(tmp_path, op, **kw), rtol=1e-5)
    ops = set(_ops(g))
    if op == "LSTM" and variant in ("plain", "const_init", "reverse"):   # one fused LSTM
        assert "LSTM" in ops and not ops - {"LSTM", "RESHAPE", "STRIDED_SLICE", "GATHER"}, ops
        return
    assert {"FC", "LOGISTIC", "TANH", "MUL"} <= ops and not ops - {
        "FC", "LOGISTIC", "TANH", "MUL", "ADD", "SUB", "GATHER", "RESHAPE", "CONCAT"}


@pytest.mark.parametrize("kw,why", [({"direction": "bidirectional"}, "bidirectional"),
                                    ({"layout": 1}, "layout 1")])
def test_rnn_unsupported_forms_are_one_clear_error(tmp_path, kw, why):
    from edgeforge.errors import UnsupportedOpError
    from edgeforge.frontends.onnx import read_onnx
    with pytest.raises(UnsupportedOpError, match=why):
        read_onnx(_rnn_model(tmp_path, "GRU", outputs=("Y_h",), **kw))
