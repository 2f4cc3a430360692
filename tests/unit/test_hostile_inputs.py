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
