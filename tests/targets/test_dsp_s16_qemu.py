"""The 16x8 DSP kernels (runtime/c/kernels/dsp/nn_s16.c) on the emulated Cortex-M4 (QEMU
mps2-an386): resnet_tiny.onnx compiled with --activations int16, built with the dsp and the
ref kernel sets; both firmwares equal the host reference byte for byte, and the dsp one
counts fewer instructions, in total and on every 16x8 CONV2D / FC."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.targets.profile import profile
from tests.conftest import require

SRC = Path(__file__).resolve().parents[1] / "models" / "resnet_tiny.onnx"


def test_16x8_dsp_firmware_equals_ref_and_counts_fewer_instructions(tmp_path):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    g = load(SRC)
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1, (64, *shape[1:])).astype(np.float32))
    res = compile_model(SRC, tmp_path / "dir", calib=tmp_path / "calib.npz",
                        activations="int16")
    dt = res.manifest.inputs[0].dtype
    lim = np.iinfo(dt)
    x = rng.integers(lim.min, lim.max + 1, (2, *shape)).astype(dt)
    out = {k: profile(res.dir, "qemu://mps2-an386", runs=1, warmup=0, inputs=x,
                  keep_outputs=True, kernels=k)
           for k in ("ref", "dsp")}
    for k, o in out.items():
        assert o["outputs_match_reference"] is True, (k, o["mismatches"])
    for a, b in zip(out["dsp"]["outputs"], out["ref"]["outputs"]):
        assert [t.tobytes() for t in a] == [t.tobytes() for t in b]
    dsp, ref = out["dsp"]["instructions"]["p50"], out["ref"]["instructions"]["p50"]
    print(f"16x8 resnet_tiny instructions dsp/ref = {dsp}/{ref} = {dsp / ref:.3f}")
    assert dsp / ref < 1
    hot = 0
    for a, b in zip(out["dsp"]["per_op"], out["ref"]["per_op"]):
        assert a["op"] == b["op"]
        if a["op"] in ("CONV2D", "FC"):
            hot += 1
            assert a["instructions"] < b["instructions"], (a, b)
    assert hot > 0


def test_16x8_dsp_depthwise_on_qemu(tmp_path):
    """The DSP 16x8 DEPTHWISE_CONV_2D on the board: VWW's 3x3 (16 channels, padded) and a
    dilated 3x2 over 7 channels (the C % 4 tail), each a compiled DIR (int8 I/O around the
    int16 layer); both firmwares equal the reference, the dsp depthwise counts fewer."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    from edgeforge.codegen.tflite import write_tflite
    from tests.c.test_dsp_kernels_s16 import OWN
    rng = np.random.default_rng(9)
    for name in ("dw3_pad", "dw_tail_dil"):
        src = write_tflite(OWN[name], tmp_path / f"{name}.tflite")
        res = compile_model(src, tmp_path / name)
        shape = res.manifest.inputs[0].shape
        x = rng.integers(-128, 128, (2, *shape)).astype(np.int8)
        out = {k: profile(res.dir, "qemu://mps2-an386", runs=1, warmup=0, inputs=x,
                          kernels=k) for k in ("ref", "dsp")}
        for k, o in out.items():
            assert o["outputs_match_reference"] is True, (name, k, o["mismatches"])
        dw = {k: sum(r["instructions"] for r in o["per_op"] if r["op"] == "DWCONV2D")
              for k, o in out.items()}
        assert 0 < dw["dsp"] < dw["ref"], (name, dw)
