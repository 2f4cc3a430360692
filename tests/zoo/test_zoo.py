"""The model zoo (tests/zoo/models, made by tests/zoo/export_zoo.py) through every stage:

  * import: the float IR's outputs agree with onnxruntime (relative 1e-4);
  * compile with the committed calibration set, both numerics profiles: the int8 output's
    SQNR against float is reported (and must be sane), the written model.tflite run by
    LiteRT's reference kernels gives our reference's bytes (--numerics litert) and TFLM
    gives them (--numerics tflm);
  * the generated C gives the reference's bytes (slow: builds with gcc).

A model that does not compile yet is in EXPECTED_FAIL with the error it gives; the tests
assert it still fails with that error, so when an op lands the entry must go.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require

ZOO = Path(__file__).resolve().parent / "models"
MODELS = [row["model"] for row in json.loads((ZOO / "manifest.json").read_text())]
RTOL = 1e-4
N_SAMPLES = 3          # int8 inputs per peer comparison
MIN_SQNR_DB = 20.0     # random weights, random calibration data: far above this when right
# int8 ops TFLM has no kernel for (tests/unit/test_reference_opcases.py TFLM_LACKS_INT8): a
# model using one is compared with LiteRT only (and its C with the reference)
TFLM_LACKS = {"GELU", "EXP", "SQRT"}
# compiling these takes minutes on 2 cores (a GRU unrolled over 49 time steps into ~1000
# ops; lstm_kws is one fused LSTM now, 8 s): their compile tests run in CI only (slow);
# import is checked everywhere
HEAVY = {"gru_kws"}
FAST_OR_SLOW = [pytest.param(m, marks=pytest.mark.slow) if m in HEAVY else m for m in MODELS]

# model -> (stage it fails at, a piece of the one-line error it gives). Shrinks as ops land.
EXPECTED_FAIL: dict[str, tuple[str, str]] = {
}


def _calib(name: str) -> Path:
    return ZOO / f"{name}_calib.npz"


def _expect_failure(name: str, stage: str, fn) -> bool:
    """Run fn; for an EXPECTED_FAIL model at `stage`, assert it raises its one-line error
    (an EdgeforgeError naming the op) and return True."""
    from edgeforge.errors import EdgeforgeError
    if EXPECTED_FAIL.get(name, ("", ""))[0] != stage:
        return False
    with pytest.raises(EdgeforgeError) as err:
        fn()
    assert EXPECTED_FAIL[name][1] in str(err.value), str(err.value)
    return True


@pytest.mark.parametrize("name", MODELS)
def test_zoo_import_matches_onnxruntime(name):
    require("onnxruntime")
    import onnxruntime as ort

    from edgeforge.frontends.onnx import from_ir_layout, read_onnx, to_ir_layout
    from edgeforge.runtime.reference import run
    path = ZOO / f"{name}.onnx"
    if _expect_failure(name, "import", lambda: read_onnx(path)):
        return
    g = read_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.load(_calib(name))["input"][:2].astype(np.float32)
    for sample in x:
        feeds = {"input": sample[None]}
        [theirs] = sess.run(None, feeds)
        ours = run(g, {k: to_ir_layout(g, k, v) for k, v in feeds.items()})
        out = from_ir_layout(g, g.outputs[0], ours[g.outputs[0]])
        assert out.shape == theirs.shape
        err = float(np.abs(out - theirs).max() / max(np.abs(theirs).max(), 1e-12))
        assert err < RTOL, f"{name}: relative error {err:.2e}"


@cache
def _compiled(name: str, numerics: str, root: str):
    from edgeforge.compiler import compile_model
    return compile_model(ZOO / f"{name}.onnx", Path(root) / f"{name}_{numerics}",
                         calib=_calib(name), numerics=numerics)


def _int8_inputs(res, name: str, seed: int = 0) -> list[list[np.ndarray]]:
    """Calibration samples quantized with the compiled input's scale / zero point (NCHW ->
    NHWC for images), then one uniform random int8 input."""
    [spec] = res.manifest.inputs
    x = np.load(_calib(name))["input"].astype(np.float32)
    if x.ndim == 5 or x.ndim == 4 and len(spec.shape) == 4:
        x = x.transpose(0, 2, 3, 1)
    q = np.clip(np.round(x / spec.scale) + spec.zero_point, -128, 127).astype(np.int8)
    rng = np.random.default_rng(seed)
    return [[s.reshape(spec.shape)] for s in q[:N_SAMPLES - 1]] + \
        [[rng.integers(-128, 128, spec.shape).astype(np.int8)]]


@pytest.fixture(scope="module")
def zoo_out(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("zoo"))


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
@pytest.mark.parametrize("name", FAST_OR_SLOW)
def test_zoo_compiles_and_equals_peer_runtime(name, numerics, zoo_out):
    from edgeforge.frontends import load
    if EXPECTED_FAIL.get(name, ("", ""))[0] == "import":
        pytest.xfail(f"fails at import: {EXPECTED_FAIL[name][1]} (test_zoo_import checks it)")
    if _expect_failure(name, "compile", lambda: _compiled(name, numerics, zoo_out)):
        return
    res = _compiled(name, numerics, zoo_out)
    sqnr = res.report["sqnr"][-1]["sqnr_db"]
    assert sqnr > MIN_SQNR_DB, f"{name}: int8 output SQNR {sqnr:.1f} dB vs float"
    tfl = res.dir / "model.tflite"
    lacking = TFLM_LACKS & set(res.manifest.ops)
    if numerics == "tflm" and lacking:
        pytest.xfail(f"TFLM has no int8 kernel for {sorted(lacking)}")
    assert_equals_peer(load(tfl), tfl, _int8_inputs(res, name), numerics, name)


def assert_equals_peer(g, tfl: Path, samples: list[list[np.ndarray]], numerics: str,
                       label: str) -> None:
    """Our int8 reference on graph g gives, for every sample, the bytes TFLM (tflm) or
    LiteRT's reference kernels (litert) give running the .tflite file tfl."""
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    peer = (peers.TflmRunner(tfl) if numerics == "tflm"
            else peers.LitertRunner(tfl, reference_kernels=True))
    for xs in samples:
        ours = run(g, xs, numerics=numerics)
        theirs = peer.run(xs)
        for k, o in enumerate(g.outputs):
            assert np.array_equal(ours[o], theirs[k]), f"{label} [{numerics}]: output {o}"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_zoo_c_equals_reference(name, zoo_out):
    require("gcc")
    if name in EXPECTED_FAIL:
        pytest.xfail(f"does not compile yet: {EXPECTED_FAIL[name][1]}")
    res = _compiled(name, "tflm", zoo_out)
    assert_c_equals_reference(res.dir, _int8_inputs(res, name, seed=1), name)


def assert_c_equals_reference(out_dir: Path, samples: list[list[np.ndarray]], label: str
                              ) -> None:
    """The compiled DIR's generated C, built with the host compiler, gives the int8
    reference's bytes (on its model.tflite, --numerics tflm) for every sample."""
    from edgeforge.codegen.host import CModel
    from edgeforge.frontends import load
    from edgeforge.runtime.reference import run
    g = load(out_dir / "model.tflite")
    m = CModel(out_dir)
    ys = m.run_batch([np.stack([s[k] for s in samples]) for k in range(len(g.inputs))])
    for i, xs in enumerate(samples):
        ours = run(g, xs, numerics="tflm")
        for k, o in enumerate(g.outputs):
            assert np.array_equal(ys[k][i], ours[o]), f"{label}: C output {o}, sample {i}"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_zoo_runs_on_the_emulated_board(name, zoo_out):
    """Firmware for qemu://mps2-an386 (Cortex-M4) with the compiled model: the device's
    outputs equal the host reference's on every sample (edgeforge profile checks them)."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    if name in EXPECTED_FAIL:
        pytest.xfail(f"does not compile yet: {EXPECTED_FAIL[name][1]}")
    res = _compiled(name, "tflm", zoo_out)
    assert_board_equals_reference(res.dir, np.stack([s[0] for s in _int8_inputs(res, name,
                                                                                seed=2)]))


def assert_board_equals_reference(out_dir: Path, x: np.ndarray) -> None:
    """The compiled DIR on qemu://mps2-an386: every output byte equals the host reference's
    (edgeforge profile checks them) for each sample of x (one input)."""
    from edgeforge.api import profile
    report = profile(out_dir, "qemu://mps2-an386", runs=1, warmup=0, inputs=x)
    assert report["outputs_match_reference"] is True, report["mismatches"]
    assert report["samples"] == len(x)
