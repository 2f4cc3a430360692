"""Poison tests: the generated C, with every arena byte the plan calls free overwritten with
garbage after every op, still gives the reference's exact output bytes.

An instrumented build defines EF_OP_END(i) as ef_poison_after(i), which fills the free
ranges of step i (from GraphPlan.free_after, i.e. the plan itself) with pseudo-random bytes;
before the first op the whole arena is garbage except the inputs. Any tensor the plan
forgets to keep alive, any scratch assumed to persist, and any in-place overlap whose lag is
too small shows up as a byte mismatch against runtime.reference. Two negative controls
prove the harness can see both kinds of bug.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgeforge.frontends import load
from edgeforge.ir import Graph
from edgeforge.plan.memory import GraphPlan, plan_graph
from edgeforge.runtime.reference import run as ref_run
from tests.c.cbuild import split_samples
from tests.conftest import fixture, require
from tests.unit.test_plan_props import random_int8_graph

HOOK_H = """#ifndef EF_POISON_HOOK_H
#define EF_POISON_HOOK_H
void ef_poison_after(int i);
#define EF_OP_END(i) ef_poison_after(i)
#endif
"""

HARNESS_C = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "model.h"

static uint32_t ef_rng_ = 0x9e3779b9u;
static void ef_fill(uint8_t *p, int32_t n)
{
    for (int32_t k = 0; k < n; ++k) {
        ef_rng_ = ef_rng_ * 1664525u + 1013904223u;
        p[k] = (uint8_t)(ef_rng_ >> 24);
    }
}

void ef_poison_after(int i)
{
#ifdef EF_POISON
    uint8_t *a = ef_model_arena();
    for (int32_t k = ef_free_idx_[i]; k < ef_free_idx_[i + 1]; ++k) {
        ef_fill(a + ef_free_[k][0], ef_free_[k][1]);
    }
#else
    (void)i;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    FILE *fi = fopen(argv[1], "rb"), *fo = fopen(argv[2], "wb");
    if (!fi || !fo) return 3;
    for (;;) {
        ef_fill(ef_model_arena(), EF_MODEL_ARENA_SIZE);
        for (int i = 0; i < EF_MODEL_NUM_INPUTS; ++i) {
            size_t n = (size_t)EF_MODEL_INPUT_BYTES(i);
            if (fread(EF_MODEL_INPUT(i), 1, n, fi) != n) { fclose(fo); return 0; }
        }
        int rc = EF_MODEL_INVOKE();
        if (rc != 0) return 10 + rc;
#ifdef EF_INVOKE_TWICE
        rc = EF_MODEL_INVOKE();          /* inputs not rewritten: they must have survived */
        if (rc != 0) return 10 + rc;
#endif
        for (int i = 0; i < EF_MODEL_NUM_OUTPUTS; ++i) {
            fwrite(EF_MODEL_OUTPUT(i), 1, (size_t)EF_MODEL_OUTPUT_BYTES(i), fo);
        }
    }
}
"""


def free_table(plan: GraphPlan, graph: Graph, lie: dict[int, list[tuple[int, int]]] | None = None,
               keep_inputs: bool = False) -> str:
    """C tables of the bytes free after each step: ef_free_[k] = {start, len}, step i owns
    rows ef_free_idx_[i] .. ef_free_idx_[i+1]. `lie` adds ranges (negative controls)."""
    rows, idx = [], [0]
    keep = graph.outputs + (graph.inputs if keep_inputs else [])
    for i in range(len(graph.nodes)):
        ranges = plan.free_after(i, keep) + list((lie or {}).get(i, []))
        rows += [f"{{{a}, {b - a}}}" for a, b in ranges]
        idx.append(len(rows))
    rows = rows or ["{0, 0}"]
    return (f"static const int32_t ef_free_[{len(rows)}][2] = {{{', '.join(rows)}}};\n"
            f"static const int32_t ef_free_idx_[{len(idx)}] = {{{', '.join(map(str, idx))}}};\n")


def build(graph: Graph, plan, out: Path, table: str | None, patch=None, twice=False) -> Path:
    """emit_c + harness, compiled with gcc; `table` None = no poisoning; `patch(dir, plan,
    graph)` may edit the package before it is compiled; `twice`: invoke twice per sample,
    writing the inputs only before the first."""
    from edgeforge.codegen.c import emit_c
    emit_c(graph, plan, out)
    if patch is not None:
        patch(out, plan, graph)
    (out / "poison_hook.h").write_text(HOOK_H)
    pre = ("#define EF_POISON 1\n" + table) if table is not None else ""
    pre += "#define EF_INVOKE_TWICE 1\n" if twice else ""
    (out / "harness.c").write_text('#include "poison_hook.h"\n#include <stdint.h>\n' + pre
                                   + HARNESS_C)
    srcs = sorted(str(p) for p in out.glob("*.c"))
    exe = out / "run"
    cmd = ["gcc", "-std=c99", "-O2", "-w", "-I", str(out),  # warnings: tests/c/test_models.py
           "-include", str(out / "poison_hook.h"), *srcs, "-o", str(exe)]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return exe


def run_exe(exe: Path, graph: Graph, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    fin, fout = exe.parent / "in.bin", exe.parent / "out.bin"
    fin.write_bytes(b"".join(np.ascontiguousarray(x, np.int8).tobytes()
                             for s in samples for x in s))
    r = subprocess.run([str(exe), str(fin), str(fout)], check=False, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, f"harness exit {r.returncode}"
    raw = np.frombuffer(fout.read_bytes(), np.int8)
    shapes = [graph.tensors[o].shape for o in graph.outputs]
    per = sum(int(np.prod(s)) for s in shapes)
    assert raw.size == per * len(samples)
    return split_samples(raw, shapes, len(samples))


def inputs_for(graph: Graph, n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, size=graph.tensors[t].shape).astype(np.int8)
             for t in graph.inputs] for _ in range(n)]


def reference(graph: Graph, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    out = []
    for s in samples:
        r = ref_run(graph, s)
        out.append([np.asarray(r[o]) for o in graph.outputs])
    return out


def assert_same(got, want, what: str) -> None:
    for k, (g, w) in enumerate(zip(got, want)):
        for j, (a, b) in enumerate(zip(g, w)):
            assert np.array_equal(a, b), f"{what}: sample {k} output {j} differs " \
                f"({int(np.sum(a != b))} of {a.size} bytes)"


@pytest.fixture(scope="module")
def tools():
    require("gcc")


MODELS = {"kws": "kws_ds_cnn_int8.tflite", "resnet8": "ic_resnet8_int8.tflite"}


@pytest.mark.parametrize("kernels", [False, True], ids=["lag", "inplace_kernels"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_mlperf_poisoned_arena_is_bit_exact(tools, model, kernels, tmp_path):
    """As compiled (inplace_kernels: in-place variants, ResNet-8's blocks row by row) and
    with the raster-order lags alone."""
    g = load(fixture(MODELS[model]))
    plan = plan_graph(g, inplace_kernels=kernels)
    g = plan.schedule(g)
    assert any(s.used for s in plan.shares), "the plan should use in-place overlaps"
    assert bool(plan.fused) == (kernels and model == "resnet8")
    samples = inputs_for(g, 3, seed=1)
    if model == "kws":
        samples.append([np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy"))
                        .reshape(g.tensors[g.inputs[0]].shape)])
    want = reference(g, samples)
    exe = build(g, plan, tmp_path / "poison", free_table(plan, g))
    assert_same(run_exe(exe, g, samples), want, f"{model} poisoned")


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_poisoned_arena_is_bit_exact(tools, seed, tmp_path):
    g = random_int8_graph(1000 + seed)
    plan = plan_graph(g)
    g = plan.schedule(g)
    samples = inputs_for(g, 2, seed)
    want = reference(g, samples)
    exe = build(g, plan, tmp_path / "poison", free_table(plan, g))
    assert_same(run_exe(exe, g, samples), want, f"random graph {1000 + seed}")


def test_poison_catches_a_tensor_the_plan_forgets(tools, tmp_path):
    """Negative control 1: declare a live tensor free after its producer -> wrong output."""
    g = load(fixture(MODELS["kws"]))
    plan = plan_graph(g)
    victim = g.nodes[1].outputs[0]                      # read by node 2
    tp = plan.tensors[victim]
    samples = inputs_for(g, 2, seed=3)
    want = reference(g, samples)
    lie = {1: [(tp.offset, tp.offset + tp.size)]}
    exe = build(g, plan, tmp_path / "lie", free_table(plan, g, lie))
    got = run_exe(exe, g, samples)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(got, want))


def test_bit_exactness_catches_a_too_small_lag(tools, tmp_path):
    """Negative control 2: put a 3x3 conv's output one pixel row too high over its input
    (lag smaller than the rule derives) -> the kernel reads clobbered bytes."""
    g = load(fixture(MODELS["resnet8"]))
    plan = plan_graph(g)
    share = next(s for s in plan.shares if s.used and s.rule == "window_overlap")
    offsets = dict(plan.offsets)
    offsets[share.output] = offsets[share.input] + share.d + 32 * 16   # one row too close
    bad = SimpleNamespace(offsets=offsets, size=plan.size + 32 * 16)
    samples = inputs_for(g, 2, seed=4)
    want = reference(g, samples)
    exe = build(g, bad, tmp_path / "lag", None)
    got = run_exe(exe, g, samples)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(got, want))


@pytest.mark.parametrize("model", sorted(MODELS))
def test_mcu_ram_is_at_most_60pct_of_tflm(tools, model):
    """The issue's target: .data + .bss of the generated C (arena included, and with it the
    kernels' working sets, as TFLM's arena holds its scratch buffers), compiled for a
    Cortex-M4, is at most 60% of TFLM's whole arena (head + tail) measured live. ResNet-8
    meets it by running its residual blocks row by row (plan.fuse): op by op its floor was
    the block input plus a conv's input and output at 32x32x16 (2 x 16,384 B) and that
    conv's working set, 0.60-0.62 of TFLM's 55,984 B."""
    require("arm-none-eabi-gcc", "arm-none-eabi-size", "tflite_micro")
    from benchmarks.arena import mcu_ram
    from edgeforge.runtime.peers import tflm_arena_bytes
    path = fixture(MODELS[model])
    g = load(path)
    plan = plan_graph(g, inplace_kernels=True)      # as `edgeforge compile` plans
    sizes = mcu_ram(plan.schedule(g), plan, "cortex-m4")
    assert sizes is not None and sizes["bss"] >= plan.arena_size
    tflm = tflm_arena_bytes(path)
    assert plan.arena_size <= tflm["head"]
    ratio = (sizes["data"] + sizes["bss"]) / tflm["total"]
    assert ratio <= 0.6, (sizes, tflm)


@pytest.mark.parametrize("preserve", [False, True])
def test_preserve_inputs_lets_the_caller_invoke_again(tools, preserve, tmp_path):
    """By default the inputs' bytes are reused (write them before every invoke, as with TFLM);
    preserve_inputs=True keeps them, so a second invoke without rewriting gives the same."""
    g = load(fixture(MODELS["resnet8"]))
    plan = plan_graph(g, preserve_inputs=preserve)
    samples = inputs_for(g, 2, seed=6)
    want = reference(g, samples)
    exe = build(g, plan, tmp_path / "twice", free_table(plan, g, keep_inputs=preserve),
                twice=True)
    same = all(np.array_equal(a[0], b[0]) for a, b in zip(run_exe(exe, g, samples), want))
    assert same == preserve


def test_arena_benchmark_reports_every_column(tools, capsys):
    require("arm-none-eabi-gcc", "arm-none-eabi-size", "tflite_micro")
    import json

    from benchmarks.arena import main
    assert main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == [MODELS["kws"], MODELS["resnet8"]]
    for r in rows:
        assert r["arena"] <= r["arena_lag_only"] <= r["arena_no_overlap"] == r["lower_bound_ws"]
        assert r["lower_bound_ws"] >= r["lower_bound"]
        assert r["tflm_head"] + r["tflm_tail"] == r["tflm_total"]
        assert r["ram_total"] == r["data"] + r["bss"] >= r["arena"]
    # both meet the 0.6 target (ResNet-8 with its blocks row by row: plan.fuse)
    assert rows[0]["ram_vs_tflm"] <= 0.6 and rows[1]["ram_vs_tflm"] <= 0.6
    assert rows[0]["arena"] < rows[0]["lower_bound"]       # KWS: strictly under the bound
