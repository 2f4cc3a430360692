"""edgeforge.runtime.peers: the TFLM / LiteRT wrappers the bit-exactness tests stand on."""
from __future__ import annotations

import numpy as np
import pytest

from edgeforge.frontends.tflite import read_tflite
from edgeforge.runtime import peers
from tests.conftest import fixture, require


@pytest.fixture(scope="module")
def kws():
    require("tflite_micro", "ai_edge_litert")
    path = fixture("kws_ds_cnn_int8.tflite")
    return path, np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy"))


def test_runners_reuse_and_agree_with_one_shot(kws):
    path, x = kws
    r = peers.TflmRunner(path)
    first = r.run([x])[0]
    other = np.random.default_rng(0).integers(-128, 128, x.shape).astype(np.int8)
    r.run([other])                                   # state must not leak between calls
    np.testing.assert_array_equal(r.run([x])[0], first)
    np.testing.assert_array_equal(peers.run_tflm(path, [x])[0], first)
    np.testing.assert_array_equal(peers.run_litert(path.read_bytes(), [x])[0],
                                  peers.LitertRunner(path).run([x])[0])


def test_wrong_input_is_a_clear_error(kws):
    path, x = kws
    with pytest.raises(ValueError, match="model wants int8"):
        peers.run_tflm(path, [x[0]])
    with pytest.raises(ValueError, match="1 inputs given|inputs given"):
        peers.run_litert(path, [x, x])


def test_arena_bytes_parse_and_bound():
    require("tflite_micro")
    for name in ("kws_ds_cnn_int8.tflite", "ic_resnet8_int8.tflite"):
        g = read_tflite(fixture(name))
        a = peers.tflm_arena_bytes(fixture(name))
        assert set(a) == {"head", "tail", "total"}
        assert a["total"] == a["head"] + a["tail"]
        # the head holds the activations: at least the largest one must fit
        largest = max(g.tensors[t].nbytes for t in g.activations())
        assert a["head"] >= largest


def test_intermediates_cover_every_tensor(kws):
    path, x = kws
    g = read_tflite(path)
    inter = peers.tflm_intermediates(path, [x])
    idx = g.meta["tflite_index"]
    np.testing.assert_array_equal(inter[idx[g.inputs[0]]].reshape(x.shape), x)
    np.testing.assert_array_equal(inter[idx[g.outputs[0]]], peers.run_tflm(path, [x])[0])
    for name, t in g.tensors.items():               # constants come back unchanged
        if t.is_const and t.dtype == "int8" and name in idx:
            np.testing.assert_array_equal(inter[idx[name]].reshape(t.shape), t.data)
