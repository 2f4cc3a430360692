"""Issue 10's crafted inputs, one test each: a model, data file or number that used to crash,
hang, overflow or be accepted silently is now one clear error (exit 2, one stderr line, no
traceback) before anything runs or is written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeforge.codegen.tflite import write_tflite
from edgeforge.ir import BinaryAttrs, Graph, Node, Op, QuantParams, Tensor
from tests.conftest import ROOT


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def user_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def int8_adds(path: Path, hw: int) -> Path:
    """x -> x + x -> (x + x) + x, int8 [1, hw, hw, 2]: no weights, activations as big as asked."""
    g = Graph(name="big")
    q = QuantParams(np.float32(0.05), 0)
    for t in "xyz":
        g.add_tensor(Tensor(t, (1, hw, hw, 2), "int8", q))
    g.nodes = [Node(Op.ADD, ("x", "x"), ("y",), BinaryAttrs()),
               Node(Op.ADD, ("y", "x"), ("z",), BinaryAttrs())]
    g.inputs, g.outputs = ["x"], ["z"]
    return write_tflite(g, path)


# ---------------------------------------------------------------- 2. planner / codegen limits
def test_arena_past_2_31_does_not_compile(tmp_path):
    """The issue's model: its C held int32_t offsets that wrapped, and run --backend c
    segfaulted. Now: one error at compile, nothing written."""
    m = int8_adds(tmp_path / "big.tflite", 24000)            # 1.15 GB per tensor
    user_error(cli("compile", m, "-o", tmp_path / "out"), "big.tflite",
               "arena of 2,304,000,000 B", "2,147,483,647 B the C package can address")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tflite"]


def test_one_tensor_past_2_31_does_not_compile(tmp_path):
    from edgeforge.plan.memory import PlanError, check_limits, plan_graph
    g = Graph()
    g.add_tensor(Tensor("x", (1, 1 << 16, 1 << 16, 1), "int8"))
    g.add_tensor(Tensor("w", (1 << 16, 1 << 16), "int8", data=np.zeros(1, np.int8)))
    plan = plan_graph(Graph(), inplace_kernels=True)
    with pytest.raises(PlanError, match="tensor 'x' .* past the 2,147,483,647 B"):
        check_limits(plan, g, "m.tflite")


def test_arena_past_the_boards_ram_does_not_compile(tmp_path):
    m = int8_adds(tmp_path / "big.tflite", 400)               # 320 KB per tensor
    user_error(cli("compile", m, "-o", tmp_path / "out", "--board", "rpi-pico"),
               "big.tflite", "arena of 640,000 B", "board rpi-pico has 270,336 B of RAM")
    assert not (tmp_path / "out").exists()
    r = cli("compile", m, "-o", tmp_path / "out")             # no board: the host can run it
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- 3. quantization parameters
def mutate_tflite(src: Path, dst: Path, fn) -> Path:
    """dst = src with fn applied to its schema object tree (ModelT)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    m = schema.ModelT.InitFromPackedBuf(Path(src).read_bytes(), 0)
    fn(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(b.Output())
    return dst


def _op(m, code: int):
    """The first operator of builtin `code` in subgraph 0 (FULLY_CONNECTED = 9)."""
    sg = m.subgraphs[0]
    return next(o for o in sg.operators
                if max(m.operatorCodes[o.opcodeIndex].builtinCode,
                       m.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode) == code)


def _output_q(m):
    sg = m.subgraphs[0]
    return sg.tensors[sg.outputs[0]].quantization


def _conv_weight(m):
    sg = m.subgraphs[0]
    return sg.tensors[_op(m, 3).inputs[1]]                    # CONV_2D's filter


def _set(obj, **kw):
    for k, v in kw.items():
        setattr(obj, k, v)


QUANT_MUTANTS = {
    "negative scale": (lambda m: _set(_output_q(m), scale=[-0.00390625]),
                       "quantization scale -0.00390625 (must be finite and > 0)"),
    "zero scale": (lambda m: _set(_output_q(m), scale=[0.0]), "quantization scale 0.0"),
    "nan scale": (lambda m: _set(_output_q(m), scale=[float("nan")]), "quantization scale nan"),
    "inf scale": (lambda m: _set(_output_q(m), scale=[float("inf")]), "quantization scale inf"),
    "zero point": (lambda m: _set(_output_q(m), zeroPoint=[200]),
                   "zero point 200 outside int8 [-128, 127]"),
    "per-channel length": (lambda m: _set(_conv_weight(m).quantization,
                                          scale=_conv_weight(m).quantization.scale[:-1],
                                          zeroPoint=[0]),
                           "63 per-channel scales for dimension 0 of size 64"),
    "quantized dimension": (lambda m: _set(_conv_weight(m).quantization, quantizedDimension=7),
                            "per-channel quantized dimension 7 of a 4-D tensor"),
    "zero point count": (lambda m: _set(_conv_weight(m).quantization, zeroPoint=[0, 0]),
                         "64 scales but 2 zero points"),
}


@pytest.mark.parametrize("case", QUANT_MUTANTS)
def test_bad_quantization_is_refused_by_the_reader(tmp_path, case):
    from edgeforge.errors import ModelError
    from edgeforge.frontends import load
    from tests.conftest import fixture
    fn, why = QUANT_MUTANTS[case]
    m = mutate_tflite(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "m.tflite", fn)
    with pytest.raises(ModelError, match="m.tflite: tensor [0-9]+ '.*': ") as e:
        load(m)
    assert why in str(e.value)


def test_negative_output_scale_never_reaches_litert(tmp_path):
    """The issue's model: run --backend litert died in LiteRT (rc 134, or its RuntimeError)."""
    from tests.conftest import fixture
    m = mutate_tflite(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "neg.tflite",
                      QUANT_MUTANTS["negative scale"][0])
    user_error(cli("run", m, "-i", fixture("kws_ds_cnn_sample_inputs_int8.npy"), "--backend",
                   "litert"), "neg.tflite", "tensor 34 'Identity'", "must be finite and > 0")


def _fc_bias_x1000(m):
    t = m.subgraphs[0].tensors[_op(m, 9).inputs[2]]
    t.quantization.scale = [s * 1000 for s in t.quantization.scale]


def test_a_model_litert_refuses_does_not_compile(tmp_path):
    """Valid quantization parameters LiteRT still refuses at Prepare (kernel_util.cc: the FC
    bias scale must be input * filter scale): compile says so with LiteRT's reason."""
    from edgeforge.compiler import compile_model
    from edgeforge.errors import ModelError
    from edgeforge.runtime.peers import LitertRunner
    from tests.conftest import fixture
    m = mutate_tflite(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "bias.tflite", _fc_bias_x1000)
    with pytest.raises(ModelError, match=r"bias.tflite: LiteRT refuses the model: .*"
                                         r"scale_diff .* \(FULLY_CONNECTED\) failed to prepare"):
        compile_model(m, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bias.tflite"]
    with pytest.raises(ModelError, match="LiteRT refuses the model") as e:
        LitertRunner(m)                                  # LiteRT's RuntimeError, wrapped
    assert "\n" not in str(e.value)
