"""`edgeforge compile` and `edgeforge run --backend c` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from edgeforge.manifest import Manifest, sha256_file
from tests.conftest import fixture, require
from tests.opcases import case, write_case

EF = [sys.executable, "-m", "edgeforge.cli"]


def _ef(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*EF, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_compile_cli_writes_every_file(tmp_path):
    require("gcc")
    out = tmp_path / "kws"
    r = _ef("compile", str(fixture("kws_ds_cnn_int8.tflite")), "-o", str(out), "--json",
            "--name", "kws")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    man = Manifest.load(out)
    assert summary["model_sha256"] == man.model_sha256 == sha256_file(out / "model.tflite")
    assert man.source_sha256 == sha256_file(fixture("kws_ds_cnn_int8.tflite"))
    assert man.name == "kws" and "int ef_kws_invoke(void);" in (out / "c/kws.h").read_text()
    assert summary["arena_bytes"] == man.arena_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["kws"]       # no temp dirs left
    # run the compiled DIR through the CLI, C backend vs reference
    x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for backend in ("c", "reference"):
        r = _ef("run", str(out), "-i", str(tmp_path / "x.npy"), "--backend", backend, "--json")
        assert r.returncode == 0, r.stderr
        outs[backend] = json.loads(r.stdout)["outputs"]
    assert outs["c"] == outs["reference"]
    r = _ef("run", str(out), "-i", str(tmp_path / "x.npy"), "--backend", "c", "--numerics",
            "litert")
    assert r.returncode == 2 and "compiled for --numerics tflm" in r.stderr


def test_run_backend_c_on_a_tflite_compiles_first(tmp_path):
    require("gcc")
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(1, 32, 32, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    model = str(fixture("ic_resnet8_int8.tflite"))
    res = {}
    for numerics in ("tflm", "litert"):
        r = _ef("run", model, "-i", str(tmp_path / "x.npy"), "--backend", "c", "--json",
                "--numerics", numerics)
        assert r.returncode == 0, r.stderr
        res[numerics] = json.loads(r.stdout)
        r = _ef("run", model, "-i", str(tmp_path / "x.npy"), "--json", "--numerics", numerics)
        assert json.loads(r.stdout)["outputs"] == res[numerics]["outputs"]


def test_unsupported_model_one_error_no_dir(tmp_path):
    path = write_case(case("dequantize"), tmp_path)    # int8 -> float32 output
    out = tmp_path / "out"
    r = _ef("compile", str(path), "-o", str(out))
    assert r.returncode == 2
    assert "DEQUANTIZE" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_float_model_without_calib_one_error_no_dir(tmp_path):
    out = tmp_path / "out"
    r = _ef("compile", str(fixture("kws_ds_cnn_float32.tflite")), "-o", str(out), "--json")
    assert r.returncode == 2
    assert "--calib" in r.stderr and "Traceback" not in r.stderr
    assert "error" in json.loads(r.stdout)
    assert not out.exists() and not any(tmp_path.iterdir())


def test_existing_foreign_dir_is_not_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    r = _ef("compile", str(fixture("kws_ds_cnn_int8.tflite")), "-o", str(out))
    assert r.returncode == 2 and "not a compiled DIR" in r.stderr
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_float_io_int8_model_becomes_int8_end_to_end(tmp_path):
    """QUANTIZE in front / DEQUANTIZE behind an int8 graph (float I/O, as converters emit) are
    dropped: the C package and the written model.tflite take and give int8, same bytes."""
    require("gcc")
    from edgeforge.codegen.host import CModel
    from edgeforge.codegen.tflite import write_tflite
    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    from edgeforge.ir import NoAttrs, Node, Op, Tensor, verify
    from edgeforge.runtime.peers import run_tflm

    g = load(fixture("kws_ds_cnn_int8.tflite"))
    i, o = g.inputs[0], g.outputs[0]
    g.add_tensor(Tensor("xf", g.tensors[i].shape, "float32"))
    g.add_tensor(Tensor("yf", g.tensors[o].shape, "float32"))
    g.nodes.insert(0, Node(Op.QUANTIZE, ("xf",), (i,), NoAttrs(), "q"))
    g.nodes.append(Node(Op.DEQUANTIZE, (o,), ("yf",), NoAttrs(), "dq"))
    g.inputs, g.outputs = ["xf"], ["yf"]
    verify(g)
    res = compile_model(write_tflite(g, tmp_path / "f.tflite"), tmp_path / "out")
    assert res.manifest.extra["io_dropped"] == ["QUANTIZE xf -> " + i, f"DEQUANTIZE {o} -> yf"]
    assert res.manifest.inputs[0].dtype == res.manifest.outputs[0].dtype == "int8"
    assert "QUANTIZE" not in res.manifest.ops and "DEQUANTIZE" not in res.manifest.ops
    x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).astype(np.int8)
    [y] = CModel(res.dir).run([x])
    assert np.array_equal(y, run_tflm(res.dir / "model.tflite", [x])[0])
    assert np.array_equal(y, run_tflm(fixture("kws_ds_cnn_int8.tflite"), [x])[0])


def test_two_input_model_through_cmodel(tmp_path):
    """A compiled two-input graph (broadcast ADD): CModel packs both inputs per sample."""
    require("gcc")
    from edgeforge.codegen.host import CModel
    from edgeforge.compiler import compile_model
    from edgeforge.runtime import reference
    from tests.opcases import random_inputs

    c = case("add_bcast_spatial")
    res = compile_model(write_case(c, tmp_path), tmp_path / "out")
    m = CModel(res.dir)
    assert len(m.input_shapes) == 2
    samples = random_inputs(c.graph, n=8, seed=2)
    ys = m.run_batch([np.stack([s[k] for s in samples]) for k in range(2)])[0]
    for s, y in zip(samples, ys):
        want = reference.run(c.graph, s)[c.graph.outputs[0]]
        assert np.array_equal(y, np.asarray(want).reshape(y.shape))
