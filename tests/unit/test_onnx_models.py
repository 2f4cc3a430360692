"""Whole ONNX models: the float IR (after every pass) agrees with onnxruntime within 1e-4
relative, BatchNorm is folded, activations fused, and no transposes remain where none should.

Models: our committed tests/models/*.onnx, the nine light_* models shipped in the onnx wheel
(weights are ConstantOfShape fills there, which makes every output the same; we swap in
seeded random weights, saved as EXTERNAL data, so the check means something and the external
data path is exercised), and the Conv/Pool/BatchNorm cases of its pytorch-converted set.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require

MODELS = Path(__file__).resolve().parents[1] / "models"
RTOL = 1e-4


def _onnx_data() -> Path:
    import onnx
    return Path(onnx.__file__).parent / "backend" / "test" / "data"


def _run_both(path: Path, batch: int = 1, seed: int = 0, feeds: dict | None = None):
    """(graph, ours, theirs): IR outputs back in ONNX layout, and onnxruntime's (or None)."""
    import onnxruntime as ort

    from edgeforge.frontends.onnx import from_ir_layout, read_onnx, to_ir_layout
    from edgeforge.runtime.reference import run
    g = read_onnx(path, batch=batch)
    theirs = None
    if feeds is None:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(seed)
        feeds = {i.name: rng.standard_normal([d if isinstance(d, int) else batch
                                              for d in i.shape]).astype(np.float32)
                 for i in sess.get_inputs()}
        theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    out = run(g, {k: to_ir_layout(g, k, v) for k, v in feeds.items()})
    ours = {k: from_ir_layout(g, k, v) for k, v in out.items()}
    return g, ours, theirs


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _ops(g) -> Counter:
    return Counter(n.op.value for n in g.nodes)


# ---------------------------------------------------------------- our committed models
@pytest.mark.parametrize("name,batch", [("mobilenet_tiny", 1), ("mobilenet_tiny", 3),
                                        ("resnet_tiny", 1), ("resnet_tiny", 2),
                                        ("tf2onnx_nhwc", 1), ("tf2onnx_nhwc", 2)])
def test_committed_models_match_onnxruntime(name, batch):
    require("onnxruntime")
    g, ours, theirs = _run_both(MODELS / f"{name}.onnx", batch=batch)
    for k, ref in theirs.items():
        assert _rel(ours[k], ref) < RTOL, k
    assert g.tensors[g.inputs[0]].shape[0] == batch


@pytest.mark.parametrize("name", ["mobilenet_tiny", "resnet_tiny", "tf2onnx_nhwc"])
def test_committed_models_are_fully_fused(name):
    from edgeforge.frontends.onnx import read_onnx
    g = read_onnx(MODELS / f"{name}.onnx")
    ops = _ops(g)
    for gone in ("BATCHNORM", "RELU", "RELU6", "CLIP", "TRANSPOSE", "PAD", "MATMUL"):
        assert gone not in ops, (gone, ops)
    raw = read_onnx(MODELS / f"{name}.onnx", passes=False)
    assert sum(_ops(raw).values()) > sum(ops.values())
    # NHWC at the boundary: the 3-channel image input has channels last
    assert g.tensors[g.inputs[0]].shape[-1] == 3


def test_pass_log_shows_batchnorm_folded_and_activations_fused():
    from edgeforge.frontends.onnx import read_onnx
    g = read_onnx(MODELS / "mobilenet_tiny.onnx")
    log = {p["name"]: p for p in g.meta["passes"]}
    bn = log["fold_batchnorm"]
    assert bn["changes"] == 7
    assert bn["ops_before"]["BATCHNORM"] == 7 and "BATCHNORM" not in bn["ops_after"]
    act = log["fuse_activation"]
    assert act["changes"] == 5 and act["ops_before"]["RELU6"] == 5
    assert [n.attrs.act.value for n in g.nodes if n.op.value == "CONV2D"].count("RELU6") == 3
    assert log["fuse_pad"]["changes"] == 1


def test_flatten_of_nchw_tensor_is_absorbed_into_fc_weights():
    from edgeforge.frontends.onnx import read_onnx
    raw = read_onnx(MODELS / "resnet_tiny.onnx", passes=False)
    assert _ops(raw)["TRANSPOSE"] == 1          # Flatten of a 2x2x24 NCHW tensor
    g = read_onnx(MODELS / "resnet_tiny.onnx")
    log = {p["name"]: p["changes"] for p in g.meta["passes"]}
    assert log["absorb_transpose_into_fc"] == 1 and "TRANSPOSE" not in _ops(g)


def test_tf2onnx_transposes_cancel_at_import():
    from edgeforge.frontends.onnx import read_onnx
    g = read_onnx(MODELS / "tf2onnx_nhwc.onnx", passes=False)
    assert "TRANSPOSE" not in _ops(g)            # 6 ONNX Transposes became layout changes
    assert g.meta["onnx_layout"]["input"] == [0, 1, 2, 3]   # its input was NHWC already
    assert g.tensors["input"].shape == (1, 16, 16, 3)


def test_nchw_input_layout_is_recorded():
    from edgeforge.frontends.onnx import from_ir_layout, read_onnx, to_ir_layout
    g = read_onnx(MODELS / "resnet_tiny.onnx")
    assert g.meta["onnx_layout"]["input"] == [0, 2, 3, 1]
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert to_ir_layout(g, "input", x).shape == (2, 4, 5, 3)
    assert np.array_equal(from_ir_layout(g, "input", to_ir_layout(g, "input", x)), x)


# ---------------------------------------------------------------- light models
LIGHT = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
         "shufflenet", "squeezenet", "vgg19", "zfnet512"]


def _randomized_light(name: str, tmp: Path) -> Path:
    """light_<name> with ConstantOfShape weights replaced by seeded random initializers, stored
    as EXTERNAL data (one raw file next to the model, written directly: fast for VGG's 500 MB)."""
    import onnx
    from onnx import TensorProto, numpy_helper
    src = _onnx_data() / "light" / f"light_{name}.onnx"
    if not src.is_file():
        require(str(src))
    m = onnx.load(str(src))
    rng = np.random.default_rng(sum(map(ord, name)))
    shapes = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    keep, new = [], []
    weights = f"light_{name}.weights"
    with open(tmp / weights, "wb") as f:
        for n in m.graph.node:
            if n.op_type != "ConstantOfShape" or n.input[0] not in shapes:
                keep.append(n)
                continue
            shape = tuple(int(d) for d in shapes[n.input[0]])
            if len(shape) >= 2:
                w = rng.standard_normal(shape, dtype=np.float32)
                w *= np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
            else:   # BN scale/var, biases: positive, near 1
                w = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            t = TensorProto(name=n.output[0], dims=shape, data_type=TensorProto.FLOAT,
                            data_location=TensorProto.EXTERNAL)
            for k, v in (("location", weights), ("offset", str(f.tell())),
                         ("length", str(w.nbytes))):
                t.external_data.add(key=k, value=v)
            f.write(w.tobytes())
            new.append(t)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    m.graph.initializer.extend(new)
    last = keep[-1]
    if last.op_type == "Softmax":   # random nets saturate it: compare the logits as well
        m.graph.output.append(onnx.helper.make_tensor_value_info(last.input[0], 1, None))
    out = tmp / f"light_{name}.onnx"
    onnx.save(m, str(out))
    return out


@pytest.mark.parametrize("name", LIGHT)
def test_light_models_match_onnxruntime(name, tmp_path):
    require("onnxruntime")
    path = _randomized_light(name, tmp_path)
    assert (tmp_path / f"light_{name}.weights").stat().st_size > 100_000
    g, ours, theirs = _run_both(path)
    for k, ref in theirs.items():
        assert ref.std() > 0           # random weights: outputs differ per class
        assert _rel(ours[k], ref) < RTOL, (name, k)
    ops = _ops(g)
    assert "BATCHNORM" not in ops and "RELU" not in ops or name == "shufflenet", ops
    if name in ("bvlc_alexnet", "vgg19", "zfnet512", "resnet50", "inception_v1"):
        assert "TRANSPOSE" not in ops, ops
    if name == "shufflenet":   # one per channel shuffle (16), none around the convs
        assert ops["TRANSPOSE"] == 16, ops


# ---------------------------------------------------------------- pytorch-converted cases
def _converted_cases() -> list[str]:
    d = _onnx_data() / "pytorch-converted"
    keep = ("test_Conv1d", "test_Conv2d", "test_AvgPool1d", "test_AvgPool2d", "test_MaxPool1d",
            "test_MaxPool2d", "test_BatchNorm1d", "test_PReLU",
            "test_BatchNorm2d", "test_ConstantPad2d", "test_ZeroPad2d", "test_Linear")
    return sorted(p.name for p in d.glob("test_*") if p.name.startswith(keep)) if d.is_dir() \
        else []


# cases whose op cannot be expressed in the IR; each must fail with ONE clear error
CONVERTED_UNSUPPORTED = {
    "test_MaxPool1d_stride_padding_dilation": "dilations",   # dilated max pooling
    "test_MaxPool2d_stride_padding_dilation": "dilations",
}


@pytest.mark.parametrize("case", _converted_cases())
def test_pytorch_converted_cases(case):
    """Against the outputs stored with each case (PyTorch's); onnxruntime cannot load some of
    these old-opset files (AveragePool-1, BatchNormalization-6, Gemm-6)."""
    from onnx import numpy_helper

    from edgeforge.errors import UnsupportedOpError
    d = _onnx_data() / "pytorch-converted" / case
    if case in CONVERTED_UNSUPPORTED:
        from edgeforge.frontends.onnx import read_onnx
        with pytest.raises(UnsupportedOpError, match=CONVERTED_UNSUPPORTED[case]):
            read_onnx(d / "model.onnx")
        return
    import onnx
    m = onnx.load(str(d / "model.onnx"))
    inits = {t.name for t in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]
    feeds, expected = {}, []
    for k, nm in enumerate(names):
        t = onnx.TensorProto()
        t.ParseFromString((d / "test_data_set_0" / f"input_{k}.pb").read_bytes())
        feeds[nm] = numpy_helper.to_array(t)
    for k in range(len(m.graph.output)):
        t = onnx.TensorProto()
        t.ParseFromString((d / "test_data_set_0" / f"output_{k}.pb").read_bytes())
        expected.append(numpy_helper.to_array(t))
    batch = next(iter(feeds.values())).shape[0]
    _, ours, _ = _run_both(d / "model.onnx", batch=batch, feeds=feeds)
    for o, ref in zip(m.graph.output, expected):
        assert _rel(ours[o.name], ref) < RTOL, case


@pytest.mark.parametrize("name", ["mobilenet_tiny", "resnet_tiny", "tf2onnx_nhwc"])
def test_inspect_report_counts_every_fold_and_fusion(name):
    """`edgeforge inspect --json` (edgeforge.report.inspect) carries the pass log: every ONNX
    BatchNormalization folded, every Relu/Clip fused, op counts before and after."""
    import onnx

    from edgeforge.report import inspect
    m = onnx.load(str(MODELS / f"{name}.onnx"))
    n_bn = sum(n.op_type == "BatchNormalization" for n in m.graph.node)
    n_act = sum(n.op_type in ("Relu", "Clip") for n in m.graph.node)
    rep = inspect(MODELS / f"{name}.onnx")
    log = {p["name"]: p for p in rep["passes"]}
    assert log["fold_batchnorm"]["changes"] == n_bn
    assert log["fold_batchnorm"]["ops_before"].get("BATCHNORM", 0) == n_bn
    assert log["fuse_activation"]["changes"] == n_act
    assert not {"BATCHNORM", "RELU", "RELU6", "CLIP", "TRANSPOSE"} & set(rep["op_counts"])
    first, last = rep["passes"][0]["ops_before"], rep["passes"][-1]["ops_after"]
    assert sum(last.values()) < sum(first.values()) and last == rep["op_counts"]


# ---------------------------------------------------------------- pytorch-operator cases
# ops with no IR form: each must fail with ONE UnsupportedOpError naming it (and nothing else)
OPERATOR_UNSUPPORTED = {
    "test_operator_pad": "reflect",              # only constant padding
    "test_operator_pow": "Pow",
    "test_operator_repeat": "Tile",
    "test_operator_repeat_dim_overflow": "Tile",
    "test_operator_selu": "Selu",
    "test_operator_symbolic_override": "InstanceNormalization",
}


def _operator_cases() -> list[str]:
    d = _onnx_data() / "pytorch-operator"
    return sorted(p.name for p in d.glob("test_operator_*")) if d.is_dir() else []


def _stored_case(d: Path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(d / "model.onnx"))
    inits = {t.name for t in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]

    def tensor(f: str) -> np.ndarray:
        t = onnx.TensorProto()
        t.ParseFromString((d / "test_data_set_0" / f).read_bytes())
        return numpy_helper.to_array(t)
    feeds = {nm: tensor(f"input_{k}.pb") for k, nm in enumerate(names)}
    return m, feeds, [tensor(f"output_{k}.pb") for k in range(len(m.graph.output))]


@pytest.mark.parametrize("case", _operator_cases())
def test_pytorch_operator_cases(case):
    from edgeforge.errors import ModelError, UnsupportedOpError
    from edgeforge.frontends.onnx import read_onnx
    d = _onnx_data() / "pytorch-operator" / case
    m, feeds, expected = _stored_case(d)
    if case in OPERATOR_UNSUPPORTED:
        with pytest.raises(UnsupportedOpError, match=OPERATOR_UNSUPPORTED[case]) as e:
            read_onnx(d / "model.onnx")
        assert len(e.value.problems) == 1
        return
    if any(v.dtype != np.float32 for v in feeds.values()):   # float64 cases
        with pytest.raises(ModelError, match="only float32 inputs"):
            read_onnx(d / "model.onnx")
        return
    batch = next(iter(feeds.values())).shape[0]
    _, ours, _ = _run_both(d / "model.onnx", batch=batch, feeds=feeds)
    for o, ref in zip(m.graph.output, expected):
        got = ours[o.name]
        assert np.array_equal(np.isnan(got), np.isnan(ref)), case   # Sqrt of negatives: NaN
        assert _rel(np.nan_to_num(got), np.nan_to_num(ref)) < RTOL, case


# ---------------------------------------------------------------- layer by layer
@pytest.mark.parametrize("name", ["mobilenet_tiny", "resnet_tiny", "tf2onnx_nhwc",
                                  "light_squeezenet", "light_inception_v1"])
def test_every_surviving_intermediate_matches_onnxruntime(name, tmp_path):
    """graph.meta["onnx_values"] maps ONNX values to IR tensors (+perm): each one that survived
    the passes holds exactly onnxruntime's value for it."""
    require("onnxruntime")
    import onnx
    import onnxruntime as ort

    from edgeforge.frontends.onnx import read_onnx, to_ir_layout
    from edgeforge.runtime.reference import run
    path = (_randomized_light(name[6:], tmp_path) if name.startswith("light_")
            else MODELS / f"{name}.onnx")
    g = read_onnx(path)
    m = onnx.load(str(path))
    rng = np.random.default_rng(1)
    feeds = {i.name: rng.standard_normal([d.dim_value or 1 for d in i.type.tensor_type.shape.dim])
             .astype(np.float32) for i in m.graph.input if i.name in g.inputs}
    values = {k: v for k, v in g.meta["onnx_values"].items() if k not in feeds}
    assert len(values) >= len(g.outputs) + 2
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, None)
                          for k in values if k not in have)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    ours = run(g, {k: to_ir_layout(g, k, v) for k, v in feeds.items()}, intermediate=True)
    for k, (ir, perm) in values.items():
        y = ours[ir].transpose(np.argsort(perm))
        assert _rel(y, theirs[k]) < RTOL, (k, ir)
