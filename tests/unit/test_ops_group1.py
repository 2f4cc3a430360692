"""Operators of issue 11/20's first group, end to end on small graphs: hard sigmoid rewritten
to int8 ops, 1-D windows and GlobalAveragePool on rank 3, channel splits, resizes, shape
computations folded at import. (Single-op byte equality with TFLM / LiteRT / C runs from
tests/opcases.py in test_reference_opcases and tests/c/test_kernels_opcases.)"""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.ir import Graph, HardSigmoidAttrs, Node, Op, Tensor
from edgeforge.passes import run_passes
from edgeforge.runtime.reference import run


def _onnx_model(tmp_path, nodes, inputs, outputs, inits=(), name="m"):
    import onnx
    from onnx import helper
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, path)
    return path


def _ort(path, feeds):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _vi(name, shape):
    from onnx import TensorProto, helper
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


# ---------------------------------------------------------------- HARD_SIGMOID
@pytest.mark.parametrize("alpha,beta", [(1 / 6, 0.5), (0.2, 0.5), (0.25, 0.4)])
def test_hard_sigmoid_becomes_int8_ops_with_the_same_float_values(alpha, beta):
    g = Graph()
    g.add_tensor(Tensor("x", (1, 4, 4, 8)))
    g.add_tensor(Tensor("y", (1, 4, 4, 8)))
    g.nodes.append(Node(Op.HARD_SIGMOID, ("x",), ("y",), HardSigmoidAttrs(alpha, beta)))
    g.inputs, g.outputs = ["x"], ["y"]
    x = np.random.default_rng(0).normal(0, 4, (1, 4, 4, 8)).astype(np.float32)
    want = run(g, [x])["y"]
    run_passes(g)
    assert Op.HARD_SIGMOID not in {n.op for n in g.nodes}
    assert all(n.op in (Op.MUL, Op.ADD, Op.RELU6) for n in g.nodes)
    np.testing.assert_allclose(run(g, [x])["y"], want, atol=1e-6)


def test_squeeze_excite_with_hard_sigmoid_folds_into_the_conv(tmp_path):
    """conv -> HardSigmoid: the +3 goes into the bias and RELU6 into the act, one MUL left."""
    from onnx import helper, numpy_helper

    from edgeforge.frontends.onnx import read_onnx
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (8, 8, 1, 1)).astype(np.float32), "w")
    path = _onnx_model(tmp_path, [helper.make_node("Conv", ["x", "w"], ["c"]),
                                  helper.make_node("HardSigmoid", ["c"], ["s"], alpha=1 / 6),
                                  helper.make_node("Mul", ["x", "s"], ["y"])],
                       [_vi("x", (1, 8, 4, 4))], [_vi("y", (1, 8, 4, 4))], [w])
    g = read_onnx(path)
    assert sorted(n.op.value for n in g.nodes) == ["CONV2D", "MUL", "MUL"]
    x = rng.normal(0, 2, (1, 8, 4, 4)).astype(np.float32)
    [ref] = _ort(path, {"x": x})
    ours = run(g, [x.transpose(0, 2, 3, 1)])["y"].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- 1-D
def test_global_average_pool_on_rank_3(tmp_path):
    from onnx import helper

    from edgeforge.frontends.onnx import read_onnx
    path = _onnx_model(tmp_path, [helper.make_node("GlobalAveragePool", ["x"], ["y"])],
                       [_vi("x", (1, 6, 20))], [_vi("y", (1, 6, 1))])
    g = read_onnx(path)
    assert [n.op for n in g.nodes if n.op != Op.RESHAPE] == [Op.MEAN]
    x = np.random.default_rng(2).normal(size=(1, 6, 20)).astype(np.float32)
    [ref] = _ort(path, {"x": x})
    np.testing.assert_allclose(run(g, [x])["y"], ref, rtol=1e-6)


# ---------------------------------------------------------------- ONNX importers vs onnxruntime
def _check_onnx(tmp_path, nodes, x_shape, y_shape, inits=(), feeds=None, ops=None, name="m"):
    from edgeforge.frontends.onnx import from_ir_layout, read_onnx, to_ir_layout
    path = _onnx_model(tmp_path, nodes, [_vi("x", x_shape)], [_vi("y", y_shape)], inits, name)
    g = read_onnx(path)
    x = np.random.default_rng(3).normal(size=x_shape).astype(np.float32)
    [ref] = _ort(path, {"x": x})
    ours = from_ir_layout(g, "y", run(g, [to_ir_layout(g, "x", x)])["y"])
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    if ops is not None:
        assert sorted(n.op.value for n in g.nodes) == sorted(ops)
    return g


def _i64(name, values):
    from onnx import numpy_helper
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def test_onnx_slice_with_steps_and_negative_bounds_is_one_strided_slice(tmp_path):
    from onnx import helper
    inits = [_i64("s", [1, -5, 0]), _i64("e", [7, 100, 3]), _i64("a", [1, 3, 2]),
             _i64("st", [2, 1, 2])]
    _check_onnx(tmp_path, [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
                (1, 8, 4, 9), (1, 3, 2, 5), inits, ops=["STRIDED_SLICE"])


def test_onnx_split_uneven_parts_concat_back(tmp_path):
    """chunk / split along channels, then reassembled in another order (ShuffleNet-like)."""
    from onnx import helper
    _check_onnx(tmp_path, [helper.make_node("Split", ["x", "sp"], ["a", "b", "c"], axis=1),
                           helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=1)],
                (1, 6, 3, 3), (1, 6, 3, 3), [_i64("sp", [1, 2, 3])])


@pytest.mark.parametrize("ctm,nearest,size", [("asymmetric", "floor", (8, 12)),
                                              ("half_pixel", "round_prefer_ceil", (6, 9)),
                                              ("align_corners", "round_prefer_ceil", (7, 5))])
def test_onnx_resize_nearest_modes(tmp_path, ctm, nearest, size):
    from onnx import helper
    _check_onnx(tmp_path, [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="nearest",
                                            coordinate_transformation_mode=ctm,
                                            nearest_mode=nearest)],
                (1, 3, 4, 6), (1, 3) + size, [_i64("sz", (1, 3) + size)],
                ops=["RESIZE_NEAREST"])


@pytest.mark.parametrize("ctm,size", [("asymmetric", (8, 12)), ("half_pixel", (6, 9)),
                                      ("pytorch_half_pixel", (8, 12)),
                                      ("align_corners", (7, 5))])
def test_onnx_resize_linear_is_resize_bilinear(tmp_path, ctm, size):
    from onnx import helper
    _check_onnx(tmp_path, [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear",
                                            coordinate_transformation_mode=ctm)],
                (1, 3, 4, 6), (1, 3) + size, [_i64("sz", (1, 3) + size)],
                ops=["RESIZE_BILINEAR"])


def test_onnx_resize_modes_tflite_cannot_compute_are_one_clear_error(tmp_path):
    from onnx import helper

    from edgeforge.errors import UnsupportedOpError
    from edgeforge.frontends.onnx import read_onnx
    for mode, kw in (("cubic", {}), ("nearest", {"nearest_mode": "round_prefer_floor"}),
                     ("linear", {"coordinate_transformation_mode": "tf_crop_and_resize"})):
        path = _onnx_model(tmp_path, [helper.make_node("Resize", ["x", "", "", "sz"], ["y"],
                                                       mode=mode, **kw)],
                           [_vi("x", (1, 2, 3, 3))], [_vi("y", (1, 2, 6, 6))],
                           [_i64("sz", (1, 2, 6, 6))], name=mode)
        with pytest.raises(UnsupportedOpError, match="Resize"):
            read_onnx(path)


def test_onnx_max_min_of_activations(tmp_path):
    from onnx import helper, numpy_helper
    k = numpy_helper.from_array(np.linspace(-1, 1, 5).astype(np.float32).reshape(1, 5, 1, 1),
                                "k")
    _check_onnx(tmp_path, [helper.make_node("Relu", ["x"], ["r"]),
                           helper.make_node("Neg", ["x"], ["n"]),
                           helper.make_node("Max", ["r", "n", "k"], ["m"]),
                           helper.make_node("Min", ["m", "x"], ["y"])],
                (1, 5, 3, 3), (1, 5, 3, 3), [k])


def test_onnx_shape_chain_folds_into_one_reshape(tmp_path):
    """x.view(x.size(0), -1) as torch exports it: Shape -> Gather -> Unsqueeze -> Concat ->
    Reshape folds to constants at import (Shape is an ordinary importer now)."""
    from onnx import helper
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["nu"]),
             helper.make_node("Concat", ["nu", "m1"], ["shape"], axis=0),
             helper.make_node("Size", ["x"], ["sz"]),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    g = _check_onnx(tmp_path, nodes, (1, 2, 3, 4), (1, 24),
                    [_i64("i0", 0), _i64("ax", [0]), _i64("m1", [-1])])
    assert {n.op for n in g.nodes} <= {Op.RESHAPE, Op.TRANSPOSE}


# ---------------------------------------------------------------- .tflite reader
def _tflite(tensors, ops, inputs, outputs) -> bytes:
    """A .tflite from schema objects: tensors [(name, shape, dtype, data | None[, (scales,
    zero points, axis)])], operators
    [(builtin, [input index], [output index], options class name | None, {field: value})]."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from edgeforge.codegen.tflite import TYPE_CODES
    m = schema.ModelT()
    m.version, m.buffers, m.operatorCodes = 3, [schema.BufferT()], []
    sg = schema.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs = [], [], inputs, outputs
    for name, shape, dt, data, *quant in tensors:
        t = schema.TensorT()
        if quant:
            q = schema.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(quant[0][0], np.float32))
            q.zeroPoint = np.atleast_1d(np.asarray(quant[0][1], np.int64))
            q.quantizedDimension = quant[0][2]
            t.quantization = q
        t.name, t.shape, t.type, t.buffer = name.encode(), np.asarray(shape, np.int32), \
            TYPE_CODES[dt], 0
        if data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.asarray(data, dt).tobytes(), np.uint8).copy()
            m.buffers.append(b)
            t.buffer = len(m.buffers) - 1
        sg.tensors.append(t)
    codes: dict[str, int] = {}
    for builtin, ins, outs, opt_cls, fields in ops:
        if builtin not in codes:
            oc = schema.OperatorCodeT()
            oc.builtinCode = getattr(schema.BuiltinOperator, builtin)
            oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
            oc.version = 1
            codes[builtin] = len(m.operatorCodes)
            m.operatorCodes.append(oc)
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = codes[builtin], ins, outs
        if opt_cls:
            o.builtinOptionsType = getattr(schema.BuiltinOptions, opt_cls)
            o.builtinOptions = getattr(schema, opt_cls + "T")()
            for k, v in fields.items():
                setattr(o.builtinOptions, k, v)
        sg.operators.append(o)
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _check_tflite(buf, x_shape):
    """Our float reference equals LiteRT on the model; returns the imported graph."""
    from edgeforge.frontends.tflite import graph_from_bytes
    from edgeforge.runtime.peers import run_litert
    g = graph_from_bytes(buf)
    x = np.random.default_rng(5).normal(size=x_shape).astype(np.float32)
    theirs = run_litert(buf, [x])
    ours = run(g, [x])
    for k, o in enumerate(g.outputs):
        np.testing.assert_allclose(ours[o], theirs[k], rtol=1e-6, atol=1e-6)
    return g


def test_tflite_keras_reshape_spelled_with_shape_ops_folds_at_import():
    """Keras' Reshape((-1, 8)): SHAPE -> STRIDED_SLICE(shrink) -> PACK -> RESHAPE on a static
    shape folds to one RESHAPE (issue 20's EfficientNet / squeeze-excite nets)."""
    i32 = "int32"
    tensors = [("x", (1, 4, 4, 8), "float32", None), ("shape", (4,), i32, None),
               ("b", (1,), i32, [0]), ("e", (1,), i32, [1]), ("s", (1,), i32, [1]),
               ("n", (), i32, None), ("m1", (), i32, [-1]), ("c8", (), i32, [8]),
               ("packed", (3,), i32, None), ("y", (1, 16, 8), "float32", None)]
    ops = [("SHAPE", [0], [1], "ShapeOptions", {"outType": 2}),
           ("STRIDED_SLICE", [1, 2, 3, 4], [5], "StridedSliceOptions", {"shrinkAxisMask": 1}),
           ("PACK", [5, 6, 7], [8], "PackOptions", {"valuesCount": 3, "axis": 0}),
           ("RESHAPE", [0, 8], [9], None, {})]
    g = _check_tflite(_tflite(tensors, ops, [0], [9]), (1, 4, 4, 8))
    assert [n.op for n in g.nodes] == [Op.RESHAPE]
    assert g.nodes[0].attrs.shape == (1, 16, 8)


def test_tflite_conv1d_expand_dims_and_squeeze_are_reshapes():
    """Keras Conv1D: EXPAND_DIMS -> (conv) -> SQUEEZE; here around a MAXIMUM / MINIMUM."""
    tensors = [("x", (1, 10, 4), "float32", None), ("ax", (), "int32", [1]),
               ("x4", (1, 1, 10, 4), "float32", None), ("k", (1, 1, 1, 4), "float32",
                                                         [[[[0.1, -0.2, 0.3, 0.0]]]]),
               ("mx", (1, 1, 10, 4), "float32", None), ("mn", (1, 1, 10, 4), "float32", None),
               ("y", (1, 10, 4), "float32", None)]
    ops = [("EXPAND_DIMS", [0, 1], [2], None, {}),
           ("MAXIMUM", [2, 3], [4], "MaximumMinimumOptions", {}),
           ("MINIMUM", [4, 2], [5], "MaximumMinimumOptions", {}),
           ("SQUEEZE", [5], [6], "SqueezeOptions", {"squeezeDims": [1]})]
    g = _check_tflite(_tflite(tensors, ops, [0], [6]), (1, 10, 4))
    assert [n.op for n in g.nodes] == [Op.RESHAPE, Op.MAXIMUM, Op.MINIMUM, Op.RESHAPE]


def test_tflite_split_slice_and_strided_slice_with_masks():
    i32 = "int32"
    tensors = [("x", (1, 4, 6, 8), "float32", None), ("axis", (), i32, [3]),
               ("p0", (1, 4, 6, 4), "float32", None), ("p1", (1, 4, 6, 4), "float32", None),
               ("b", (4,), i32, [0, 1, 0, 1]), ("sz", (4,), i32, [-1, 2, -1, 3]),
               ("sl", (1, 2, 6, 3), "float32", None),
               ("sb", (4,), i32, [0, 3, -4, 0]), ("se", (4,), i32, [0, 4, -1, 4]),
               ("ss", (4,), i32, [1, 1, 2, 1]), ("st", (1, 1, 2, 4), "float32", None)]
    ops = [("SPLIT", [1, 0], [2, 3], "SplitOptions", {"numSplits": 2}),
           ("SLICE", [3, 4, 5], [6], "SliceOptions", {}),
           ("STRIDED_SLICE", [2, 7, 8, 9], [10], "StridedSliceOptions",
            {"beginMask": 1, "endMask": 9})]
    g = _check_tflite(_tflite(tensors, ops, [0], [6, 10]), (1, 4, 6, 8))
    assert [n.op for n in g.nodes] == [Op.STRIDED_SLICE] * 4   # SPLIT: one slice per part


# ---------------------------------------------------------------- issue 20: run DIR
def test_run_dir_uses_the_profile_it_was_compiled_for(tmp_path):
    """A DIR compiled with --numerics litert runs as litert when run has no --numerics (it
    used to refuse with 'compiled for --numerics litert; run it with ...'); an explicit
    other profile is still refused for backend c, whose rounding is fixed at compile time."""
    import json
    import subprocess
    import sys

    from edgeforge import api
    from edgeforge.compiler import compile_model
    from edgeforge.errors import EdgeforgeError
    from tests.conftest import fixture, require
    require("gcc")
    out = compile_model(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "kws",
                        numerics="litert").dir
    x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).astype(np.int8)
    c = api.run(out, x, backend="c")
    ref = api.run(out, x)
    assert c["numerics"] == ref["numerics"] == "litert"
    assert np.array_equal(c["outputs"][0], ref["outputs"][0])
    assert np.array_equal(ref["outputs"][0], api.run(out, x, numerics="litert")["outputs"][0])
    with pytest.raises(EdgeforgeError, match="compiled for --numerics litert"):
        api.run(out, x, backend="c", numerics="tflm")
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "run", str(out), "-i",
                        str(tmp_path / "x.npy"), "--backend", "c", "--json"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["numerics"] == "litert"


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
def test_max_min_slice_resize_compile_to_int8_equal_to_peers(tmp_path, numerics):
    """A float ONNX graph with the first-group ops (Max/Min of activations and a per-channel
    constant, Slice, Split + Concat, Resize nearest and linear) compiles; its model.tflite in
    TFLM / LiteRT gives the reference's bytes and the C gives them too."""
    from onnx import helper, numpy_helper

    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    from edgeforge.runtime import peers
    from tests.conftest import require
    require("gcc")
    k = numpy_helper.from_array(np.linspace(-0.5, 0.5, 4).astype(np.float32).reshape(1, 4, 1, 1),
                                "k")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node("Max", ["r", "n", "k"], ["m"]),
             helper.make_node("Min", ["m", "x"], ["mn"]),
             helper.make_node("Split", ["mn", "sp"], ["a", "b"], axis=1),
             helper.make_node("Concat", ["b", "a"], ["cat"], axis=1),
             helper.make_node("Slice", ["cat", "s0", "e0", "a0", "st"], ["sl"]),
             helper.make_node("Resize", ["sl", "", "", "sz1"], ["up"], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Resize", ["up", "", "", "sz2"], ["y"], mode="linear",
                              coordinate_transformation_mode="half_pixel")]
    inits = [k, _i64("sp", [1, 3]), _i64("s0", [1]), _i64("e0", [6]), _i64("a0", [2]),
             _i64("st", [2]), _i64("sz1", [1, 4, 6, 12]), _i64("sz2", [1, 4, 9, 16])]
    path = _onnx_model(tmp_path, nodes, [_vi("x", (1, 4, 6, 6))], [_vi("y", (1, 4, 9, 16))],
                       inits)
    rng = np.random.default_rng(8)
    np.save(tmp_path / "calib.npy", rng.normal(size=(16, 4, 6, 6)).astype(np.float32))
    res = compile_model(path, tmp_path / "out", calib=tmp_path / "calib.npy", numerics=numerics)
    assert {"MAXIMUM", "MINIMUM", "STRIDED_SLICE", "CONCAT", "RESIZE_NEAREST",
            "RESIZE_BILINEAR"} <= set(res.manifest.ops)
    assert res.report["sqnr"][-1]["sqnr_db"] > 25
    tfl = res.dir / "model.tflite"
    g = load(tfl)
    peer = (peers.TflmRunner(tfl) if numerics == "tflm"
            else peers.LitertRunner(tfl, reference_kernels=True))
    xs = rng.integers(-128, 128, size=(6, 1, 6, 6, 4)).astype(np.int8)
    [ys] = CModel(res.dir).run_batch([xs])
    for i, x in enumerate(xs):
        ours = run(g, [x], numerics=numerics)[g.outputs[0]]
        np.testing.assert_array_equal(peer.run([x])[0], ours, err_msg=f"sample {i}")
        np.testing.assert_array_equal(ys[i], ours, err_msg=f"C, sample {i}")


def test_keras_style_int8_conv1d_with_clip_and_shape_reshape_byte_equal(tmp_path):
    """An int8 .tflite as the TFLite converter writes Keras' Conv1D + hard clip + Reshape:
    EXPAND_DIMS -> CONV_2D -> MAXIMUM/MINIMUM with constants -> SQUEEZE -> SHAPE ->
    STRIDED_SLICE -> PACK -> RESHAPE -> FULLY_CONNECTED. The file itself runs in TFLM and
    LiteRT with our reference's bytes (both profiles); compiled, its C gives them too."""
    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.frontends.tflite import graph_from_bytes
    from edgeforge.runtime import peers
    from tests.conftest import require
    require("gcc")
    rng = np.random.default_rng(12)
    i8, i32 = "int8", "int32"
    qx, qc = (0.05, -3, 0), (0.04, -20, 0)
    w = rng.integers(-127, 128, (8, 1, 3, 4)).astype(np.int8)
    ws = rng.uniform(0.002, 0.01, 8).astype(np.float32)
    b = rng.integers(-300, 300, 8).astype(np.int32)
    fw = rng.integers(-127, 128, (4, 128)).astype(np.int8)
    lo = np.int8(np.round(-1.0 / 0.04) - 20)
    hi = np.int8(np.round(3.0 / 0.04) - 20)
    tensors = [("x", (1, 16, 4), i8, None, qx), ("ax", (), i32, [1]),
               ("x4", (1, 1, 16, 4), i8, None, qx),
               ("w", (8, 1, 3, 4), i8, w, (ws, np.zeros(8), 0)),
               ("b", (8,), i32, b, (ws * 0.05, np.zeros(8), 0)),
               ("c", (1, 1, 16, 8), i8, None, qc), ("lo", (), i8, [lo], qc),
               ("hi", (), i8, [hi], qc), ("mx", (1, 1, 16, 8), i8, None, qc),
               ("mn", (1, 1, 16, 8), i8, None, qc), ("sq", (1, 16, 8), i8, None, qc),
               ("shape", (3,), i32, None), ("b0", (1,), i32, [0]), ("e0", (1,), i32, [1]),
               ("s0", (1,), i32, [1]), ("n", (), i32, None), ("m1", (), i32, [-1]),
               ("packed", (2,), i32, None), ("flat", (1, 128), i8, None, qc),
               ("fw", (4, 128), i8, fw, (0.01, 0, 0)),
               ("y", (1, 4), i8, None, (0.2, 5, 0))]
    ops = [("EXPAND_DIMS", [0, 1], [2], None, {}),
           ("CONV_2D", [2, 3, 4], [5], "Conv2DOptions",
            {"padding": 0, "strideH": 1, "strideW": 1, "dilationHFactor": 1,
             "dilationWFactor": 1}),
           ("MAXIMUM", [5, 6], [8], "MaximumMinimumOptions", {}),
           ("MINIMUM", [8, 7], [9], "MaximumMinimumOptions", {}),
           ("SQUEEZE", [9], [10], "SqueezeOptions", {"squeezeDims": [1]}),
           ("SHAPE", [10], [11], "ShapeOptions", {"outType": 2}),
           ("STRIDED_SLICE", [11, 12, 13, 14], [15], "StridedSliceOptions",
            {"shrinkAxisMask": 1}),
           ("PACK", [15, 16], [17], "PackOptions", {"valuesCount": 2, "axis": 0}),
           ("RESHAPE", [10, 17], [18], None, {}),
           ("FULLY_CONNECTED", [18, 19, -1], [20], "FullyConnectedOptions", {})]
    buf = _tflite(tensors, ops, [0], [20])
    g = graph_from_bytes(buf)
    assert [n.op for n in g.nodes] == [Op.RESHAPE, Op.CONV2D, Op.MAXIMUM, Op.MINIMUM,
                                       Op.RESHAPE, Op.RESHAPE, Op.FC]
    xs = rng.integers(-128, 128, (8, 1, 16, 4)).astype(np.int8)
    for numerics, peer in (("tflm", peers.TflmRunner(buf)),
                           ("litert", peers.LitertRunner(buf, reference_kernels=True))):
        outs = [run(g, [x], numerics=numerics)[g.outputs[0]] for x in xs]
        for i, x in enumerate(xs):
            np.testing.assert_array_equal(peer.run([x])[0], outs[i], err_msg=f"{numerics} {i}")
        assert len({o.tobytes() for o in outs}) > 1
        (tmp_path / "keras.tflite").write_bytes(buf)
        res = compile_model(tmp_path / "keras.tflite", tmp_path / numerics, numerics=numerics)
        [ys] = CModel(res.dir).run_batch([xs])
        for i in range(len(xs)):
            np.testing.assert_array_equal(ys[i], outs[i], err_msg=f"C {numerics} {i}")


def test_tflite_strided_slice_shrinking_an_activation_is_slice_then_reshape():
    """Keras' last LSTM step: x[:, -1, :] is STRIDED_SLICE with shrink_axis_mask on a
    computed tensor -> STRIDED_SLICE (the step, rank kept) + RESHAPE (the dim dropped)."""
    i32 = "int32"
    w = np.random.default_rng(4).normal(size=(3, 8)).astype(np.float32)
    tensors = [("x", (1, 5, 8), "float32", None), ("b", (3,), i32, [0, -1, 0]),
               ("e", (3,), i32, [0, 0, 0]), ("s", (3,), i32, [1, 1, 1]),
               ("last", (1, 8), "float32", None), ("w", (3, 8), "float32", w),
               ("y", (1, 3), "float32", None)]
    ops = [("STRIDED_SLICE", [0, 1, 2, 3], [4], "StridedSliceOptions",
            {"beginMask": 5, "endMask": 5, "shrinkAxisMask": 2}),
           ("FULLY_CONNECTED", [4, 5, -1], [6], "FullyConnectedOptions", {})]
    g = _check_tflite(_tflite(tensors, ops, [0], [6]), (1, 5, 8))
    assert [n.op for n in g.nodes] == [Op.STRIDED_SLICE, Op.RESHAPE, Op.FC]
    assert g.nodes[0].attrs.begin == (0, 4, 0) and g.nodes[0].attrs.end == (1, 5, 8)
    assert set(g.meta["tflite_index"].values()) <= set(range(7))


@pytest.mark.parametrize("alpha", [1.0, 1.702])
def test_onnx_swish_is_logistic_and_mul(tmp_path, alpha):
    """ONNX Swish (opset 24; SiLU at alpha 1) -> LOGISTIC + MUL, both int8 ops."""
    import onnx
    from onnx import helper

    from edgeforge.frontends.onnx import from_ir_layout, read_onnx, to_ir_layout
    g = helper.make_graph([helper.make_node("Swish", ["x"], ["y"], alpha=alpha)], "sw",
                          [_vi("x", (1, 3, 4, 4))], [_vi("y", (1, 3, 4, 4))])
    path = tmp_path / "swish.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 24)]), path)
    ir = read_onnx(path)
    assert sorted(n.op.value for n in ir.nodes) == sorted(
        ["LOGISTIC", "MUL"] + (["MUL"] if alpha != 1.0 else []))
    x = np.random.default_rng(6).normal(0, 3, (1, 3, 4, 4)).astype(np.float32)
    want = x / (1 + np.exp(-np.float64(alpha) * x))
    ours = from_ir_layout(ir, "y", run(ir, [to_ir_layout(ir, "x", x)])["y"])
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-6)
