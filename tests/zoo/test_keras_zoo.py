"""The Keras zoo (tests/zoo/keras, int8 .tflite files made by the TFLite converter in
tests/zoo/export_keras_zoo.py) through every stage, as a Keras user hands them over:

  * compile (no calibration: the converter quantized them), both numerics profiles: our int8
    reference on the compiled graph gives the bytes TFLM (--numerics tflm) / LiteRT's
    reference kernels (--numerics litert) give running the written model.tflite, AND the
    bytes they give running the user's original file (float in/out models are fed the
    dequantized int8 sample and their float output is requantized: exact at the edges);
  * the generated C gives the reference's bytes (slow: builds with gcc);
  * the firmware on the emulated Cortex-M4 gives them too (slow: QEMU).

The assertions reuse tests/zoo/test_zoo.py's. A model that does not compile yet is in
EXPECTED_FAIL with the op and why; the test asserts it still fails with that error.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require
from tests.zoo.test_zoo import (
    TFLM_LACKS,
    assert_board_equals_reference,
    assert_c_equals_reference,
    assert_equals_peer,
)

KERAS = Path(__file__).resolve().parent / "keras"
ROWS = {r["model"]: r for r in json.loads((KERAS / "manifest.json").read_text())}
MODELS = sorted(ROWS)
# hundreds of ops (the GRU unrolled by the converter): slow-marked. lstm_kws is two fused
# UNIDIRECTIONAL_SEQUENCE_LSTM ops (issue 11), byte-exact and fast
HEAVY = {"gru_kws"}
# model -> why its int8 bytes do not equal the peers' yet (xfail, not strict: fixed = XPASS)
NOT_EXACT_YET: dict[str, str] = {}


def _marks(m: str) -> list:
    marks = [pytest.mark.slow] if m in HEAVY else []
    if m in NOT_EXACT_YET:
        marks.append(pytest.mark.xfail(reason=NOT_EXACT_YET[m], strict=False))
    return marks


FAST_OR_SLOW = [pytest.param(m, marks=_marks(m)) for m in MODELS]
# (model, numerics) -> why the peer's run of the user's ORIGINAL file is not compared (the
# compiled model.tflite still is)
ORIGINAL_NOT_COMPARED = {
    # the converter records SPACE_TO_BATCH_ND's output with batch 1 (it is block * batch);
    # TFLM allocates by the recorded shapes and computes one phase of the dilated Conv1D,
    # LiteRT resizes and gets it right -- and equals our dilated CONV_2D
    ("conv1d_kws", "tflm"): "TFLM mis-runs SPACE_TO_BATCH_ND's recorded batch-1 shape",
    ("vibration_1d", "tflm"): "TFLM mis-runs SPACE_TO_BATCH_ND's recorded batch-1 shape",
    # Keras 3 UpSampling2D is TILE v3 (int8), which neither runtime registers
    ("unet_small", "tflm"): "TFLM has no TILE kernel", ("det_head", "tflm"): "no TILE in TFLM",
    ("unet_small", "litert"): "LiteRT has no TILE v3", ("det_head", "litert"): "no TILE v3",
}

# model -> a piece of the one-line compile error it gives. Shrinks as ops land.
EXPECTED_FAIL: dict[str, str] = {
}


@cache
def _compiled(name: str, numerics: str, root: str):
    from edgeforge.compiler import compile_model
    return compile_model(KERAS / f"{name}.tflite", Path(root) / f"{name}_{numerics}",
                         numerics=numerics)


def _compile_or_xfail(name: str, numerics: str, root: str):
    from edgeforge.errors import EdgeforgeError
    if name in EXPECTED_FAIL:
        with pytest.raises(EdgeforgeError) as err:
            _compiled(name, numerics, root)
        assert EXPECTED_FAIL[name] in str(err.value), str(err.value)
        pytest.xfail(f"does not compile yet: {EXPECTED_FAIL[name]}")
    return _compiled(name, numerics, root)


def _samples(res, seed: int = 0) -> list[list[np.ndarray]]:
    """Int8 inputs for the compiled model: two quantized normal samples (what the
    representative dataset looked like) and one uniform random int8 sample."""
    rng = np.random.default_rng(seed)
    out = []
    for kind in ("normal", "normal", "uniform"):
        xs = []
        for spec in res.manifest.inputs:
            if kind == "uniform":
                xs.append(rng.integers(-128, 128, spec.shape).astype(np.int8))
            else:
                x = rng.standard_normal(spec.shape) / spec.scale + spec.zero_point
                xs.append(np.clip(np.round(x), -128, 127).astype(np.int8))
        out.append(xs)
    return out


def _original_equals(res, samples, numerics: str, name: str) -> None:
    """Our reference on the compiled graph vs the peer running the user's original file."""
    from edgeforge.frontends import load
    from edgeforge.runtime import peers
    from edgeforge.runtime.reference import run
    src = KERAS / f"{name}.tflite"
    peer = (peers.TflmRunner(src) if numerics == "tflm"
            else peers.LitertRunner(src, reference_kernels=True))
    g = load(res.dir / "model.tflite")
    float_io = ROWS[name]["io"] == "float32"
    for xs in samples:
        feed = [((x.astype(np.float32) - s.zero_point) * np.float32(s.scale)).astype(np.float32)
                if float_io else x for x, s in zip(xs, res.manifest.inputs)]
        theirs = peer.run(feed)
        ours = run(g, xs, numerics=numerics)
        for k, (o, s) in enumerate(zip(g.outputs, res.manifest.outputs)):
            t = theirs[k]
            if float_io:
                t = np.clip(np.round(t / np.float32(s.scale)) + s.zero_point, -128, 127)
            assert np.array_equal(ours[o], t.astype(np.int8)), \
                f"{name} [{numerics}]: output {o} vs the original file"


@pytest.fixture(scope="module")
def keras_out(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("keras_zoo"))


def test_keras_zoo_files_are_listed_and_small():
    on_disk = sorted(p.stem for p in KERAS.glob("*.tflite"))
    assert on_disk == MODELS
    for name in MODELS:
        size = (KERAS / f"{name}.tflite").stat().st_size
        assert size < 1 << 20, f"{name}: {size} bytes"
        assert ROWS[name]["io"] in ("int8", "float32")


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
@pytest.mark.parametrize("name", FAST_OR_SLOW)
def test_keras_zoo_compiles_and_equals_peer_runtime(name, numerics, keras_out):
    from edgeforge.frontends import load
    res = _compile_or_xfail(name, numerics, keras_out)
    lacking = TFLM_LACKS & set(res.manifest.ops)
    if numerics == "tflm" and lacking:
        pytest.xfail(f"TFLM has no int8 kernel for {sorted(lacking)}")
    samples = _samples(res)
    tfl = res.dir / "model.tflite"
    assert_equals_peer(load(tfl), tfl, samples, numerics, name)
    if (name, numerics) not in ORIGINAL_NOT_COMPARED:
        _original_equals(res, samples, numerics, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_keras_zoo_c_equals_reference(name, keras_out):
    require("gcc")
    res = _compile_or_xfail(name, "tflm", keras_out)
    assert_c_equals_reference(res.dir, _samples(res, seed=1), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_keras_zoo_runs_on_the_emulated_board(name, keras_out):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    res = _compile_or_xfail(name, "tflm", keras_out)
    if len(res.manifest.inputs) != 1:
        pytest.xfail("profile --inputs takes one input tensor")
    assert_board_equals_reference(res.dir, np.stack([s[0] for s in _samples(res, seed=2)]))
