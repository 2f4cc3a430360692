""".tflite in and out: fixtures parse, round trips preserve every tensor and node and give
identical outputs in LiteRT/TFLM, every op case is a valid model for both runtimes, and every
kind of bad file gives one typed error."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgeforge.codegen.tflite import tflite_bytes, write_tflite
from edgeforge.errors import ModelError, UnsupportedOpError
from edgeforge.frontends import load
from edgeforge.frontends.tflite import graph_from_bytes, read_tflite, same_pads
from edgeforge.ir import Act, Graph, IRError, Op, hybrid_int8, verify
from edgeforge.runtime.peers import run_litert
from tests.conftest import ROOT, fixture, require
from tests.opcases import cases, float_only_cases, random_inputs, tflm_arena_size, write_case

FIXTURES = ["kws_ds_cnn_int8", "kws_ds_cnn_float32", "ic_resnet8_int8", "ic_resnet8_float32"]

# name -> (op counts, input shape, output shape, int8?)
EXPECTED = {
    "kws_ds_cnn": ({Op.CONV2D: 5, Op.DWCONV2D: 4, Op.AVGPOOL2D: 1, Op.RESHAPE: 1, Op.FC: 1,
                    Op.SOFTMAX: 1}, (1, 49, 10, 1), (1, 12)),
    "ic_resnet8": ({Op.CONV2D: 9, Op.ADD: 3, Op.AVGPOOL2D: 1, Op.RESHAPE: 1, Op.FC: 1,
                    Op.SOFTMAX: 1}, (1, 32, 32, 3), (1, 10)),
}


def _litert(content: bytes, feeds: list[np.ndarray]) -> list[np.ndarray]:
    require("ai_edge_litert")
    return run_litert(content, feeds)


def _tflm(path, feeds: list[np.ndarray], arena: int) -> list[np.ndarray]:
    require("tflite_micro")
    from tflite_micro import runtime
    it = runtime.Interpreter.from_file(str(path), arena_size=arena)
    for i, x in enumerate(feeds):
        it.set_input(x, i)
    it.invoke()
    return [it.get_output(i).copy() for i in range(len(it.get_output_details(0)) and 1)]


def assert_same_ir(a: Graph, b: Graph) -> None:
    assert a.inputs == b.inputs and a.outputs == b.outputs
    assert set(a.tensors) == set(b.tensors)
    for name, ta in a.tensors.items():
        tb = b.tensors[name]
        assert (ta.shape, ta.dtype) == (tb.shape, tb.dtype), name
        assert ta.quant == tb.quant, name
        assert (ta.data is None) == (tb.data is None), name
        if ta.data is not None:
            assert ta.data.dtype == tb.data.dtype and np.array_equal(ta.data, tb.data), name
    assert len(a.nodes) == len(b.nodes)
    for na, nb in zip(a.nodes, b.nodes):
        assert (na.op, na.attrs, na.inputs, na.outputs) == (nb.op, nb.attrs, nb.inputs,
                                                           nb.outputs)


def _sample(g: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype == "int8":
            out.append(rng.integers(-128, 128, t.shape).astype(np.int8))
        else:   # the fixtures' float inputs: MFCCs / pixels in tens
            out.append((rng.random(t.shape) * 50).astype(np.float32))
    return out


# ---------------------------------------------------------------- fixtures parse
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_parses(name):
    g = read_tflite(fixture(f"{name}.tflite"))
    verify(g)
    counts, in_shape, out_shape = EXPECTED[name.rsplit("_", 1)[0]]
    got = {}
    for n in g.nodes:
        got[n.op] = got.get(n.op, 0) + 1
    assert got == counts
    assert g.tensors[g.inputs[0]].shape == in_shape
    assert g.tensors[g.outputs[0]].shape == out_shape
    assert g.macs() > 0
    # every IR tensor maps back to its index in the file, with the file's name as prefix
    idx = g.meta["tflite_index"]
    assert set(idx) == set(g.tensors)
    assert len(set(idx.values())) == len(idx)
    if name.endswith("int8"):
        assert g.is_int8()
        x, y = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
        assert x.dtype == y.dtype == "int8"
        assert y.quant.scale[0] == np.float32(1 / 256) and y.quant.zero_point[0] == -128
        for n in g.nodes:
            if n.op in (Op.CONV2D, Op.DWCONV2D):
                w, b = g.tensors[n.inputs[1]], g.tensors[n.inputs[2]]
                cout = w.shape[0] if n.op == Op.CONV2D else w.shape[3]
                assert w.dtype == "int8" and w.quant.scale.size == cout
                assert w.quant.axis == (0 if n.op == Op.CONV2D else 3)
                assert not w.quant.zero_point.any()
                assert b.dtype == "int32" and b.shape == (cout,)
                xs = g.tensors[n.inputs[0]].quant.scale[0]
                np.testing.assert_allclose(b.quant.scale, xs * w.quant.scale, rtol=1e-5)
    else:
        assert not g.is_int8()
        assert all(t.dtype in ("float32", "int32") for t in g.tensors.values())


def test_fixture_attrs_resolved():
    g = read_tflite(fixture("kws_ds_cnn_int8.tflite"))
    first = g.nodes[0]
    # 10x4 kernel, stride 2, SAME on 49x10: out 25x5, pads as TFLite computes them
    assert first.attrs.stride == (2, 2) and first.attrs.act == Act.RELU
    assert first.attrs.pad == same_pads((49, 10), (10, 4), (2, 2), (1, 1), 0) == (4, 1, 5, 1)
    reshape = next(n for n in g.nodes if n.op == Op.RESHAPE)
    assert reshape.attrs.shape == (1, 64) and reshape.inputs == (g.nodes[9].outputs[0],)
    pool = next(n for n in g.nodes if n.op == Op.AVGPOOL2D)
    assert pool.attrs.kernel == (25, 5) and pool.attrs.pad == (0, 0, 0, 0)


def test_hybrid_weights_dequantized():
    """int8 weights of float convs: float32 data (dequantized) that keeps the int8 scales, and
    hybrid_int8 gives back exactly the bytes in the file."""
    from ai_edge_litert import schema_py_generated as schema
    path = fixture("kws_ds_cnn_float32.tflite")
    g = read_tflite(path)
    deq = g.meta["dequantized_weights"]
    assert len(deq) == 5
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    for name in deq:
        t = g.tensors[name]
        assert t.dtype == "float32" and t.quant is not None and t.data.dtype == np.float32
        ft = model.subgraphs[0].tensors[g.meta["tflite_index"][name]]
        raw = np.frombuffer(bytes(model.buffers[ft.buffer].data), np.int8).reshape(t.shape)
        assert ft.type == 9 and np.array_equal(hybrid_int8(t), raw)
        np.testing.assert_allclose(t.data, raw * t.quant.scale[0], rtol=1e-6)
    bumped = g.tensors[deq[0]]
    bumped.data = bumped.data * np.float32(1.001)   # off the int8 grid: a plain float weight
    assert hybrid_int8(bumped) is None


# ---------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def roundtrips(tmp_path_factory):
    d = tmp_path_factory.mktemp("rt")
    out = {}
    for name in FIXTURES:
        src = fixture(f"{name}.tflite")
        g = read_tflite(src)
        path = write_tflite(g, d / f"{name}.tflite")
        out[name] = (src, g, path)
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_roundtrip_preserves_ir(roundtrips, name):
    _src, g, path = roundtrips[name]
    g2 = read_tflite(path)
    assert_same_ir(g, g2)
    # deterministic: writing the re-read graph gives the same bytes
    assert tflite_bytes(g2) == path.read_bytes()


@pytest.mark.parametrize("name", FIXTURES)
def test_roundtrip_same_outputs_litert(roundtrips, name):
    src, g, path = roundtrips[name]
    for seed in range(2):
        feeds = _sample(g, seed)
        if name == "kws_ds_cnn_int8" and seed == 0:
            feeds = [np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).reshape(1, 49, 10, 1)]
        a = _litert(src.read_bytes(), feeds)[0]
        b = _litert(path.read_bytes(), feeds)[0]
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)   # hybrid int8 weights are written back as int8


@pytest.mark.parametrize("name", ["kws_ds_cnn_int8", "ic_resnet8_int8"])
def test_roundtrip_same_outputs_tflm(roundtrips, name):
    src, g, path = roundtrips[name]
    feeds = _sample(g, 3)
    a = _tflm(src, feeds, 200_000)[0]
    b = _tflm(path, feeds, 200_000)[0]
    assert np.array_equal(a, b)


def test_write_is_atomic(tmp_path, monkeypatch):
    g = read_tflite(fixture("kws_ds_cnn_int8.tflite"))
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")
    bad = g.copy()
    bad.nodes = list(bad.nodes) + [bad.nodes[0].with_(outputs=("missing",))]
    with pytest.raises(IRError):      # an invalid graph never reaches the disk
        write_tflite(bad, target)
    import edgeforge.codegen.tflite as writer

    def failing_replace(a, b):
        raise OSError("disk full")
    monkeypatch.setattr(writer.os, "replace", failing_replace)
    with pytest.raises(OSError):      # a failure while writing leaves the old file whole
        write_tflite(g, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]   # no temp file left
    monkeypatch.undo()
    write_tflite(g, target)
    assert target.read_bytes()[4:8] == b"TFL3"


# ---------------------------------------------------------------- every op case
INT8_CASES = cases("int8")
FLOAT_CASES = cases("float32")


# (op, dtype) TFLM has no kernel for: LiteRT's default kernels are the second runtime
NO_TFLM_KERNEL = {(Op.SQRT, "int8"), (Op.EXP, "int8"), (Op.GELU, "int8"), (Op.GELU, "float32")}
# LiteRT's BUILTIN_REF kernel is wrong (int8 SUM writes -1): its default kernels run instead
LITERT_REF_WRONG = {(Op.SUM, "int8")}


@pytest.mark.parametrize("case", INT8_CASES + FLOAT_CASES,
                         ids=[f"{c.dtype}-{c.name}" for c in INT8_CASES + FLOAT_CASES])
def test_opcase_runs_in_litert_and_tflm(case, tmp_path):
    path = write_case(case, tmp_path)
    g2 = read_tflite(path)
    if case.name.endswith("explicit_pad"):   # written as PAD(V2) + VALID op
        assert [n.op for n in g2.nodes] == [Op.PAD, case.op]
        assert g2.nodes[1].attrs.pad == (0, 0, 0, 0)
    elif case.name.endswith("nobias") and case.op != Op.FC:   # conv, dwconv, tconv: zero bias
        bias = g2.tensors[g2.nodes[0].inputs[2]]
        assert case.node.inputs[2] == "" and not bias.data.any()
        assert bias.dtype == ("int32" if case.dtype == "int8" else "float32")
    else:
        assert_same_ir(case.graph, g2)
    y = case.graph.tensors[case.graph.outputs[0]]
    key = (case.op, case.dtype)
    for feeds in random_inputs(case.graph, n=2, seed=1):
        a = (_litert(path.read_bytes(), feeds) if key not in LITERT_REF_WRONG
             else run_litert(path.read_bytes(), feeds, reference_kernels=False))[0]
        b = (_tflm(path, feeds, tflm_arena_size(case.graph)) if key not in NO_TFLM_KERNEL
             else run_litert(path.read_bytes(), feeds, reference_kernels=False))[0]
        assert a.shape == b.shape == y.shape and a.dtype == b.dtype == np.dtype(y.dtype)
        if y.dtype == "int8":   # the two runtimes may differ by one rounding step at most
            assert np.abs(a.astype(np.int32) - b.astype(np.int32)).max() <= 1
            assert len(np.unique(a)) > 1 or a.size == 1 or case.op == Op.SOFTMAX
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_opcases_cover_every_op():
    need = {Op.CONV2D, Op.DWCONV2D, Op.FC, Op.AVGPOOL2D, Op.MAXPOOL2D, Op.ADD, Op.SUB, Op.MUL,
            Op.RESHAPE, Op.SOFTMAX, Op.CONCAT, Op.PAD, Op.MEAN, Op.RELU, Op.RELU6, Op.LOGISTIC,
            Op.TANH, Op.HARD_SWISH, Op.QUANTIZE, Op.DEQUANTIZE, Op.LEAKY_RELU}
    assert need <= {c.op for c in INT8_CASES}
    assert need - {Op.QUANTIZE, Op.DEQUANTIZE} <= {c.op for c in FLOAT_CASES}
    acts = {c.node.attrs.act for c in INT8_CASES if c.op == Op.CONV2D}
    assert acts == set(Act)
    assert {c.node.attrs.depth_multiplier for c in INT8_CASES if c.op == Op.DWCONV2D} == {1, 2}
    # seeded: two calls give the same weights
    assert np.array_equal(cases("int8")[0].graph.tensors["w"].data,
                          INT8_CASES[0].graph.tensors["w"].data)


# ---------------------------------------------------------------- bad files
def _bad_files(tmp_path):
    src = fixture("kws_ds_cnn_int8.tflite").read_bytes()
    files = {}
    for cut in (0, 6, 8, 64, 4096, len(src) // 2, len(src) - 1):
        files[f"cut{cut}"] = src[:cut]
    flipped = bytearray(src)
    flipped[0] ^= 0x40          # root table offset now points into the weeds
    files["flip_root"] = bytes(flipped)
    rng = np.random.default_rng(7)
    files["random"] = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    rnd = bytearray(files["random"])
    rnd[4:8] = b"TFL3"          # right identifier, garbage body
    files["random_tfl3"] = bytes(rnd)
    files["text"] = b"this is a text file renamed to .tflite\n" * 20
    paths = []
    for name, data in files.items():
        p = tmp_path / f"{name}.tflite"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_bad_files_one_model_error(tmp_path):
    for p in _bad_files(tmp_path):
        with pytest.raises(ModelError) as e:
            load(p)
        assert str(p) in str(e.value) and e.value.why


def test_bit_flips_never_crash():
    """Any single bit flip gives a verified graph or one typed error, nothing else."""
    src = fixture("kws_ds_cnn_int8.tflite").read_bytes()
    rng = np.random.default_rng(11)
    errors = 0
    for k in range(150):
        b = bytearray(src)
        b[int(rng.integers(0, 4096 if k % 2 else len(b)))] ^= 1 << int(rng.integers(0, 8))
        try:
            verify(graph_from_bytes(bytes(b)))
        except (ModelError, UnsupportedOpError):
            errors += 1
    assert errors > 0


def test_missing_file():
    with pytest.raises(ModelError, match="no such file"):
        load(ROOT / "nope.tflite")


def test_cli_bad_file_exit_2(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(fixture("kws_ds_cnn_int8.tflite").read_bytes()[:1000])
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "inspect", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "bad.tflite" in r.stderr


# ---------------------------------------------------------------- unsupported ops
def _model_with_unsupported_ops() -> bytes:
    """input -> SIN -> CUSTOM 'MyOp' -> RELU -> output, written with the schema API."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    tensors = []
    for i in range(4):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = f"t{i}".encode(), np.array([1, 4], np.int32), 0, 0
        tensors.append(t)
    codes = []
    for builtin, custom in ((s.BuiltinOperator.SIN, None), (s.BuiltinOperator.CUSTOM, b"MyOp"),
                            (s.BuiltinOperator.RELU, None)):
        oc = s.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), 1
        oc.customCode = custom
        codes.append(oc)
    ops = []
    for k in range(3):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = k, np.array([k], np.int32), np.array([k + 1],
                                                                                   np.int32)
        ops.append(o)
    sg = s.SubGraphT()
    sg.tensors, sg.operators = tensors, ops
    sg.inputs, sg.outputs = np.array([0], np.int32), np.array([3], np.int32)
    m = s.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, codes, [sg], [s.BufferT()]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_unsupported_ops_all_listed(tmp_path):
    p = tmp_path / "unsup.tflite"
    p.write_bytes(_model_with_unsupported_ops())
    with pytest.raises(UnsupportedOpError) as e:
        read_tflite(p)
    probs = e.value.problems
    assert [(i, op) for i, _, op, _ in probs] == [(0, "SIN"), (1, "CUSTOM:MyOp")]
    msg = str(e.value)
    assert "node 0" in msg and "node 1" in msg and "CONV_2D" in msg   # supported list
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "inspect", str(p)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "SIN" in r.stderr


# ---------------------------------------------------------------- less common forms
@pytest.mark.parametrize("case", float_only_cases(), ids=lambda c: c.name)
def test_float_only_ops_roundtrip(case, tmp_path):
    path = write_case(case, tmp_path)
    assert_same_ir(case.graph, read_tflite(path))
    feeds = random_inputs(case.graph, n=1, seed=2)[0]
    a = _litert(path.read_bytes(), feeds)[0]
    assert a.shape == case.graph.tensors["y"].shape and np.isfinite(a).all()
    if case.op != Op.LRN:   # TFLM has no LOCAL_RESPONSE_NORMALIZATION kernel
        np.testing.assert_allclose(_tflm(path, feeds, tflm_arena_size(case.graph))[0], a,
                                   rtol=1e-5, atol=1e-5)


def test_float16_weights_folded(tmp_path):
    """A float16 model (weights stored fp16 + DEQUANTIZE) reads as a plain float graph."""
    from edgeforge.ir import NoAttrs, Node, Tensor
    c = next(c for c in cases("float32") if c.name == "conv_same_s1")
    g = c.graph.copy()
    w16 = g.tensors["w"].data.astype(np.float16)
    g.tensors["w"] = Tensor("w", w16.shape, "float32")
    g.const("w_fp16", w16)
    g.nodes.insert(0, Node(Op.DEQUANTIZE, ("w_fp16",), ("w",), NoAttrs(), "deq"))
    path = write_tflite(g, tmp_path / "fp16.tflite")
    feeds = random_inputs(g, n=1, seed=0)[0]
    a = _litert(path.read_bytes(), feeds)[0]
    g2 = read_tflite(path)
    assert [n.op for n in g2.nodes] == [Op.CONV2D] and g2.meta["folded_dequantize"] == 1
    assert g2.tensors["w"].dtype == "float32"
    assert np.array_equal(g2.tensors["w"].data, w16.astype(np.float32))
    np.testing.assert_allclose(_litert(tflite_bytes(g2), feeds)[0], a, rtol=1e-5, atol=1e-5)


def test_signature_and_extra_subgraphs():
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    c = next(c for c in cases("int8") if c.name == "add_same_shape")
    data = tflite_bytes(c.graph)
    require("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter
    sig = Interpreter(model_content=data).get_signature_list()
    assert sig == {"serving_default": {"inputs": ["x0", "x1"], "outputs": ["y"]}}
    m = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    m.subgraphs.append(m.subgraphs[0])     # a second subgraph (e.g. a while body)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    g = graph_from_bytes(bytes(b.Output()))
    assert g.meta["ignored_subgraphs"] == 1
    assert_same_ir(c.graph, g)


def test_unsupported_tensor_type_listed():
    """INT4 weights (a newer converter option) are named per op, not a crash."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    src = fixture("kws_ds_cnn_int8.tflite").read_bytes()
    m = s.ModelT.InitFromPackedBuf(bytearray(src), 0)
    sg = m.subgraphs[0]
    convs = [k for k, o in enumerate(sg.operators)
             if m.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode == s.BuiltinOperator.CONV_2D]
    for k in convs[:2]:
        sg.tensors[sg.operators[k].inputs[1]].type = s.TensorType.INT4
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(UnsupportedOpError) as e:
        graph_from_bytes(bytes(b.Output()))
    assert [p[0] for p in e.value.problems] == convs[:2]
    assert all("INT4" in p[3] for p in e.value.problems)


@pytest.mark.parametrize("breakage", ["buffer", "tensor_index", "opcode_index", "weight_bytes"])
def test_structural_errors_one_model_error(breakage):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf(bytearray(fixture("kws_ds_cnn_int8.tflite").read_bytes()), 0)
    sg = m.subgraphs[0]
    w = sg.tensors[sg.operators[0].inputs[1]]
    if breakage == "buffer":
        w.buffer = len(m.buffers) + 5
    elif breakage == "tensor_index":
        sg.operators[3].inputs[0] = len(sg.tensors) + 2
    elif breakage == "opcode_index":
        sg.operators[2].opcodeIndex = 99
    else:
        m.buffers[w.buffer].data = m.buffers[w.buffer].data[:-3]
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ModelError) as e:
        graph_from_bytes(bytes(b.Output()), "broken.tflite")
    assert e.value.path == "broken.tflite"
    word = {"buffer": "buffer", "tensor_index": "tensor", "opcode_index": "opcode",
            "weight_bytes": "bytes"}[breakage]
    assert word in e.value.why


@pytest.mark.parametrize("name", ["kws_ds_cnn_int8", "ic_resnet8_float32"])
def test_tflite_index_matches_runtime_tensors(name):
    """meta['tflite_index'] points at the same tensor the runtimes number that way."""
    require("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter
    path = fixture(f"{name}.tflite")
    g = read_tflite(path)
    details = {d["index"]: d for d in Interpreter(model_path=str(path)).get_tensor_details()}
    for ir_name, idx in g.meta["tflite_index"].items():
        d, t = details[idx], g.tensors[ir_name]
        assert ir_name.startswith(d["name"]) and tuple(d["shape"]) == t.shape
        if t.quant is not None and not t.quant.per_channel:
            assert np.float32(d["quantization"][0]) == t.quant.scale[0]
