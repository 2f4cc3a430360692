"""ONNX importer, op by op and opset by opset (small onnx.helper models vs onnxruntime), and
its errors: unsupported ops (one message naming each), corrupt file, missing external data,
cyclic graph, dynamic non-batch dims; plus `edgeforge inspect` / `run` on an .onnx file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx  # a dependency of edgeforge, never skipped
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeforge.errors import ModelError, UnsupportedOpError
from edgeforge.frontends.onnx import IMPORTERS, from_ir_layout, read_onnx, to_ir_layout
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
F = TensorProto.FLOAT
RNG = np.random.default_rng(7)


def _init(name: str, arr) -> TensorProto:
    arr = np.asarray(arr)
    return numpy_helper.from_array(arr.astype(np.float32) if arr.dtype.kind == "f" else arr,
                                   name)


def _save(tmp: Path, nodes, inputs, outputs, inits=(), opset=13, name="m") -> Path:
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, F, s) for n, s in outputs],
                          list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 8)   # readable by the installed onnxruntime
    p = tmp / f"{name}.onnx"
    onnx.save(m, str(p))
    return p


def _check(path: Path, batch: int = 1, passes: bool = True, rtol: float = 1e-4):
    """read_onnx + reference run == onnxruntime on random inputs; returns the graph."""
    require("onnxruntime")
    import onnxruntime as ort

    from edgeforge.runtime.reference import run
    g = read_onnx(path, batch=batch, passes=passes)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: RNG.standard_normal([d if isinstance(d, int) else batch
                                          for d in i.shape]).astype(np.float32)
             for i in sess.get_inputs()}
    theirs = sess.run(None, feeds)
    ours = run(g, {k: to_ir_layout(g, k, v) for k, v in feeds.items()})
    for o, ref in zip(sess.get_outputs(), theirs):
        y = from_ir_layout(g, o.name, ours[o.name])
        assert y.shape == ref.shape, (o.name, y.shape, ref.shape)
        err = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-12)
        assert err < rtol, (path.name, o.name, err)
    return g


def _ops(g) -> list[str]:
    return [n.op.value for n in g.nodes]


X4 = ("x", [1, 4, 6, 6])


# ---------------------------------------------------------------- opset-dependent forms
@pytest.mark.parametrize("opset", [6, 11, 13, 21])
def test_clip_attr_or_inputs_fuses_into_conv(tmp_path, opset):
    w = _init("w", RNG.standard_normal((8, 4, 3, 3)) * 0.5)
    if opset < 11:
        clip = helper.make_node("Clip", ["c"], ["y"], min=0.0, max=6.0)
        inits = [w]
    else:
        clip = helper.make_node("Clip", ["c", "lo", "hi"], ["y"])
        inits = [w, _init("lo", np.array(0.0)), _init("hi", np.array(6.0))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), clip]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [1, 8, 6, 6])], inits, opset))
    assert _ops(g) == ["CONV2D"] and g.nodes[0].attrs.act.value == "RELU6"


def test_tf_style_relu6_min_max_fuses_into_conv(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Neg", ["c"], ["n"]),
             helper.make_node("Max", ["n", "zero"], ["m"]),
             helper.make_node("Min", ["m", "six"], ["y"])]
    inits = [_init("w", RNG.standard_normal((8, 4, 3, 3))), _init("zero", np.array(0.0)),
             _init("six", np.array(6.0))]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [1, 8, 6, 6])], inits))
    assert _ops(g) == ["CONV2D"] and g.nodes[0].attrs.act.value == "RELU6"   # Neg: weights


@pytest.mark.parametrize("opset,keep", [(13, 1), (13, 0), (18, 1), (18, 0)])
def test_reduce_mean_axes_attr_or_input(tmp_path, opset, keep):
    out = [1, 4, 1, 1] if keep else [1, 4]
    if opset < 18:
        nodes = [helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=keep)]
        inits = []
    else:
        nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=keep)]
        inits = [_init("axes", np.array([-2, -1], np.int64))]
    g = _check(_save(tmp_path, nodes, [X4], [("y", out)], inits, opset))
    assert _ops(g) == ["MEAN"] and g.nodes[0].attrs.axes == (1, 2)


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 2), (11, 3), (13, 1), (13, -1)])
def test_softmax_legacy_and_new_semantics(tmp_path, opset, axis):
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=axis)]
    _check(_save(tmp_path, nodes, [X4], [("y", [1, 4, 6, 6])], opset=opset))


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze_axes_attr_or_input(tmp_path, opset):
    if opset < 13:
        nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                 helper.make_node("Squeeze", ["p"], ["s"], axes=[2, 3]),
                 helper.make_node("Unsqueeze", ["s"], ["y"], axes=[1])]
        inits = []
    else:
        nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                 helper.make_node("Squeeze", ["p", "ax"], ["s"]),
                 helper.make_node("Unsqueeze", ["s", "ax1"], ["y"])]
        inits = [_init("ax", np.array([2, 3], np.int64)), _init("ax1", np.array([1], np.int64))]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [1, 1, 4])], inits, opset))
    assert "TRANSPOSE" not in _ops(g)


@pytest.mark.parametrize("opset", [2, 13])
def test_pad_attr_or_input_fuses_into_conv(tmp_path, opset):
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    w = _init("w", RNG.standard_normal((3, 4, 3, 3)))
    if opset < 11:
        pad = helper.make_node("Pad", ["x"], ["p"], pads=pads, mode="constant")
        inits = [w]
    else:
        pad = helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant")
        inits = [w, _init("pads", np.array(pads, np.int64))]
    nodes = [pad, helper.make_node("Conv", ["p", "w"], ["y"])]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [1, 3, 7, 7])], inits, opset))
    assert _ops(g) == ["CONV2D"] and g.nodes[0].attrs.pad == (1, 2, 2, 1)


def test_shape_arithmetic_folds_to_constants(tmp_path):
    """torch.flatten-style Reshape whose shape is computed from Shape/Gather/Concat/Cast/Slice."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Shape", ["r"], ["shp"]),
             helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Slice", ["shp", "one", "two"], ["c"]),
             helper.make_node("Cast", ["c"], ["cf"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["cf"], ["ci"], to=TensorProto.INT64),
             helper.make_node("Concat", ["n1", "ci", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["r", "target"], ["y"])]
    inits = [_init("zero", np.array(0, np.int64)), _init("ax0", np.array([0], np.int64)),
             _init("one", np.array([1], np.int64)), _init("two", np.array([2], np.int64)),
             _init("minus1", np.array([-1], np.int64))]
    g = _check(_save(tmp_path, nodes, [("x", ["N", 4, 6, 6])], [("y", ["N", 4, 36])], inits),
               batch=2)
    assert sorted(_ops(g)) == ["RELU", "RESHAPE", "TRANSPOSE"]   # a real NCHW-order reshape


@pytest.mark.parametrize("spec,out", [([0, -1], [2, 144]), ([0, 0, -1], [2, 4, 36]),
                                      ([-1, 36], [8, 36]), ([0, 2, 2, 6, 6], [2, 2, 2, 6, 6])])
def test_reshape_zero_and_minus_one(tmp_path, spec, out):
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["y"])]
    p = _save(tmp_path, nodes, [("x", ["N", 4, 6, 6])], [("y", None)],
              [_init("shape", np.array(spec, np.int64))])
    g = _check(p, batch=2)
    assert g.tensors["y"].shape in (tuple(out), tuple(out[i] for i in (0, 2, 3, 1))
                                    if len(out) == 4 else tuple(out))


def test_channel_shuffle_stays_nhwc_with_one_transpose(tmp_path):
    """ShuffleNet: Reshape(N,g,C/g,H,W) -> Transpose(0,2,1,3,4) -> Reshape(N,C,H,W)."""
    w = _init("w", RNG.standard_normal((6, 6, 1, 1)))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Reshape", ["c", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t5", "s4"], ["r4"]),
             helper.make_node("Conv", ["r4", "w"], ["y"])]
    inits = [w, _init("s5", np.array([1, 2, 3, 5, 5], np.int64)),
             _init("s4", np.array([1, 6, 5, 5], np.int64))]
    g = _check(_save(tmp_path, nodes, [("x", [1, 6, 5, 5])], [("y", [1, 6, 5, 5])], inits))
    assert sorted(_ops(g)) == ["CONV2D", "CONV2D", "RESHAPE", "RESHAPE", "TRANSPOSE"]
    t = next(n for n in g.nodes if n.op.value == "TRANSPOSE")
    assert t.attrs.perm == (0, 1, 2, 4, 3)      # swaps (g, C/g) inside the channel dim only


@pytest.mark.parametrize("ceil,include,auto", [(0, 0, "NOTSET"), (1, 0, "NOTSET"),
                                               (0, 1, "NOTSET"), (0, 0, "SAME_UPPER")])
def test_pools(tmp_path, ceil, include, auto):
    kw = {"pads": [1, 1, 0, 0]} if auto == "NOTSET" else {"auto_pad": auto}
    x = ("x", [1, 3, 7, 7])
    nodes = [helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2],
                              ceil_mode=ceil, count_include_pad=include, **kw),
             helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 3], strides=[2, 2],
                              ceil_mode=ceil, **kw)]
    _check(_save(tmp_path, nodes, [x], [("a", None), ("m", None)], opset=19))


def test_avgpool_ceil_with_included_pads_is_rejected_clearly(tmp_path):
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)]
    p = _save(tmp_path, nodes, [("x", [1, 3, 8, 8])], [("y", None)], opset=19)
    with pytest.raises(UnsupportedOpError, match="ceil_mode=1 with count_include_pad=1"):
        read_onnx(p)


@pytest.mark.parametrize("trans_b,alpha,beta,cshape", [(1, 1.0, 1.0, [5]), (0, 0.5, 2.0, [1, 5]),
                                                       (1, 1.0, 0.5, [3, 5])])
def test_gemm(tmp_path, trans_b, alpha, beta, cshape):
    b = RNG.standard_normal((5, 8) if trans_b else (8, 5))
    nodes = [helper.make_node("Gemm", ["x", "b", "c"], ["y"], transB=trans_b, alpha=alpha,
                              beta=beta)]
    inits = [_init("b", b), _init("c", RNG.standard_normal(cshape))]
    g = _check(_save(tmp_path, nodes, [("x", [3, 8])], [("y", [3, 5])], inits), batch=3)
    assert _ops(g)[0] == "FC"


def test_matmul_add_becomes_fc_keeping_dims(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    inits = [_init("w", RNG.standard_normal((6, 4))), _init("b", RNG.standard_normal(4))]
    g = _check(_save(tmp_path, nodes, [("x", [2, 5, 6])], [("y", [2, 5, 4])], inits))
    assert _ops(g) == ["FC"] and g.nodes[0].attrs.keep_num_dims
    assert g.nodes[0].attrs.act.value == "RELU"


def test_elementwise_zoo(tmp_path):
    """Unary activations, broadcast binaries with per-channel constants, Sum, Concat, Transpose,
    Flatten(axis=2), standalone BatchNormalization."""
    c = _init("c", RNG.uniform(0.5, 1.5, (4, 1, 1)))
    bn = [_init(n, RNG.uniform(0.5, 1.5, 4)) for n in ("s", "bb", "mm", "vv")]
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "bb", "mm", "vv"], ["bn"]),
             helper.make_node("HardSigmoid", ["bn"], ["hs"], alpha=0.3, beta=0.4),
             helper.make_node("HardSwish", ["x"], ["hw"]),
             helper.make_node("LeakyRelu", ["x"], ["lr"], alpha=0.2),
             helper.make_node("Sigmoid", ["x"], ["sg"]),
             helper.make_node("Tanh", ["x"], ["th"]),
             helper.make_node("Div", ["hs", "c"], ["dv"]),
             helper.make_node("Sub", ["hw", "c"], ["sb"]),
             helper.make_node("Mul", ["lr", "c"], ["ml"]),
             helper.make_node("Sum", ["dv", "sb", "ml"], ["sm"]),
             helper.make_node("Concat", ["sm", "sg", "th"], ["cat"], axis=1),
             helper.make_node("Transpose", ["cat"], ["tr"], perm=[0, 2, 3, 1]),
             helper.make_node("Flatten", ["tr"], ["y"], axis=2)]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [6, 72])], [c] + bn, opset=14))
    assert "BATCHNORM" not in _ops(g) and "DIV" not in _ops(g)


@pytest.mark.parametrize("slope", [[0.25], [0.1, -0.2, 0.3, 0.5]])
def test_prelu_and_global_max_pool(tmp_path, slope):
    s = np.array(slope, np.float32).reshape(-1, 1, 1) if len(slope) > 1 else np.array(slope)
    nodes = [helper.make_node("PRelu", ["x", "s"], ["p"]),
             helper.make_node("GlobalMaxPool", ["p"], ["y"])]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [1, 4, 1, 1])], [_init("s", s)]))
    assert ("LEAKY_RELU" in _ops(g)) == (len(slope) == 1) and "MAXPOOL2D" in _ops(g)


def test_depthwise_multiplier_and_grouped_conv(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "dw"], ["d"], group=4, pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("Conv", ["d", "gw", "gb"], ["y"], group=2)]
    inits = [_init("dw", RNG.standard_normal((8, 1, 3, 3))),
             _init("gw", RNG.standard_normal((6, 4, 1, 1))), _init("gb", RNG.standard_normal(6))]
    g = _check(_save(tmp_path, nodes, [X4], [("y", [1, 6, 3, 3])], inits))
    assert _ops(g) == ["DWCONV2D", "CONV2D"] and g.nodes[0].attrs.depth_multiplier == 2
    assert any("group=2" in n for n in g.meta["onnx_notes"])


def test_too_many_groups_is_unsupported(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], group=16, name="gconv")]
    p = _save(tmp_path, nodes, [("x", [1, 32, 4, 4])], [("y", None)],
              [_init("w", RNG.standard_normal((32, 2, 1, 1)))])
    with pytest.raises(UnsupportedOpError, match="'gconv' \\(Conv\\): grouped convolution with "
                                                 "group=16"):
        read_onnx(p)


def test_dynamic_batch_and_layout_meta(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    p = _save(tmp_path, nodes, [("x", ["batch", 3, 5, 7])], [("y", ["batch", 3, 5, 7])])
    g = _check(p, batch=4)
    assert g.tensors["x"].shape == (4, 5, 7, 3) and g.tensors["y"].shape == (4, 5, 7, 3)
    assert g.meta["onnx_layout"] == {"x": [0, 2, 3, 1], "y": [0, 2, 3, 1]}


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_two_outputs_sharing_one_ir_tensor(tmp_path, order):
    """b = Transpose(a) to NHWC is the same bytes as a (held NHWC): both outputs survive."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Transpose", ["a"], ["b"], perm=[0, 2, 3, 1])]
    shapes = {"a": [1, 4, 6, 6], "b": [1, 6, 6, 4]}
    g = _check(_save(tmp_path, nodes, [X4], [(o, shapes[o]) for o in order]))
    assert g.outputs == list(order)
    assert g.meta["onnx_layout"]["a"] == [0, 2, 3, 1] and g.meta["onnx_layout"]["b"] == [0, 1, 2, 3]
    assert "TRANSPOSE" not in _ops(g)


def test_output_aliasing_input_and_identity(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Dropout", ["x"],
                                                                          ["z"])]
    g = _check(_save(tmp_path, nodes, [("x", [2, 3])], [("y", [2, 3]), ("z", [2, 3])]))
    assert g.outputs == ["y", "z"]


# ---------------------------------------------------------------- errors
def test_unsupported_ops_reported_once_naming_each(tmp_path):
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="erf_1"),
             helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Cos", ["x"], ["c"], name="cos_2"),
             helper.make_node("Pad", ["x", "pads"], ["d"], mode="reflect", name="pad_3"),
             helper.make_node("Sum", ["b", "c", "d"], ["y"])]
    p = _save(tmp_path, nodes, [("x", [1, 4])], [("y", [1, 4])],
              [_init("pads", np.zeros(4, np.int64))])
    with pytest.raises(UnsupportedOpError) as e:
        read_onnx(p)
    msg = str(e.value)
    assert [(i, n, op) for i, n, op, _ in e.value.problems] == [
        (0, "erf_1", "Erf"), (2, "cos_2", "Cos"), (3, "pad_3", "Pad")]
    assert "'erf_1' (Erf)" in msg and "'cos_2' (Cos)" in msg and "mode 'reflect'" in msg
    assert "Conv" in msg   # lists what is supported


def test_corrupt_and_truncated_files(tmp_path):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"\x08\x07garbage\xff\xff\xff\xff" * 10)
    with pytest.raises(ModelError, match="junk.onnx"):
        read_onnx(bad)
    good = (ROOT / "tests" / "models" / "resnet_tiny.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[:len(good) // 2])
    with pytest.raises(ModelError, match="cut.onnx"):
        read_onnx(cut)
    with pytest.raises(ModelError, match="no such file"):
        read_onnx(tmp_path / "missing.onnx")


def test_external_data_loads_and_missing_file_is_named(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    w = RNG.standard_normal((64, 32)).astype(np.float32)
    g = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("x", F, [1, 64])],
                          [helper.make_tensor_value_info("y", F, [1, 32])], [_init("w", w)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp_path / "ext.onnx"
    onnx.save(m, str(p), save_as_external_data=True, location="ext.bin", size_threshold=0)
    assert (tmp_path / "ext.bin").is_file()
    got = read_onnx(p)
    fc = next(n for n in got.nodes if n.op.value == "FC")
    assert np.array_equal(got.tensors[fc.inputs[1]].data, w.T)
    (tmp_path / "ext.bin").unlink()
    with pytest.raises(ModelError, match="ext.bin"):
        read_onnx(p)


def test_cyclic_graph_is_a_model_error(tmp_path):
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="first"),
             helper.make_node("Add", ["a", "x"], ["b"], name="second")]
    p = _save(tmp_path, nodes, [("x", [1, 4])], [("b", [1, 4])])
    with pytest.raises(ModelError, match="cycle") as e:
        read_onnx(p)
    assert "first" in str(e.value) and "second" in str(e.value)


def test_unsorted_nodes_import_and_undefined_input_is_named(tmp_path):
    nodes = [helper.make_node("Relu", ["a"], ["y"]), helper.make_node("Sigmoid", ["x"], ["a"])]
    g = read_onnx(_save(tmp_path, nodes, [("x", [1, 4])], [("y", [1, 4])], name="unsorted"))
    assert _ops(g) == ["LOGISTIC", "RELU"]
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"])]
    with pytest.raises(ModelError, match="ghost"):
        read_onnx(_save(tmp_path, nodes, [("x", [1, 4])], [("y", [1, 4])], name="ghost"))


def test_dynamic_spatial_dim_is_a_model_error(tmp_path):
    p = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 3, "h", 8])],
              [("y", None)])
    with pytest.raises(ModelError, match="dynamic dim 2"):
        read_onnx(p)


def test_importer_table_covers_the_brief():
    for op in ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip",
               "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "BatchNormalization",
               "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape",
               "Transpose", "Squeeze", "Unsqueeze", "Concat", "Pad", "Softmax", "Dropout",
               "Identity", "Sum"):
        assert op in IMPORTERS, op


# ---------------------------------------------------------------- the CLI on .onnx
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, check=False)


def test_cli_inspect_and_run_onnx(tmp_path):
    model = ROOT / "tests" / "models" / "mobilenet_tiny.onnx"
    r = _cli("inspect", str(model), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    names = {p["name"]: p for p in rep["passes"]}
    assert names["fold_batchnorm"]["ops_before"]["BATCHNORM"] == 7
    assert "BATCHNORM" not in rep["op_counts"] and "CLIP" not in rep["op_counts"]
    x = RNG.standard_normal((1, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    r = _cli("run", str(model), "-i", str(tmp_path / "in.npy"), "--backend", "reference",
             "-o", str(tmp_path / "out.npy"))
    assert r.returncode == 0, r.stderr
    require("onnxruntime")
    import onnxruntime as ort
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.transpose(0, 3, 1, 2)})[0]
    out = np.load(tmp_path / "out.npy")
    assert np.abs(out - ref).max() < 1e-4 * np.abs(ref).max()


def test_cli_bad_onnx_is_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = _cli("inspect", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "bad.onnx" in r.stderr
