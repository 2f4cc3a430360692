"""Home Assistant device-based discovery: the payload per task against HA's documented schema
(tests/targets/_ha_schema.py), default device ids, and rediscovery under a birth flood on a
real Mosquitto broker."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from edgeforge.manifest import Manifest, TensorSpec
from edgeforge.targets.mqtt import (
    HaPublisher,
    board_of,
    components,
    device_id_for,
    parse_broker,
    result_state,
    task_of,
)
from tests.targets._ha_schema import check_device_discovery
from tests.targets._servers import mosquitto  # noqa: F401
from tests.targets.test_mqtt import Listener


def manifest(inp: list[int], out: list[int], *, out_scale: float = 0.05, out_zp: int = 3,
             name: str = "m") -> Manifest:
    return Manifest(name=name, model_sha256="ab" * 32, source_sha256="cd" * 32,
                    sdk_version="t", numerics="litert",
                    inputs=[TensorSpec("x", inp, "int8", 0.1, -2)],
                    outputs=[TensorSpec("y", out, "int8", out_scale, out_zp)],
                    arena_bytes=0, arena_lower_bound_bytes=0, weight_bytes=0, ops=[])


CLASSIFIER = manifest([1, 49, 10, 1], [1, 12], out_scale=1 / 256, out_zp=-128)
AUTOENCODER = manifest([1, 640], [1, 640])
REGRESSOR = manifest([1, 8], [1, 3])


def payload(m: Manifest, task: str, threshold: float | None = None, round_trip: bool = False):
    dev = device_id_for(m, None, "pi4")
    cmps = components(dev, task, m, labels=False, threshold=threshold, round_trip=round_trip)
    return {"device": {"identifiers": [dev], "name": "m on pi4"}, "origin": {"name": "edgeforge"},
            "cmps": cmps, "state_topic": f"edgeforge/{dev}/state"}, dev


def test_tasks_are_guessed_from_the_outputs():
    assert task_of(CLASSIFIER) == "classifier"          # int8 softmax encoding
    assert task_of(AUTOENCODER) == "anomaly"            # output shaped like the input
    assert task_of(REGRESSOR) == "regressor"
    assert task_of(REGRESSOR, labels=["a", "b", "c"]) == "classifier"
    assert task_of(CLASSIFIER, "regressor") == "regressor"
    c16 = manifest([1, 8], [1, 4])                      # int16 softmax encoding (16x8 DIR)
    c16.outputs[0] = TensorSpec("y", [1, 4], "int16", 1 / 32768, 0)
    assert task_of(c16) == "classifier"
    c16.outputs[0] = TensorSpec("y", [1, 4], "int16", 1 / 256, 0)
    assert task_of(c16) == "regressor"


@pytest.mark.parametrize("m, task, keys", [
    (CLASSIFIER, "classifier", {"class", "confidence", "latency"}),
    (AUTOENCODER, "anomaly", {"anomaly_score", "anomaly", "latency", "round_trip"}),
    (REGRESSOR, "regressor", {"value_0", "value_1", "value_2", "latency"}),
])
def test_payload_per_task_is_valid_discovery(m, task, keys):
    cfg, dev = payload(m, task, threshold=0.5, round_trip=task == "anomaly")
    full = check_device_discovery(cfg, dev)
    assert set(full["components"]) == keys
    lat = full["components"]["latency"]
    assert lat["device_class"] == "duration" and lat["unit_of_measurement"] == "µs"
    if task == "classifier":
        assert full["components"]["confidence"]["unit_of_measurement"] == "%"
    if task == "anomaly":
        b = full["components"]["anomaly"]
        assert b["p"] == "binary_sensor" and b["device_class"] == "problem"


def test_schema_checker_rejects_what_ha_rejects():
    cfg, dev = payload(CLASSIFIER, "classifier")
    legacy = json.loads(json.dumps(cfg))
    legacy["cmps"]["class"]["object_id"] = "x"
    for broken in (legacy, {k: v for k, v in cfg.items() if k != "origin"}):
        with pytest.raises(AssertionError):
            check_device_discovery(broken, dev)
    no_unit = json.loads(json.dumps(cfg))
    del no_unit["cmps"]["latency"]["unit_of_measurement"]
    with pytest.raises(AssertionError, match="duration"):
        check_device_discovery(no_unit, dev)


def test_states_fit_the_task():
    x = np.full((1, 640), 8, np.int8)                   # dequantized: 1.0
    y = np.full((1, 640), 23, np.int8)                  # dequantized: 1.0
    s = result_state([y], AUTOENCODER, None, 12.0, 0, "f", task="anomaly", inputs=[x],
                     threshold=0.5)
    assert s["anomaly_score"] == 0.0 and s["anomaly"] == "OFF" and "top_class" not in s
    y2 = np.full((1, 640), 43, np.int8)                 # dequantized 2.0: error 1.0
    s = result_state([y2], AUTOENCODER, None, 12.0, 1, "f", task="anomaly", inputs=[x],
                     threshold=0.5, round_trip_us=80.0)
    assert s["anomaly_score"] == 1.0 and s["anomaly"] == "ON" and s["round_trip_us"] == 80.0
    s = result_state([np.array([[3, 23, -17]], np.int8)], REGRESSOR, None, 5.0, 0, "f",
                     task="regressor")
    assert s["values"] == [0.0, 1.0, -1.0] and "score" not in s
    probs = np.full((1, 12), -128, np.int8)
    probs[0, 4] = 63                                    # (63 + 128) / 256 = 0.746
    s = result_state([probs], CLASSIFIER, None, 5.0, 0, "f")
    assert s["class_index"] == 4 and s["confidence"] == 74.6


def test_default_device_id_is_board_and_model():
    a = device_id_for(CLASSIFIER, None, board_of("ssh://root@pi-a:22"))
    b = device_id_for(CLASSIFIER, None, board_of("ssh://root@pi-b"))
    q = device_id_for(CLASSIFIER, None, board_of("qemu://mps2-an386"))
    s = device_id_for(CLASSIFIER, None, board_of("serial:///dev/ttyACM0?board=nucleo-f446re"))
    other = device_id_for(manifest([1, 2], [1, 2], name="other"), None, "pi-a")
    assert len({a, b, q, s, other}) == 5
    assert a == "edgeforge_pi-a_m_abababab" and q == "edgeforge_mps2-an386_m_abababab"
    assert "nucleo-f446re" in s
    assert device_id_for(CLASSIFIER, "my dev!") == "my_dev_"


def test_birth_flood_gets_one_rediscovery_not_hundreds(mosquitto):  # noqa: F811
    dev = "flood_test"
    lis = Listener(mosquitto.port, [f"homeassistant/device/{dev}/config"])
    pub = HaPublisher(parse_broker(mosquitto.uri), dev, CLASSIFIER, "local", task="classifier",
                      board="here", rediscovery_s=3.0)
    announced = threading.Event()
    first = pub.announce

    def spy():
        first()
        announced.set()
    pub.announce = spy
    try:
        pub.connect()
        lis.wait(lambda: len(lis.on(f"homeassistant/device/{dev}/config")) >= 1)
        announced.clear()
        for _ in range(300):                      # Home Assistant instances restarting in a loop
            lis.c.publish("homeassistant/status", "online", qos=0)
        assert announced.wait(10), "a flood still ends in one re-announcement"
        lis.wait(lambda: len(lis.on(f"homeassistant/device/{dev}/config")) >= 2)
        # the window is over once the trailing announcement went out; a late birth still works
        n_after_flood = pub.announcements
        assert 2 <= n_after_flood <= 3, f"{n_after_flood} announcements for 300 births"
    finally:
        pub.close()
        lis.close()
    cfg = json.loads(lis.on(f"homeassistant/device/{dev}/config")[-1])
    check_device_discovery(cfg, dev)


def test_serve_autoencoder_publishes_score_and_anomaly(mosquitto, tmp_path):  # noqa: F811
    """The MLPerf AD autoencoder (tests/zoo) served for real: its entities are a score and a
    problem binary_sensor, never a top class (an autoencoder once published top_class '5')."""
    import subprocess
    import sys

    from edgeforge.compiler import compile_model
    from tests.conftest import ROOT
    zoo = ROOT / "tests" / "zoo" / "models"
    res = compile_model(zoo / "ad_autoencoder.onnx", tmp_path / "ad",
                        calib=zoo / "ad_autoencoder_calib.npz", numerics="litert", verbose=0)
    spec = res.manifest.inputs[0]
    x = np.load(zoo / "ad_autoencoder_calib.npz")["input"][:2].astype(np.float32)
    q = np.clip(np.round(x / spec.scale) + spec.zero_point, -128, 127).astype(np.int8)
    frames = tmp_path / "frames"
    frames.mkdir()
    np.save(frames / "normal.npy", q[0].reshape(spec.shape))
    np.save(frames / "odd.npy", np.full(spec.shape, 127, np.int8))   # far from anything seen
    dev = "ad_test"
    topic = f"homeassistant/device/{dev}/config"
    lis = Listener(mosquitto.port, [topic, f"edgeforge/{dev}/state"])
    try:
        r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "serve", str(res.dir),
                            "--mqtt", mosquitto.uri, "--inputs", str(frames), "--device-id", dev,
                            "--threshold", "5.0"], capture_output=True, text=True, timeout=120,
                           check=False)
        assert r.returncode == 0, r.stderr
        lis.wait(lambda: len(lis.on(f"edgeforge/{dev}/state")) == 2 and lis.on(topic))
        cfg = check_device_discovery(json.loads(lis.on(topic)[-1]), dev)
        assert set(cfg["components"]) == {"anomaly_score", "anomaly", "latency"}
        states = [json.loads(p) for p in lis.on(f"edgeforge/{dev}/state")]
        assert all("top_class" not in s and "score" not in s for s in states)
        normal, odd = states
        assert normal["anomaly_score"] < odd["anomaly_score"]
        # measured: a calibration sample scores ~1.0, a saturated input ~12.3
        assert normal["anomaly"] == "OFF" and odd["anomaly"] == "ON", states
    finally:
        lis.close()
