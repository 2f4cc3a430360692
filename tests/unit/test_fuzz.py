"""Seeded fuzzing of every reader of untrusted files (issue 10, "keep it that way").

Mutants of the fixtures and of small models (flipped bits, overwritten words, truncations,
spliced bytes) go through the .tflite and .onnx readers, the .npy/.npz reader, and a few
through `compile` end to end on the CLI. Each case must end one of two ways: a result, or one
EdgeforgeError; never another exception, a hang (SIGALRM per case), a signal, a traceback, or
a file written outside -o. A failure names the surface and the seed, so
`mutants(SURFACE_SEED, ...)` rebuilds the very bytes.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from edgeforge.errors import EdgeforgeError
from tests.conftest import ROOT, fixture

CASE_SECONDS = 20          # per in-process case; folding alone may take FOLD_SECONDS (2 s)


def mutants(seed: int, src: bytes, n: int) -> Iterator[tuple[int, bytes]]:
    """n seeded mutants of src: (case number, bytes)."""
    rng = np.random.default_rng(seed)
    words = [0, 1, 0x7F, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x40000000, 0x10000]
    for k in range(n):
        b = bytearray(src)
        for _ in range(int(rng.integers(1, 5))):
            kind = int(rng.integers(5))
            i = int(rng.integers(len(b)))
            if kind == 0:                                   # one bit
                b[i] ^= 1 << int(rng.integers(8))
            elif kind == 1:                                 # one byte
                b[i] = int(rng.integers(256))
            elif kind == 2 and i + 4 <= len(b):             # an interesting 32-bit word
                b[i:i + 4] = int(words[int(rng.integers(len(words)))]).to_bytes(4, "little")
            elif kind == 3:                                 # truncate
                del b[max(i, 8):]
            elif i + 8 <= len(b):                           # copy a chunk elsewhere
                j = int(rng.integers(len(b) - 8))
                b[j:j + 8] = b[i:i + 8]
        yield k, bytes(b)


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    def on_alarm(signum, frame):
        raise TimeoutError(f"{what}: no answer within {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def fuzz(tmp_path: Path, surface: str, seed: int, src: bytes, n: int, suffix: str,
         read: Callable[[Path], object]) -> dict[str, int]:
    """Run `read` on n mutants; fail on anything but a result or one EdgeforgeError."""
    path = tmp_path / f"m{suffix}"
    seen = {"ok": 0, "error": 0}
    for k, raw in mutants(seed, src, n):
        path.write_bytes(raw)
        case = f"{surface} seed {seed} case {k}"
        try:
            with deadline(CASE_SECONDS, case), np.errstate(all="ignore"):
                read(path)
            seen["ok"] += 1
        except EdgeforgeError as e:
            assert str(e).startswith(str(path)) or str(path) in str(e), (case, str(e))
            seen["error"] += 1
        except Exception as e:  # noqa: BLE001 - exactly what this test exists to catch
            pytest.fail(f"{case}: {type(e).__name__}: {e}")
    return seen


# ---------------------------------------------------------------- small models to mutate
def small_onnx(path: Path) -> Path:
    """Conv -> Relu -> MaxPool -> Flatten -> Gemm -> Softmax with tiny weights, so most
    mutated bytes land in the graph structure, not in weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b"),
             numpy_helper.from_array(rng.normal(size=(3, 8)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw"], ["g"], transB=1, name="fc"),
             helper.make_node("Softmax", ["g"], ["y"], axis=1, name="softmax")]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 3])], initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def small_tflite(tmp_path: Path) -> Path:
    """small_onnx quantized to an int8 .tflite by compile (its DIR/model.tflite)."""
    from edgeforge.compiler import compile_model
    calib = np.random.default_rng(1).normal(size=(32, 4, 4, 1)).astype(np.float32)
    res = compile_model(small_onnx(tmp_path / "small.onnx"), tmp_path / "small",
                        calib={"x": calib})
    return res.dir / "model.tflite"


# ---------------------------------------------------------------- the readers, in process
def _load(p: Path) -> object:
    from edgeforge.frontends import load
    return load(p)


@pytest.mark.parametrize("name, seed, n", [("kws_ds_cnn_int8.tflite", 101, 150),
                                           ("ic_resnet8_int8.tflite", 102, 100),
                                           ("small", 103, 250)])
def test_fuzz_tflite_reader(tmp_path, name, seed, n):
    src = small_tflite(tmp_path) if name == "small" else fixture(name)
    seen = fuzz(tmp_path, f"tflite {name}", seed, src.read_bytes(), n, ".tflite", _load)
    assert seen["error"] > 0                       # the mutants did reach the checks


@pytest.mark.parametrize("name, seed, n", [("digits", 201, 150), ("small", 202, 300),
                                           ("tf2onnx_nhwc", 203, 150)])
def test_fuzz_onnx_reader(tmp_path, name, seed, n):
    src = {"digits": ROOT / "examples" / "digits" / "digits.onnx",
           "tf2onnx_nhwc": ROOT / "tests" / "models" / "tf2onnx_nhwc.onnx"}.get(name)
    src = src or small_onnx(tmp_path / "small.onnx")
    seen = fuzz(tmp_path, f"onnx {name}", seed, src.read_bytes(), n, ".onnx", _load)
    assert seen["error"] > 0


def _read_npy(p: Path) -> object:
    from edgeforge.arrays import read_npy
    return read_npy(p)


@pytest.mark.parametrize("kind, seed", [("npy", 301), ("npy-fortran", 302), ("npz", 303),
                                        ("npz-compressed", 304)])
def test_fuzz_npy_reader(tmp_path, kind, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, 5, 2)).astype(np.float32)
    f = tmp_path / "src"
    if kind == "npy":
        np.save(f.with_suffix(".npy"), a)
    elif kind == "npy-fortran":
        np.save(f.with_suffix(".npy"), np.asfortranarray(a.astype(">i2")))
    elif kind == "npz":
        np.savez(f.with_suffix(".npz"), x=a, y=np.arange(7))
    else:
        np.savez_compressed(f.with_suffix(".npz"), x=a, y=np.arange(7))
    suffix = ".npz" if kind.startswith("npz") else ".npy"
    src = f.with_suffix(suffix).read_bytes()
    seen = fuzz(tmp_path, f"npy {kind}", seed, src, 300, suffix, _read_npy)
    assert seen["error"] > 0 and seen["ok"] > 0


# ---------------------------------------------------------------- compile, end to end
def test_fuzz_compile_cli(tmp_path):
    """A few mutants through `python -m edgeforge.cli compile` each: exit 0 or 2, one error
    line (an unsupported-op list continues on indented lines), no traceback, no signal, no
    hang, nothing written outside -o."""
    work = tmp_path / "work"
    work.mkdir()
    cases = [(small_tflite(tmp_path).read_bytes(), ".tflite", 401, 2),
             (small_onnx(tmp_path / "s.onnx").read_bytes(), ".onnx", 402, 2),
             (fixture("kws_ds_cnn_int8.tflite").read_bytes(), ".tflite", 403, 1)]
    np.save(tmp_path / "calib.npy",
            np.random.default_rng(2).normal(size=(32, 4, 4, 1)).astype(np.float32))
    codes = []
    for src, suffix, seed, n in cases:
        for k, raw in mutants(seed, src, n):
            m = work / f"m{suffix}"
            m.write_bytes(raw)
            before = sorted(p.name for p in work.iterdir())
            r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", m, "-o",
                                work / "out", "--calib", tmp_path / "calib.npy"],
                               cwd=work, capture_output=True, text=True, timeout=120,
                               check=False)
            case = f"compile seed {seed} case {k}: rc {r.returncode}: {r.stderr[-2000:]}"
            assert r.returncode in (0, 2), case               # < 0 would be a signal
            assert "Traceback" not in r.stderr, case
            lines = r.stderr.strip().splitlines()
            if r.returncode == 2:
                assert lines and "error:" in lines[0], case
                assert all(ln.startswith("  ") for ln in lines[1:]), case
            after = sorted(p.name for p in work.iterdir())
            assert sorted(set(after) - {"out"}) == before, case   # only -o may appear
            if (work / "out").exists():
                shutil.rmtree(work / "out")
            codes.append(r.returncode)
    assert 2 in codes


# ---------------------------------------------------------------- compile, in a worker process
def compile_worker(work: str, seed: int, n: int) -> None:
    """Compile n mutants of the small .tflite and n // 2 of the small .onnx in this process,
    printing each case first: a crash (LiteRT aborts) then names the case that did it."""
    import traceback

    from edgeforge.compiler import compile_model
    w = Path(work)
    calib = {"x": np.random.default_rng(1).normal(size=(32, 4, 4, 1)).astype(np.float32)}
    srcs = [(small_tflite(w).read_bytes(), ".tflite", seed, n),
            (small_onnx(w / "s.onnx").read_bytes(), ".onnx", seed + 1, n // 2)]
    for src, suffix, s, count in srcs:
        for k, raw in mutants(s, src, count):
            print(f"case seed {s} case {k}", flush=True)
            m = w / f"m{suffix}"
            m.write_bytes(raw)
            shutil.rmtree(w / "out", ignore_errors=True)
            try:
                with deadline(CASE_SECONDS, f"seed {s} case {k}"), np.errstate(all="ignore"):
                    compile_model(m, w / "out", calib=calib if suffix == ".onnx" else None)
            except EdgeforgeError:
                pass
            except Exception:  # noqa: BLE001 - report it, with where it came from
                print("FAILED " + traceback.format_exc().replace("\n", " | "), flush=True)
    print("done", flush=True)


def test_fuzz_compile_in_a_worker(tmp_path):
    """Mutants that pass the readers go on through quantize, plan, codegen and LiteRT's
    Prepare: one EdgeforgeError or a DIR, never another exception or a crash (an int8
    tensor without a scale made LiteRT abort the process)."""
    code = (f"from tests.unit.test_fuzz import compile_worker; "
            f"compile_worker({str(tmp_path)!r}, 501, 120)")   # 501: case 14 made LiteRT abort
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, check=False)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and lines[-1:] == ["done"], (
        f"worker died (rc {r.returncode}) at {lines[-1:]}: {r.stderr[-1500:]}")
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    assert not failed, failed[0][:3000]
