"""int16 graph I/O in compiled DIRs: the TFLite converter's 16x8 models (int16 inputs and
outputs, tests/models/int16) compile, and the C package, TFLM and LiteRT on DIR/model.tflite
equal the reference byte for byte; model.h's float helpers quantize and dequantize int16 as
edgeforge.qmath does; `edgeforge run` takes and writes int16 .npy; int8 headers are unchanged."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.qmath import dequantize, quantize
from edgeforge.runtime import reference
from tests.conftest import require

MODELS = Path(__file__).resolve().parents[1] / "models"
CASES = ["small_cnn", "softmax", "add", "fc_bias_relu", "logistic"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("io16")
    return {n: compile_model(MODELS / "int16" / f"{n}.tflite", root / n) for n in CASES}


def _samples(g, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for name in g.inputs:
        t = g.tensors[name]
        lim = np.iinfo(t.dtype)
        out.append(rng.integers(lim.min, lim.max + 1, (n, *t.shape)).astype(t.dtype))
    return out


@pytest.mark.parametrize("name", CASES)
def test_converter_16x8_dir_c_tflm_litert_equal_reference(dirs, name):
    require("gcc", "tflite_micro", "ai_edge_litert")
    from edgeforge.codegen.host import CModel
    from edgeforge.runtime import peers
    res = dirs[name]
    path = res.dir / "model.tflite"
    g = load(path)
    assert {g.tensors[n].dtype for n in g.inputs + g.outputs} == {"int16"}
    assert {t.dtype for t in res.manifest.inputs + res.manifest.outputs} == {"int16"}
    xs = _samples(g, 3, 7)
    c = CModel(res.dir).run_batch(xs)[0]
    assert c.dtype == np.int16
    tflm, lit = peers.TflmRunner(path), peers.LitertRunner(path)
    for k in range(3):
        x = [a[k] for a in xs]
        want = reference.run(g, x)[g.outputs[0]]
        np.testing.assert_array_equal(c[k].reshape(want.shape), want)
        np.testing.assert_array_equal(tflm.run(x)[0].reshape(want.shape), want)
        lw = reference.run(g, x, numerics="litert")[g.outputs[0]]
        np.testing.assert_array_equal(lit.run(x)[0].reshape(want.shape), lw)


HELPER_MAIN = r"""
#include <stdio.h>
#include <math.h>
#include "model.h"
int main(void)
{
    static float x[EF_MODEL_INPUT0_BYTES / 2], y[EF_MODEL_OUTPUT0_BYTES / 2];
    const int32_t n = EF_MODEL_INPUT0_BYTES / EF_MODEL_INPUT0_ELEM_BYTES;
    const int32_t m = EF_MODEL_OUTPUT0_BYTES / EF_MODEL_OUTPUT0_ELEM_BYTES;
    int32_t k;
    for (k = 0; k < n; ++k) if (scanf("%f", &x[k]) != 1) return 3;
    if (ef_model_input_from_float(0, x, n + 1) != -1) return 4;   /* one past: refused */
    if (ef_model_input_from_float(0, x, n) != 0) return 5;
    for (k = 0; k < n; ++k) printf("%d\n", ef_model_input(0)[k]);
    for (k = 0; k < m; ++k) ef_model_output(0)[k] = (int16_t)(k * 4099 - 32768);
    if (ef_model_output_to_float(0, y, m) != 0) return 6;
    for (k = 0; k < m; ++k) printf("%.9g\n", (double)y[k]);
    return 0;
}
"""


def test_float_helpers_quantize_int16_as_qmath(dirs, tmp_path):
    """Halves, saturation far past int16 and the largest floats: the C helper's int16
    equals qmath.quantize (TFLite rounding), and output_to_float equals dequantize."""
    require("gcc")
    res = dirs["small_cnn"]
    spec, ospec = res.manifest.inputs[0], res.manifest.outputs[0]
    n, m = int(np.prod(spec.shape)), int(np.prod(ospec.shape))
    s = np.float32(spec.scale)
    rng = np.random.default_rng(1)
    special = np.array([0.5, -0.5, 1.5, -2.5, 32767.5, -32768.5, 40000, -1e6, 3e38, -3e38],
                       np.float32) * s
    x = np.concatenate([special, rng.normal(0, 20000, n) * s]).astype(np.float32)[:n]
    src = tmp_path / "main.c"
    src.write_text(HELPER_MAIN)
    exe = tmp_path / "helpers"
    c = res.dir / "c"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Werror", "-I", str(c),
                    *map(str, sorted(c.glob("*.c"))), str(src), "-o", str(exe), "-lm"],
                   check=True, capture_output=True, text=True)
    r = subprocess.run([str(exe)], input="\n".join(f"{v:.9g}" for v in x), capture_output=True,
                       text=True, check=False, timeout=30)
    assert r.returncode == 0, r.stderr
    vals = r.stdout.split()
    got = np.array([int(v) for v in vals[:n]], np.int64)
    np.testing.assert_array_equal(got, quantize(x, float(spec.scale), 0, "int16"))
    q = (np.arange(m) * 4099 - 32768).astype(np.int16)
    np.testing.assert_allclose(np.array(vals[n:n + m], np.float64),
                               dequantize(q, ospec.scale, 0), rtol=1e-6)


def test_cli_run_takes_and_writes_int16_npy(dirs, tmp_path):
    require("gcc")
    from tests.unit.test_cli_errors import cli, user_error
    res = dirs["small_cnn"]
    g = load(res.dir / "model.tflite")
    x = _samples(g, 1, 3)[0][0]
    np.save(tmp_path / "x.npy", x)
    want = reference.run(g, [x])[g.outputs[0]]
    for backend in ("reference", "c"):
        out = tmp_path / f"y_{backend}.npy"
        r = cli("run", res.dir, "-i", tmp_path / "x.npy", "--backend", backend, "-o", out)
        assert r.returncode == 0, r.stderr
        y = np.load(out)
        assert y.dtype == np.int16
        np.testing.assert_array_equal(y.reshape(want.shape), want)
    np.save(tmp_path / "xf.npy", x.astype(np.float32))
    r = cli("run", res.dir, "-i", tmp_path / "xf.npy")
    user_error(r, "int16", "quantize it")


def test_int8_header_keeps_its_int8_api(tmp_path):
    """An int8 model's model.h says nothing of element types (its bytes are unchanged)."""
    src = MODELS / "fc_autoencoder_int8.tflite"
    res = compile_model(src, tmp_path / "d")
    h = (res.dir / "c" / "model.h").read_text()
    assert "int8_t *ef_model_input(int i);" in h and "int8_t *ef_model_output(int i);" in h
    assert "_ELEM_BYTES" not in h and "_TYPE " not in h and "int16_t" not in h


def test_validate_and_run_c_take_a_16x8_model_file(dirs, tmp_path):
    """A converter 16x8 .tflite is quantized (not float): validate compiles it without
    calibration and quantizes float x to its int16 input; run --backend c compiles it first."""
    require("gcc")
    import edgeforge
    from edgeforge.cli.validate import render
    src = MODELS / "int16" / "small_cnn.tflite"
    g = load(src)
    t = g.tensors[g.inputs[0]]
    x = np.random.default_rng(5).normal(0, 1, (4, *t.shape[1:])).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    for model in (src, dirs["small_cnn"].dir):
        v = edgeforge.validate(model, tmp_path / "d.npz")
        assert v["samples"] == 4 and v["float_model"] is None
        assert v["quantized"] == "int16"          # was labelled int8
        assert "int16 numerics" in render(v)[0] and "int8" not in "\n".join(render(v))
    xq = quantize(x[:1], float(t.quant.scale[0]), 0, "int16")
    from edgeforge.runner import run
    y = run(src, xq, backend="c")[0]
    np.testing.assert_array_equal(y, reference.run(g, [xq])[g.outputs[0]])


def test_validate_names_a_16x8_dir_by_its_precision(tmp_path):
    """validate on a DIR compiled with --activations int16 (float source present): the
    quantized run is compared with float as "int16", not "int8"; a mixed graph's name is
    "int8+int16"."""
    from edgeforge.cli.validate import render
    from edgeforge.validation import precision, validate
    from tests.c.test_kernels_s16 import int8_io
    digits = Path(__file__).resolve().parents[2] / "examples" / "digits"
    res = compile_model(digits / "digits.onnx", tmp_path / "d", calib=digits / "calib.npz",
                        activations="int16")
    d = np.load(digits / "test.npz")
    np.savez(tmp_path / "t.npz", x=d["x"][:20], y=d["y"][:20])
    r = validate(res.dir, tmp_path / "t.npz")
    assert r["quantized"] == "int16" and set(r["comparisons"]) == {"int16"}
    assert r["comparisons"]["int16"]["vs"] == "float"
    assert set(r["vs_labels"]) == {"float", "int16"}
    assert "int16 numerics" in render(r)[0]
    g = load(MODELS / "int16" / "small_cnn.tflite")
    assert (precision(g), precision(int8_io(g))) == ("int16", "int8+int16")


# The Arduino core's Arduino.h, reduced to the calls the generated sketch makes (no Arduino
# toolchain here); Serial.print(float) prints two decimals, as the core's does.
ARDUINO_H = """#include <stdint.h>
#include <stdio.h>
struct EfSerial {
  void begin(long) {}
  void print(const char *s) { printf("%s", s); }
  void print(char c) { putchar(c); }
  void print(int v) { printf("%d", v); }
  void print(double v) { printf("%.2f", v); }
  void println() { putchar('\\n'); }
  void println(int v) { printf("%d\\n", v); }
};
static EfSerial Serial __attribute__((unused));
static inline void delay(unsigned long) {}
"""


@pytest.mark.parametrize("kind", ["int8", "int16"])
def test_arduino_sketch_builds_runs_and_namespaces_kernels(kind, dirs, tmp_path):
    """DIR/arduino/ef_model as the Arduino IDE builds it: src/*.c (EF_NAMESPACE_KERNELS is
    baked into ef_kernels.h) and examples/ef_model/ef_model.ino as C++ on Arduino.h. Every
    kernel symbol carries the profile (the 16x8 ones did not), and one loop() prints the
    reference's output 0 for a zero input."""
    require("gcc", "g++", "nm")
    if kind == "int8":
        digits = Path(__file__).resolve().parents[2] / "examples" / "digits"
        d = compile_model(digits / "digits.onnx", tmp_path / "d8",
                          calib=digits / "calib.npz").dir
    else:
        d = dirs["small_cnn"].dir
    lib = d / "arduino" / "ef_model"
    src, obj = lib / "src", tmp_path / "obj"
    obj.mkdir()
    strict = ["-Wall", "-Wextra", "-Werror", "-O1"]
    cs = sorted(src.glob("*.c"))
    subprocess.run(["gcc", "-std=c99", *strict, "-c", f"-I{src}", *map(str, cs)], cwd=obj,
                   check=True, timeout=300)
    for o in sorted(obj.glob("*.o")):
        syms = subprocess.run(["nm", "-g", "--defined-only", str(o)], capture_output=True,
                              text=True, check=True).stdout.split()[2::3]
        prefix = "ef_model_" if o.stem in ("model", "weights") else "ef_tflm_"
        assert syms and all(s.startswith(prefix) for s in syms), (o.name, syms)
    assert kind == "int8" or (obj / "nn_s16.o").is_file()
    (tmp_path / "Arduino.h").write_text(ARDUINO_H)
    (tmp_path / "main.cpp").write_text("void setup();\nvoid loop();\n"
                                       "int main() { setup(); loop(); return 0; }\n")
    exe = tmp_path / "sketch"
    subprocess.run(["g++", "-std=c++11", *strict, f"-I{tmp_path}", f"-I{src}", "-include",
                    "Arduino.h", "-x", "c++", str(lib / "examples" / "ef_model" / "ef_model.ino"),
                    "-x", "none", str(tmp_path / "main.cpp"), *map(str, obj.glob("*.o")),
                    "-o", str(exe)], check=True, timeout=300)
    printed = np.array(subprocess.run([str(exe)], capture_output=True, text=True, check=True,
                                      timeout=60).stdout.split(), np.float64)
    g = load(d / "model.tflite")
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    x = quantize(np.zeros(t_in.shape, np.float32), float(t_in.quant.scale[0]),
                 int(t_in.quant.zero_point[0]), t_in.dtype)
    y = reference.run(g, [x])[g.outputs[0]]
    want = dequantize(y, float(t_out.quant.scale[0]), int(t_out.quant.zero_point[0]))
    assert kind == t_out.dtype and printed.size == y.size
    np.testing.assert_allclose(printed, want.ravel(), atol=0.0051)
