"""--runtime litert|tensorrt|native: the agent's choice, and trtexec's summary parsed.

We have no Jetson: TensorRT itself is NOT exercised here (no fake trtexec stands in for it).
What is tested is everything around it: the parser on trtexec's log in the layout trtexec
prints it (TensorRT 8.x and 10.x), its --exportTimes / --exportOutput JSON, the --loadInputs
spec, the engine cache key, the choice among the runtimes a board has, and that choice made
by the agent on a board reached over real OpenSSH (this machine: LiteRT and a C compiler, no
TensorRT).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeforge.targets.mqtt import load_agent
from tests.targets._servers import client_key, compile_fixture, sshd  # noqa: F401

AGENT = load_agent()

# trtexec's log as it prints it (NVIDIA/TensorRT samples/common/sampleReporting.cpp:
# printProlog, printTiming, printEpilog; the logger's "[date-time] [I]" prefix; values made up).
# TensorRT 8.x: one percentile, an End-to-End Host Latency row, a bound-by warning.
TRT8 = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # /usr/src/tensorrt/bin/trtexec --loadEngine=e.engine
[12/01/2026-10:00:01] [I] TensorRT version: 8.5.2
[12/01/2026-10:00:09] [I] Warmup completed 250 queries over 200 ms
[12/01/2026-10:00:09] [I] Timing trace has 3751 queries over 3.0025 s
[12/01/2026-10:00:09] [I]
[12/01/2026-10:00:09] [I] === Trace details ===
[12/01/2026-10:00:09] [I] Trace averages of 10 runs:
[12/01/2026-10:00:09] [I] Average on 10 runs - GPU latency: 0.74 ms - Host latency: 0.8 ms (end to end 1.5 ms, enqueue 0.02 ms)
[12/01/2026-10:00:09] [I]
[12/01/2026-10:00:09] [I] === Performance summary ===
[12/01/2026-10:00:09] [I] Throughput: 1234.5 qps
[12/01/2026-10:00:09] [I] Latency: min = 0.75 ms, max = 1.5 ms, mean = 0.8 ms, median = 0.79 ms, percentile(99%) = 1.25 ms
[12/01/2026-10:00:09] [I] End-to-End Host Latency: min = 1.2 ms, max = 2.9 ms, mean = 1.5 ms, median = 1.49 ms, percentile(99%) = 2.4 ms
[12/01/2026-10:00:09] [I] Enqueue Time: min = 0.01 ms, max = 0.05 ms, mean = 0.02 ms, median = 0.02 ms, percentile(99%) = 0.04 ms
[12/01/2026-10:00:09] [I] H2D Latency: min = 0.02 ms, max = 0.1 ms, mean = 0.03 ms, median = 0.03 ms, percentile(99%) = 0.08 ms
[12/01/2026-10:00:09] [I] GPU Compute Time: min = 0.7 ms, max = 1.4 ms, mean = 0.74 ms, median = 0.73 ms, percentile(99%) = 1.2 ms
[12/01/2026-10:00:09] [I] D2H Latency: min = 5e-03 ms, max = 0.02 ms, mean = 0.01 ms, median = 0.01 ms, percentile(99%) = 0.015 ms
[12/01/2026-10:00:09] [I] Total Host Walltime: 3.0025 s
[12/01/2026-10:00:09] [I] Total GPU Compute Time: 2.75 s
[12/01/2026-10:00:09] [W] * Throughput may be bound by Enqueue Time rather than GPU Compute and the GPU may be under-utilized.
[12/01/2026-10:00:09] [W]   If not already in use, --useCudaGraph (utilize CUDA graphs where possible) may increase the throughput.
[12/01/2026-10:00:09] [I] Explanations of the performance metrics are printed in the verbose logs.
[12/01/2026-10:00:09] [V]
[12/01/2026-10:00:09] [V] === Explanations of the performance metrics ===
[12/01/2026-10:00:09] [V] Latency: the summation of H2D Latency, GPU Compute Time, and D2H Latency. This is the latency to infer a single query.
&&&& PASSED TensorRT.trtexec [TensorRT v8502] # /usr/src/tensorrt/bin/trtexec --loadEngine=e.engine
"""
# TensorRT 10.x: --percentile's list (default 90,95,99), no End-to-End row, no version line
TRT10 = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=m.engine
[12/01/2026-10:00:09] [I] === Performance summary ===
[12/01/2026-10:00:09] [I] Throughput: 2000 qps
[12/01/2026-10:00:09] [I] Latency: min = 0.4 ms, max = 0.9 ms, mean = 0.5 ms, median = 0.48 ms, percentile(90%) = 0.6 ms, percentile(95%) = 0.7 ms, percentile(99%) = 0.85 ms
[12/01/2026-10:00:09] [I] Enqueue Time: min = 0.01 ms, max = 0.03 ms, mean = 0.02 ms, median = 0.02 ms, percentile(90%) = 0.02 ms, percentile(95%) = 0.03 ms, percentile(99%) = 0.03 ms
[12/01/2026-10:00:09] [I] GPU Compute Time: min = 0.3 ms, max = 0.8 ms, mean = 0.45 ms, median = 0.44 ms, percentile(90%) = 0.55 ms, percentile(95%) = 0.6 ms, percentile(99%) = 0.75 ms
[12/01/2026-10:00:09] [I] Total Host Walltime: 3 s
[12/01/2026-10:00:09] [I] Total GPU Compute Time: 1.35 s
[12/01/2026-10:00:09] [W] * GPU compute time is unstable, with coefficient of variance = 3.2%.
[12/01/2026-10:00:09] [I] Explanations of the performance metrics are printed in the verbose logs.
&&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --loadEngine=m.engine
"""


def test_trtexec_summary_parsed_in_microseconds():
    old = AGENT.parse_trtexec(TRT8)
    assert old["tensorrt_version"] == "8.5.2" and old["throughput_qps"] == 1234.5
    assert old["latency"] == pytest.approx({"min": 750, "max": 1500, "mean": 800,
                                            "median": 790, "p99": 1250})
    assert old["end_to_end"]["median"] == pytest.approx(1490)
    assert old["gpu_compute"]["mean"] == pytest.approx(740)
    assert old["h2d"]["p99"] == pytest.approx(80) and old["d2h"]["min"] == pytest.approx(5)
    assert old["enqueue"]["max"] == pytest.approx(50)
    assert old["total_host_walltime_s"] == 3.0025 and old["total_gpu_compute_s"] == 2.75
    new = AGENT.parse_trtexec(TRT10)
    assert new["tensorrt_version"] == "10.3.0"            # from the &&&& tag alone
    assert new["latency"] == pytest.approx({"min": 400, "max": 900, "mean": 500, "median": 480,
                                            "p90": 600, "p95": 700, "p99": 850})
    assert new["gpu_compute"]["p90"] == pytest.approx(550) and "h2d" not in new
    assert "end_to_end" not in new and new["total_gpu_compute_s"] == 1.35
    assert AGENT.parse_trtexec("[I] Building engine...\n") == {}   # no summary: nothing


def test_trtexec_exports_read_as_trtexec_writes_them():
    """--exportTimes (exportJSONTrace: TensorRT 8.x writes the warm-up queries too) and
    --exportOutput (exportJSONOutput) in the layout trtexec writes them."""
    trace = json.loads("[\n" + "\n".join(
        ("  " if k == 0 else ", ") + '{ "startEnqMs" : %g, "endEnqMs" : %g, "startH2dMs" : %g, '
        '"endH2dMs" : %g, "startComputeMs" : %g, "endComputeMs" : %g, "startD2hMs" : %g, '
        '"endD2hMs" : %g, "h2dMs" : 0.01, "computeMs" : 0.5, "d2hMs" : 0.01, "latencyMs" : %g, '
        '"endToEndMs" : 0.6 }' % ((t,) * 8 + (lat,))
        for k, (t, lat) in enumerate([(50, 0.9), (150, 0.8), (201, 0.52), (202, 0.51)])) + "\n]")
    assert AGENT.timed_iterations(trace, 200) == pytest.approx([520, 510])   # warm-ups gone
    assert AGENT.timed_iterations(trace, 0) == pytest.approx([900, 800, 520, 510])
    exported = json.loads('[\n  { "name" : "Identity"\n  , "dimensions" : "1x4"\n'
                          '  , "values" : [ 0.5, -0.25, 0.0078125, 2 ]\n  }\n]')
    spec = {"name": "Identity", "dtype": "int8", "shape": [1, 4], "scale": 1 / 128,
            "zero_point": -10}
    [y] = AGENT.exported_outputs(exported, [spec])
    assert y.dtype.name == "int8" and y.tolist() == [[54, -42, -9, 127]]     # 256 clips
    with pytest.raises(AGENT.AgentError, match="exported no output 'probs'"):
        AGENT.exported_outputs(exported, [dict(spec, name="probs")])


def test_trtexec_load_inputs_quotes_names():
    """trtexec's help: input names can be wrapped in single quotes ('Input:0')."""
    spec = AGENT.load_inputs_spec([("serving_default_x:0", "/t/in0.bin"), ("b,c", "/t/in1.bin")])
    assert spec == "--loadInputs='serving_default_x:0':/t/in0.bin,'b,c':/t/in1.bin"
    with pytest.raises(AGENT.AgentError, match="single quote"):
        AGENT.load_inputs_spec([("it's", "/t/x.bin")])


def test_engine_cache_is_keyed_by_model_and_tensorrt(tmp_path):
    """One engine per (model_qdq.onnx, trtexec binary), shared by the board's deployed
    directories: the same model deployed twice reuses it, a new model or a new TensorRT
    (JetPack upgrade: another trtexec) gets its own."""
    trtexec = tmp_path / "trtexec"
    trtexec.write_bytes(b"TensorRT 8.5.2 trtexec")
    dirs = []
    for k, onnx in enumerate([b"model A", b"model A", b"model B"]):
        d = tmp_path / "board" / "models" / f"m{k}"
        d.mkdir(parents=True)
        (d / "model_qdq.onnx").write_bytes(onnx)
        dirs.append(d)
    a, a2, b = (AGENT.engine_path(str(d), str(trtexec)) for d in dirs)
    assert a == a2 != b
    assert Path(a).parent == tmp_path / "board" / "tensorrt" and a.endswith(".engine")
    trtexec.write_bytes(b"TensorRT 10.3.0 trtexec")
    assert AGENT.engine_path(str(dirs[0]), str(trtexec)) not in (a, b)


def test_runtime_choice():
    choose, Err = AGENT.choose_runtime, AGENT.AgentError
    everything = {"tensorrt": True, "litert": True, "native": True}
    assert choose("auto", everything) == "tensorrt"                  # the fastest first
    assert choose("auto", {"litert": True, "native": True}) == "litert"
    assert choose("auto", {"native": True}) == "native"
    assert choose("litert", everything) == "litert"
    with pytest.raises(Err, match="no trtexec"):
        choose("tensorrt", {"litert": True})
    with pytest.raises(Err, match="no runtime on this device"):
        choose("auto", {})
    with pytest.raises(Err, match="use one of auto, tensorrt, litert, native"):
        choose("cuda", everything)


def cli_profile(d, sshd, key, *extra):  # noqa: F811
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(d), "--target",
                           f"{sshd.uri}?python={sys.executable}&dir={d.parent / 'board'}",
                           "--identity", str(key), "--known-hosts", str(sshd.known_hosts),
                           "--runs", "3", "--json", *extra],
                          capture_output=True, text=True, timeout=300, check=False)


def test_agent_chooses_over_ssh(sshd, client_key, tmp_path):  # noqa: F811
    if shutil.which("trtexec"):
        pytest.fail("this host has trtexec: the no-TensorRT case below assumes it has none")
    d = compile_fixture("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    assert (d / "model_qdq.onnx").exists()
    r = cli_profile(d, sshd, client_key)                  # auto: no TensorRT here -> LiteRT
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["runtime"] == "ai_edge_litert" and res["outputs_match_reference"] is True
    assert res["device"]["tensorrt"] is None              # the agent looked, found none
    board = tmp_path / "board" / "models" / res["model_sha256"][:16]
    assert (board / "model_qdq.onnx").read_bytes() == (d / "model_qdq.onnx").read_bytes()

    r = cli_profile(d, sshd, client_key, "--runtime", "tensorrt")
    assert r.returncode == 2 and "--runtime tensorrt: no trtexec on this device" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli_profile(d, sshd, client_key, "--runtime", "litert")
    assert r.returncode == 0 and json.loads(r.stdout)["runtime"] == "ai_edge_litert", r.stderr
    r = cli_profile(d, sshd, client_key, "--runtime", "native")   # the C package, built there
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["runtime"] == "native-c" and res["outputs_match_reference"] is True, res
