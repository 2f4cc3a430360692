"""benchmarks/peers/tflm.py on a stub checkout: CI has no TFLM sources, so a few-file stand-in
with TFLM's API shape (MicroInterpreter, MicroMutableOpResolver, MicroProfilerInterface)
goes through the real build (the board's compiler and flags, our firmware template, the
linker script) and the real run on QEMU: INFO, WRITE_INPUT, INVOKE, READ_OUTPUT, per-op
counts from the profiler hooks, arena used and peak stack. The stub's "model" is y = ~x."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, require
from tests.targets.test_qemu import compile_fixture

sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
import tflm

MODEL = ROOT / "tests" / "models" / "fc_autoencoder_int8.tflite"

STUB = {
    "tensorflow/lite/micro/debug_log.h": """
#pragma once
#include <cstdarg>
#include <cstddef>
extern "C" {
void DebugLog(const char *format, va_list args);
int DebugVsnprintf(char *buffer, size_t buf_size, const char *format, va_list vlist);
}
""",
    "tensorflow/lite/micro/micro_profiler_interface.h": """
#pragma once
#include <stdint.h>
namespace tflite {
class MicroProfilerInterface {
 public:
  virtual ~MicroProfilerInterface() {}
  virtual uint32_t BeginEvent(const char *tag) = 0;
  virtual void EndEvent(uint32_t handle) = 0;
};
}
""",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h": """
#pragma once
enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 };
namespace tflite {
class MicroOpResolver {};
template <unsigned N> class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddFullyConnected() { return kTfLiteOk; }
};
}
""",
    "tensorflow/lite/micro/micro_interpreter.h": """
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
namespace tflite {
struct Model;
inline const Model *GetModel(const void *p) { return static_cast<const Model *>(p); }
struct StubTensor { union { int8_t *int8; } data; };
class MicroResourceVariables;
class MicroInterpreter {
 public:
  MicroInterpreter(const Model *m, const MicroOpResolver &, uint8_t *arena, size_t size,
                   MicroResourceVariables * = nullptr, MicroProfilerInterface *p = nullptr)
      : model_(reinterpret_cast<const volatile uint8_t *>(m)), arena_(arena), size_(size),
        prof_(p) {}
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  StubTensor *input(size_t) { return &in_; }
  StubTensor *output(size_t) { return &out_; }
  size_t arena_used_bytes() const { return 1280; }
 private:
  const volatile uint8_t *model_;
  uint8_t *arena_;
  size_t size_;
  MicroProfilerInterface *prof_;
  StubTensor in_, out_;
};
}
""",
    "tensorflow/lite/micro/micro_interpreter.cc": """
#include "tensorflow/lite/micro/micro_interpreter.h"
namespace tflite {
TfLiteStatus MicroInterpreter::AllocateTensors() {
  if (size_ < 1280 || model_[4] != 'T') return kTfLiteError;   // "TFL3" identifier
  in_.data.int8 = reinterpret_cast<int8_t *>(arena_);
  out_.data.int8 = reinterpret_cast<int8_t *>(arena_ + 640);
  return kTfLiteOk;
}
TfLiteStatus MicroInterpreter::Invoke() {
  uint32_t h = prof_ ? prof_->BeginEvent("STUB") : 0;
  for (int i = 0; i < 640; ++i) out_.data.int8[i] = static_cast<int8_t>(~in_.data.int8[i]);
  if (prof_) prof_->EndEvent(h);
  return kTfLiteOk;
}
}
""",
    "COMMIT": "0123456789abcdef0123456789abcdef01234567\n",
}
OTHERS = {"cmsis_nn": ["Include/arm_nnfunctions.h"], "cmsis": ["CMSIS/Core/Include/x.h"],
          "flatbuffers": ["include/flatbuffers/flatbuffers.h"],
          "gemmlowp": ["fixedpoint/fixedpoint.h"]}


@pytest.fixture(scope="module")
def stub(tmp_path_factory) -> tflm.Sources:
    root = tmp_path_factory.mktemp("stub")
    for rel, text in STUB.items():
        (root / "tflm" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "tflm" / rel).write_text(text)
    (root / "tflm" / "tensorflow/lite/micro/kernels").mkdir()
    for name, files in OTHERS.items():
        for rel in files:
            (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / name / rel).write_text("/* stub */\n")
    return tflm.Sources(*(root / n for n in ("tflm", "cmsis_nn", "cmsis", "flatbuffers",
                                               "gemmlowp")))


def test_peer_harness_builds_and_runs_a_stub_tflm_on_qemu(stub, tmp_path):
    require("arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm", "ai_edge_litert")
    d = compile_fixture(MODEL, tmp_path / "ae", "tflm")
    b = tflm.build(MODEL, d, stub, "cmsis_nn", tmp_path / "build")
    assert b["ops"] == ["FULLY_CONNECTED"] * 10
    assert b["commits"]["tflm"].startswith("0123456789ab")
    assert b["sizes"]["weights"] >= MODEL.stat().st_size      # the flatbuffer is the weights
    assert 0 < b["sizes"]["code"] < 64 * 1024
    x = np.random.default_rng(1).integers(-128, 128, (2, 1, 640)).astype(np.int8)
    r = tflm.measure(Path(b["elf"]), d, list(x), runs=2)
    for xi, out in zip(x, r["outputs"]):
        assert out[0].tobytes() == (~xi).tobytes()
    assert r["instructions"] > 640 and len(r["counts"]) == 2
    assert r["per_op"][0] > 0 and not any(r["per_op"][1:])   # one profiler event per run
    assert r["arena"] == 1280
    assert 0 < r["stack_peak"] < b["sizes"]["stack"]


def test_peer_harness_refuses_bad_checkouts_and_unknown_ops(stub, tmp_path):
    bad = tflm.Sources(tmp_path, stub.cmsis_nn, stub.cmsis, stub.flatbuffers, stub.gemmlowp)
    with pytest.raises(tflm.PeerError, match="--tflm .*micro_interpreter.h"):
        bad.check()
    with pytest.raises(tflm.PeerError, match="AddConv2D"):
        tflm.resolver_calls(["FULLY_CONNECTED", "CONV_2D"], stub.tflm)
    assert tflm.resolver_calls(["FULLY_CONNECTED"] * 3, stub.tflm) == ["AddFullyConnected"]
