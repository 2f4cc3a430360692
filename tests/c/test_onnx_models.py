"""Float ONNX models through the whole compile (import, calibrate, quantize, plan, emit):
the generated C gives the bytes of the profile's runtime on the written model.tflite."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeforge.codegen.host import CModel
from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.runtime import peers
from tests.conftest import require

MODELS = Path(__file__).resolve().parents[1] / "models"
N = 30


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
@pytest.mark.parametrize("model", ["mobilenet_tiny", "tf2onnx_nhwc"])
def test_quantized_onnx_model_c_equals_runtime(model, numerics, tmp_path):
    require("gcc")
    src = MODELS / f"{model}.onnx"
    g = load(src)
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(4)
    calib = rng.normal(size=(16, *shape)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    res = compile_model(src, tmp_path / "out", calib=tmp_path / "calib.npy", numerics=numerics)
    assert res.manifest.inputs[0].dtype == "int8"
    m = CModel(res.dir)
    xs = rng.integers(-128, 128, size=(N, *m.input_shapes[0])).astype(np.int8)
    [ys] = m.run_batch([xs])
    if numerics == "tflm":
        peer = peers.TflmRunner(res.dir / "model.tflite")
    else:
        peer = peers.LitertRunner(res.dir / "model.tflite", reference_kernels=True)
    bad = [k for k in range(N) if not np.array_equal(peer.run([xs[k]])[0], ys[k])]
    assert not bad, f"{model} [{numerics}]: samples {bad} differ"
    assert len({y.tobytes() for y in ys}) > 1


def test_compile_with_channel_pruning_and_distill(tmp_path):
    """--prune-channels/--distill run before quantization (edgeforge.compress.prune.compress): fewer
    MACs, the compression report lands in report.json, and the C still equals TFLM."""
    require("gcc")
    src = MODELS / "mobilenet_tiny.onnx"
    g = load(src)
    rng = np.random.default_rng(6)
    np.save(tmp_path / "calib.npy", rng.normal(size=(16, *g.tensors[g.inputs[0]].shape))
            .astype(np.float32))
    full = compile_model(src, tmp_path / "full", calib=tmp_path / "calib.npy")
    res = compile_model(src, tmp_path / "pruned", calib=tmp_path / "calib.npy",
                        prune_channels=0.3, distill=True)
    assert res.report["totals"]["macs"] < 0.8 * full.report["totals"]["macs"]
    assert "compress" in res.report and res.report["compress"]["after"]
    m = CModel(res.dir)
    xs = rng.integers(-128, 128, size=(10, *m.input_shapes[0])).astype(np.int8)
    [ys] = m.run_batch([xs])
    peer = peers.TflmRunner(res.dir / "model.tflite")
    assert all(np.array_equal(peer.run([x])[0], y) for x, y in zip(xs, ys))
