"""`edgeforge run` as a user runs it (in-process through edgeforge.cli.main, plus one real exec)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeforge.cli import main
from edgeforge.errors import EdgeforgeError
from edgeforge.frontends.tflite import read_tflite
from edgeforge.runner import BACKENDS, run
from edgeforge.runtime import reference as R
from tests.conftest import fixture, require


@pytest.fixture(scope="module")
def kws():
    return fixture("kws_ds_cnn_int8.tflite"), fixture("kws_ds_cnn_sample_inputs_int8.npy")


def test_run_writes_output_file(kws, tmp_path, capsys):
    model, sample = kws
    out = tmp_path / "y.npy"
    assert main(["run", str(model), "-i", str(sample), "-o", str(out)]) == 0
    y = np.load(out)
    g = read_tflite(model)
    np.testing.assert_array_equal(y, R.run(g, [np.load(sample)])[g.outputs[0]])
    assert "top: " in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp.npy"))


def test_run_json_both_backends_agree(kws, capsys):
    model, sample = kws
    docs = []
    for backend in ("reference", "litert"):
        assert main(["run", str(model), "-i", str(sample), "--backend", backend, "--json"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[0]["outputs"] == docs[1]["outputs"]
    assert docs[0]["top"] == int(np.argmax(docs[0]["outputs"][0]))


def test_wrong_shape_exits_2_with_one_line(kws, tmp_path, capsys):
    model, _ = kws
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((49, 10), np.int8))
    assert main(["run", str(model), "-i", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "int8[1, 49, 10, 1]" in err[0] and "bad.npy" in err[0]


def test_wrong_dtype_and_missing_file(kws, tmp_path, capsys):
    model, _ = kws
    f = tmp_path / "f.npy"
    np.save(f, np.zeros((1, 49, 10, 1), np.float32))
    assert main(["run", str(model), "-i", str(f)]) == 2
    assert "float32" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.tflite"), "-i", str(f)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_backend_c_agrees_with_reference(kws):
    """The "c" backend (registered by edgeforge.codegen.host) gives the reference's bytes."""
    require("gcc")
    model, sample = kws
    x = np.load(sample)
    assert "c" in BACKENDS
    for numerics in ("tflm", "litert"):
        np.testing.assert_array_equal(run(model, x, backend="c", numerics=numerics)[0],
                                      run(model, x, numerics=numerics)[0])


def test_unknown_backend_is_a_clear_error(kws):
    model, sample = kws
    with pytest.raises(EdgeforgeError, match="unknown backend"):
        run(model, np.load(sample), backend="tpu")


def test_edgeforge_executable(kws, tmp_path):
    # the console script pip installs (pip install -e .): on PATH or beside this python
    exe = shutil.which("edgeforge") or str(Path(sys.executable).with_name("edgeforge"))
    require(exe)
    model, sample = kws
    out = tmp_path / "o.npy"
    p = subprocess.run([exe, "run", str(model), "-i", str(sample), "-o", str(out)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert out.is_file()
