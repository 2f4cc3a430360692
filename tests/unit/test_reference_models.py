"""The reference runtime on the MLPerf Tiny fixtures against the two peer runtimes.

int8: >= 100 random inputs per model, reference bytes == TFLM (profile tflm) and == LiteRT
BUILTIN_REF (profile litert). float: ResNet-8 within 1e-5 relative of LiteRT.
"""
from __future__ import annotations

import numpy as np
import pytest

from runtime import peers
from runtime import reference as R
from sdk.frontends.tflite import read_tflite
from sdk.qmath import Numerics
from tests.conftest import fixture, require

N_RANDOM = 100
INT8_MODELS = ["kws_ds_cnn_int8", "ic_resnet8_int8"]


@pytest.fixture(scope="module", params=INT8_MODELS)
def int8_model(request):
    require("tflite_micro", "ai_edge_litert")
    path = fixture(f"{request.param}.tflite")
    g = read_tflite(path)
    shape = g.tensors[g.inputs[0]].shape
    xs = np.random.default_rng(7).integers(-128, 128, (N_RANDOM, *shape)).astype(np.int8)
    return path, g, xs


@pytest.mark.parametrize("numerics", [Numerics.TFLM, Numerics.LITERT])
def test_int8_fixture_bytes_match_peer(int8_model, numerics):
    path, g, xs = int8_model
    peer = peers.TflmRunner(path) if numerics == Numerics.TFLM else peers.LitertRunner(path)
    params = R.prepare_graph(g, numerics)
    bad = [i for i, x in enumerate(xs)
           if not np.array_equal(R.run(g, [x], numerics=numerics, params=params)[g.outputs[0]],
                                 peer.run([x])[0])]
    assert not bad, f"{len(bad)}/{len(xs)} inputs differ from the {numerics} peer: {bad[:10]}"


def test_profiles_really_differ_on_resnet8():
    """The switch matters: some input gives different bytes under tflm and litert."""
    g = read_tflite(fixture("ic_resnet8_int8.tflite"))
    xs = np.random.default_rng(7).integers(-128, 128, (N_RANDOM, 1, 32, 32, 3)).astype(np.int8)
    pt, pl = R.prepare_graph(g, "tflm"), R.prepare_graph(g, "litert")
    assert any(not np.array_equal(R.run(g, [x], numerics="tflm", params=pt)[g.outputs[0]],
                                  R.run(g, [x], numerics="litert", params=pl)[g.outputs[0]])
               for x in xs)


def test_intermediates_match_tflm_layer_by_layer():
    require("tflite_micro")
    path = fixture("kws_ds_cnn_int8.tflite")
    g = read_tflite(path)
    x = np.random.default_rng(3).integers(-128, 128, g.tensors[g.inputs[0]].shape, np.int8)
    ours = R.run(g, [x], intermediate=True)
    theirs = peers.tflm_intermediates(path, [x])
    index = g.meta["tflite_index"]
    for node in g.nodes:
        out = node.outputs[0]
        np.testing.assert_array_equal(ours[out], theirs[index[out]].reshape(ours[out].shape),
                                      err_msg=f"{node.name} ({node.op})")


def test_real_kws_sample_same_class_everywhere():
    require("tflite_micro", "ai_edge_litert")
    path = fixture("kws_ds_cnn_int8.tflite")
    x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy"))
    g = read_tflite(path)
    classes = {
        "ref_tflm": R.run(g, [x], numerics="tflm")[g.outputs[0]],
        "ref_litert": R.run(g, [x], numerics="litert")[g.outputs[0]],
        "tflm": peers.run_tflm(path, [x])[0],
        "litert": peers.run_litert(path, [x])[0],
    }
    tops = {k: int(np.argmax(v)) for k, v in classes.items()}
    assert len(set(tops.values())) == 1, tops
    # the float model (dequantized input) agrees on the class too
    gf = read_tflite(fixture("kws_ds_cnn_float32.tflite"))
    q = g.tensors[g.inputs[0]].quant
    xf = ((x.astype(np.float32) - q.zero_point[0]) * q.scale[0]).astype(np.float32)
    assert int(np.argmax(R.run(gf, [xf])[gf.outputs[0]])) == tops["tflm"]


def _float_inputs(g, n, seed):
    shape = g.tensors[g.inputs[0]].shape
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype(np.float32)


def test_float_resnet8_matches_litert():
    require("ai_edge_litert")
    path = fixture("ic_resnet8_float32.tflite")
    g = read_tflite(path)
    peer = peers.LitertRunner(path)
    for x in _float_inputs(g, 10, seed=1):
        y, z = R.run(g, [x])[g.outputs[0]], peer.run([x])[0]
        assert np.abs(y - z).max() <= 1e-5 * np.abs(z).max()


def test_float_kws_matches_litert_loosely():
    """kws_ds_cnn_float32 stores int8 weights: LiteRT runs *hybrid* kernels that quantize the
    activations on the fly, while the IR dequantizes the weights and runs float. Agreement is
    therefore approximate (measured ~3% of the output range), not 1e-5."""
    require("ai_edge_litert")
    path = fixture("kws_ds_cnn_float32.tflite")
    g = read_tflite(path)
    peer = peers.LitertRunner(path)
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.normal(0, 3, g.tensors[g.inputs[0]].shape).astype(np.float32)
        y, z = R.run(g, [x])[g.outputs[0]], peer.run([x])[0]
        assert np.abs(y - z).max() <= 0.1 * np.abs(z).max()
