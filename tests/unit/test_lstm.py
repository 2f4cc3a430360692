"""UNIDIRECTIONAL_SEQUENCE_LSTM (issue 11): int8 with int16 cell state, bit-exact with TFLM
(--numerics tflm) and LiteRT (--numerics litert) on random shapes, the generated C equal to
the reference, the float kernel against LiteRT, the forms TFLM's kernel lacks refused in one
line, and ONNX LSTMs imported as the fused op."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.ir import LSTM_C, LSTM_H, Op
from tests.conftest import require
from tests.opcases import lstm_case, random_inputs, write_case

# (batch, steps, features, hidden, time_major, cell_clip): batch 1 as KWS models, several
# steps, odd sizes, time-major with batch > 1, a clip that bites
SHAPES = {
    "b1_t7_f5_h9": (1, 7, 5, 9, False, 0.0),
    "b1_t12_f16_h4": (1, 12, 16, 4, False, 0.0),
    "b3_t4_f3_h6": (3, 4, 3, 6, False, 0.0),
    "tm_b2_t6_f4_h10_clip": (2, 6, 4, 10, True, 0.5),
}


def _case(name: str, dtype: str = "int8"):
    b, t, f, h, tm, clip = SHAPES[name]
    return lstm_case(f"lstm_{name}", dtype, batch=b, steps=t, features=f, hidden=h,
                     time_major=tm, cell_clip=clip)


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_int8_lstm_equals_peer(name, numerics, tmp_path):
    require("tflite_micro", "ai_edge_litert")
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    c = _case(name)
    g = c.graph
    [node] = g.nodes
    assert node.op == Op.LSTM and g.tensors[node.inputs[LSTM_C]].dtype == "int16"
    path = write_case(c, tmp_path)
    peer = (peers.TflmRunner(path) if numerics == "tflm"
            else peers.LitertRunner(path, reference_kernels=True))
    outs = []
    for feeds in random_inputs(g, n=6, seed=2):
        ours = run(g, feeds, numerics=numerics)[g.outputs[0]]
        theirs = peer.run(feeds)[0].reshape(ours.shape)
        assert np.array_equal(ours, theirs), f"{name} [{numerics}]"
        outs.append(ours)
    assert len({o.tobytes() for o in outs}) == len(outs)        # inputs do reach the output


def test_profiles_differ_where_the_runtimes_do(tmp_path):
    """TFLM's table sigmoid and LiteRT's gemmlowp one disagree by a step now and then: over a
    few long sequences the two profiles' bytes differ somewhere (else one profile would be
    matching the other runtime by luck)."""
    from edgeforge.runtime.reference import run
    g = lstm_case("lstm_profiles", "int8", steps=20, features=8, hidden=16).graph
    diff = sum(int((run(g, f, numerics="tflm")["y"] != run(g, f, numerics="litert")["y"]).sum())
               for f in random_inputs(g, n=4, seed=9))
    assert diff > 0


@pytest.mark.parametrize("numerics", ["tflm", "litert", "single"])
def test_c_equals_reference(numerics, tmp_path):
    """The compiled package (plan scratch for the states and gate rows, the params struct,
    weights.c arrays) built with the host compiler gives the reference's bytes (single:
    TFLM's algorithm with every requantization rounding once, TFLITE_SINGLE_ROUNDING)."""
    require("gcc")
    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.runtime.reference import run
    for name in ("b3_t4_f3_h6", "tm_b2_t6_f4_h10_clip"):
        c = _case(name)
        res = compile_model(write_case(c, tmp_path), tmp_path / name, numerics=numerics)
        g = c.graph
        samples = random_inputs(g, n=4, seed=4)
        ys = CModel(res.dir).run_batch([np.stack([s[0] for s in samples])])[0]
        for i, s in enumerate(samples):
            want = run(g, s, numerics=numerics)[g.outputs[0]]
            assert np.array_equal(ys[i].reshape(want.shape), want), f"{name} [{numerics}] {i}"


@pytest.mark.parametrize("name", ["b1_t7_f5_h9", "tm_b2_t6_f4_h10_clip"])
def test_float_lstm_matches_litert(name, tmp_path):
    require("ai_edge_litert")
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    c = _case(name, "float32")
    path = write_case(c, tmp_path)
    peer = peers.LitertRunner(path)
    for feeds in random_inputs(c.graph, n=3, seed=1):
        ours = run(c.graph, feeds)["y"]
        np.testing.assert_allclose(ours, peer.run(feeds)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", ["peephole", "projection", "CIFG"])
def test_forms_tflm_lacks_are_one_clear_error(form, tmp_path):
    """Peephole, projection and CIFG LSTMs: TFLM's kernel has none, so the reader refuses
    them with one line naming the op and the form (nothing half-imported)."""
    from edgeforge.codegen.tflite import tflite_bytes
    from edgeforge.errors import UnsupportedOpError
    from edgeforge.frontends.tflite import graph_from_bytes
    g = _case("b1_t7_f5_h9", "float32").graph
    n = g.nodes[0]
    ins = list(n.inputs)
    hidden = g.tensors[ins[LSTM_H]].shape[-1]
    if form == "peephole":
        ins[10] = g.const("peep", np.full(hidden, 0.1, np.float32)).name
    elif form == "projection":
        ins[16] = g.const("proj", np.eye(hidden, dtype=np.float32)).name
    else:
        ins[1] = ins[5] = ins[12] = ""
    g.nodes[0] = n.with_(inputs=tuple(ins))
    with pytest.raises(UnsupportedOpError, match=f"UNIDIRECTIONAL_SEQUENCE_LSTM.*{form}"):
        graph_from_bytes(tflite_bytes(g), "lstm.tflite")


def test_cell_scale_is_a_power_of_two_covering_the_cell(tmp_path):
    """The rule's int16 cell scale is 2^p, p in [-15, -9], and grows with the calibrated
    cell range (large gate weights drive |c| past 1)."""
    from edgeforge.quantize.quantize import quantize_model
    scales = []
    for gain in (0.3, 8.0):
        g = _case("b1_t12_f16_h4", "float32").graph
        for k in (1, 3, 12, 14):           # input gate and cell gate drive c up
            t = g.tensors[g.nodes[0].inputs[k]]
            t.data = (t.data * gain + (gain if k in (12, 14) else 0)).astype(np.float32)
        x = np.random.default_rng(0).normal(0, 1, (8, 1, 12, 16)).astype(np.float32)
        q = quantize_model(g, x, bias_correction=False, equalize=False, verbose=0)
        s = float(q.tensors[q.nodes[0].inputs[LSTM_C]].quant.scale[0])
        p = np.log2(s)
        assert p == int(p) and -15 <= p <= -9
        scales.append(s)
    assert scales[1] > scales[0]


def _onnx_lstm(tmp_path, layout: int, outputs: tuple[str, ...], t=6, f=4, h=5, b=1,
               direction: str = "forward"):
    from onnx import TensorProto, helper, numpy_helper, save
    rng = np.random.default_rng(7)
    d = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, s).astype(np.float32), n)
             for n, s in (("W", (d, 4 * h, f)), ("R", (d, 4 * h, h)), ("B", (d, 8 * h)))]
    names = [o if o in outputs else "" for o in ("Y", "Y_h", "Y_c")]
    x_shape = [b, t, f] if layout else [t, b, f]
    shapes = {"Y": [b, t, d, h] if layout else [t, d, b, h],
              "Y_h": [b, d, h] if layout else [d, b, h], "Y_c": [b, d, h] if layout else [d, b, h]}
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], names, hidden_size=h, layout=layout,
                            direction=direction)
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes[o]) for o in outputs],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    p = tmp_path / f"lstm_l{layout}_{direction}_{'_'.join(outputs)}.onnx"
    save(m, p)
    return p


@pytest.mark.parametrize("outputs", [("Y",), ("Y_h",), ("Y", "Y_h")])
def test_onnx_lstm_imports_fused_and_matches_onnxruntime(outputs, tmp_path):
    require("onnxruntime")
    import onnxruntime as ort

    from edgeforge.frontends import load
    from edgeforge.runtime.reference import run
    p = _onnx_lstm(tmp_path, 0, outputs, b=2)
    g = load(p)
    assert [n.op for n in g.nodes].count(Op.LSTM) == 1
    assert not {n.op for n in g.nodes} - {Op.LSTM, Op.RESHAPE, Op.STRIDED_SLICE}
    x = np.random.default_rng(1).normal(0, 1, (6, 2, 4)).astype(np.float32)
    want = ort.InferenceSession(str(p)).run(None, {"x": x})
    got = run(g, [x])
    for o, w in zip(g.outputs, want):
        np.testing.assert_allclose(got[o].reshape(w.shape), w, rtol=1e-5, atol=1e-6)


def test_onnx_batch_first_lstm_is_the_time_major_one_transposed(tmp_path):
    """layout = 1 (batch-first, what onnxruntime has no kernel for) imports as a batch-major
    fused LSTM: its Y is the layout-0 model's Y with batch and time swapped."""
    from edgeforge.frontends import load
    from edgeforge.runtime.reference import run
    g0, g1 = (load(_onnx_lstm(tmp_path, lay, ("Y",), b=2)) for lay in (0, 1))
    assert not g1.nodes[[n.op for n in g1.nodes].index(Op.LSTM)].attrs.time_major
    x = np.random.default_rng(2).normal(0, 1, (2, 6, 4)).astype(np.float32)
    y0 = run(g0, [x.transpose(1, 0, 2)])[g0.outputs[0]]          # [T, 1, B, H]
    y1 = run(g1, [x])[g1.outputs[0]]                              # [B, T, 1, H]
    np.testing.assert_array_equal(y1, y0.transpose(2, 0, 1, 3))


def test_onnx_lstm_using_the_final_cell_stays_unrolled(tmp_path):
    """Y_c (the last cell state) has no fused-op output: that LSTM keeps the exact unrolling."""
    from edgeforge.frontends import load
    g = load(_onnx_lstm(tmp_path, 0, ("Y_h", "Y_c")))
    assert Op.LSTM not in {n.op for n in g.nodes} and Op.LOGISTIC in {n.op for n in g.nodes}


def test_float_lstm_file_compiles_with_default_passes(tmp_path):
    """A float .tflite LSTM of batch 2 through compile with every default pass (calibration
    and bias correction stack samples on a leading axis): int8 SQNR well above noise, bytes
    equal to TFLM's and the C package's."""
    require("tflite_micro", "gcc")
    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    path = write_case(_case("b3_t4_f3_h6", "float32"), tmp_path)
    calib = np.random.default_rng(1).normal(0, 1, (24, 3, 4, 3)).astype(np.float32)
    res = compile_model(path, tmp_path / "out", calib=calib, numerics="tflm")
    assert res.report["sqnr"][-1]["sqnr_db"] > 25.0
    q = load(res.dir / "model.tflite")
    xs = random_inputs(q, n=3, seed=5)
    ys = CModel(res.dir).run_batch([np.stack([s[0] for s in xs])])[0]
    peer = peers.TflmRunner(res.dir / "model.tflite")
    for i, s in enumerate(xs):
        ours = run(q, s, numerics="tflm")[q.outputs[0]]
        assert np.array_equal(ours, peer.run(s)[0]) and np.array_equal(ys[i], ours)


@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_onnx_reverse_and_bidirectional_lstm_fuse(direction, tmp_path):
    """A reverse LSTM runs the fused op on the time-reversed sequence (constant GATHERs);
    bidirectional is both directions concatenated as ONNX lays out Y and Y_h. Float vs
    onnxruntime, then compiled int8 byte-equal to TFLM."""
    require("onnxruntime", "tflite_micro")
    import onnxruntime as ort

    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    p = _onnx_lstm(tmp_path, 0, ("Y", "Y_h"), b=1, direction=direction)
    g = load(p)
    assert [n.op for n in g.nodes].count(Op.LSTM) == (2 if direction == "bidirectional" else 1)
    x = np.random.default_rng(3).normal(0, 1, (6, 1, 4)).astype(np.float32)
    want = ort.InferenceSession(str(p)).run(None, {"x": x})
    got = run(g, [x])
    for o, w in zip(g.outputs, want):
        np.testing.assert_allclose(got[o].reshape(w.shape), w, rtol=1e-5, atol=1e-6)
    calib = np.random.default_rng(4).normal(0, 1, (16, 6, 1, 4)).astype(np.float32)
    res = compile_model(p, tmp_path / "out", calib=calib, numerics="tflm")
    q = load(res.dir / "model.tflite")
    peer = peers.TflmRunner(res.dir / "model.tflite")
    for s in random_inputs(q, n=3, seed=6):
        ours = run(q, s, numerics="tflm")
        theirs = peer.run(s)
        for k, o in enumerate(q.outputs):
            assert np.array_equal(ours[o], theirs[k].reshape(ours[o].shape)), o
