"""The true in-place kernel variants (runtime/c/kernels/ref/ef_inplace.h): run over their own
input they give exactly the bytes of the out-of-place kernels (which tests/c checks against
runtime.reference), their scratch sizes equal the Python mirrors in sdk/plan/scratch.py,
and KWS planned with them runs bit-exact against runtime.reference under arena poisoning.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from edgeforge.frontends import load
from edgeforge.ir import Conv2dAttrs, DwConv2dAttrs, Graph, Node, Op, Tensor
from edgeforge.plan.memory import plan_graph
from edgeforge.plan.scratch import conv2d_1x1_inplace_scratch, dwconv2d_inplace_scratch
from tests.c.test_inplace_poison import (
    assert_same,
    build,
    free_table,
    inputs_for,
    reference,
    run_exe,
)
from tests.conftest import ROOT, fixture, require

REF = ROOT / "runtime" / "c" / "kernels" / "ref"
INC = ROOT / "runtime" / "c"

# (h, w, c, kh, kw, pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w) for depthwise;
# output dims == input dims, so the pads are "same"-like (any split is allowed)
DW_CASES = [(5, 5, 64, 3, 3, 1, 1, 1, 1, 1, 1), (7, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1),
            (6, 6, 5, 5, 5, 2, 2, 2, 2, 1, 1), (6, 5, 2, 3, 3, 2, 2, 2, 2, 2, 2),
            (4, 9, 8, 3, 1, 0, 0, 2, 0, 1, 1), (1, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1),
            (8, 3, 1, 5, 3, 4, 1, 0, 1, 1, 1)]
# (h, w, cin, cout) for the 1x1
PW_CASES = [(5, 5, 64, 64), (3, 4, 8, 3), (2, 7, 5, 5), (1, 1, 16, 1)]

TEST_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ef_inplace.h"

static uint32_t s_ = 12345u;
static int32_t rnd(int32_t lo, int32_t hi) { s_ = s_ * 1664525u + 1013904223u;
    return lo + (int32_t)((s_ >> 8) % (uint32_t)(hi - lo + 1)); }
static void fill(int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) p[i] = (int8_t)rnd(-128, 127);
}

static const int32_t DW[][11] = { DW_CASES };
static const int32_t PW[][4] = { PW_CASES };

int main(void)
{
    int32_t mult[256], shift[256], bias[256];
    for (int i = 0; i < 256; ++i) { mult[i] = rnd(1 << 30, 0x7fffffff); shift[i] = rnd(-9, 0);
                                    bias[i] = rnd(-3000, 3000); }
    const ef_quant q = {mult, shift};
    for (size_t k = 0; k < sizeof DW / sizeof DW[0]; ++k) {
        const int32_t *c = DW[k];
        ef_dims in = {1, c[0], c[1], c[2]}, wd = {1, c[3], c[4], c[2]};
        ef_dw_params p = {rnd(-20, 20), rnd(-20, 20), 1, {1, 1}, {c[5], c[6]}, {c[9], c[10]},
                          {-128, 127}};
        int32_t n = c[0] * c[1] * c[2], lag = (int32_t)(k % 3) * 16;
        int32_t nw = c[3] * c[4] * c[2];
        int8_t *x = malloc((size_t)(n + lag)), *ref = malloc((size_t)n), *w = malloc((size_t)nw);
        int32_t ss = ef_dwconv2d_inplace_s8_scratch_size(&p, &in);
        int8_t *buf = malloc((size_t)ss);
        ef_ctx ctx = {buf, ss};
        fill(w, nw);
        fill(x + lag, n);
        if (ef_dwconv2d_s8(&p, &q, &in, x + lag, &wd, w, bias, &in, ref) != EF_OK) return 2;
        /* in place: y == x (lag 0) or y up to 32 bytes below x */
        if (ef_dwconv2d_inplace_s8(&ctx, &p, &q, &in, x + lag, &wd, w, bias, &in, x)) return 3;
        if (memcmp(x, ref, (size_t)n) != 0) { printf("dw case %d differs\n", (int)k); return 1; }
        printf("dw %d scratch %d\n", (int)k, (int)ss);
        free(x); free(ref); free(w); free(buf);
    }
    for (size_t k = 0; k < sizeof PW / sizeof PW[0]; ++k) {
        const int32_t *c = PW[k];
        ef_dims in = {1, c[0], c[1], c[2]}, wd = {c[3], 1, 1, c[2]}, out = {1, c[0], c[1], c[3]};
        ef_conv_params p = {rnd(-20, 20), rnd(-20, 20), {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
        int32_t n = c[0] * c[1] * c[2], m = c[0] * c[1] * c[3];
        int8_t *x = malloc((size_t)n), *ref = malloc((size_t)m);
        int8_t *w = malloc((size_t)(c[2] * c[3]));
        int32_t ss = ef_conv2d_1x1_inplace_s8_scratch_size(&in);
        int8_t *buf = malloc((size_t)ss);
        ef_ctx ctx = {buf, ss};
        fill(w, c[2] * c[3]);
        fill(x, n);
        if (ef_conv2d_1x1_s8(NULL, &p, &q, &in, x, &wd, w, bias, &out, ref) != EF_OK) return 4;
        if (ef_conv2d_1x1_inplace_s8(&ctx, &p, &q, &in, x, &wd, w, bias, &out, x)) return 5;
        if (memcmp(x, ref, (size_t)m) != 0) { printf("pw case %d differs\n", (int)k); return 1; }
        printf("pw %d scratch %d\n", (int)k, (int)ss);
        free(x); free(ref); free(w); free(buf);
    }
    /* a too-small ctx is refused, not overrun */
    {
        int8_t b[4], x[75];
        ef_ctx small = {b, 4};
        ef_dims in = {1, 5, 5, 3}, wd = {1, 3, 3, 3};
        ef_dw_params p = {0, 0, 1, {1, 1}, {1, 1}, {1, 1}, {-128, 127}};
        if (ef_dwconv2d_inplace_s8(&small, &p, &q, &in, x, &wd, x, 0, &in, x) != EF_ERR_ARG) {
            return 6;
        }
    }
    return 0;
}
"""


def _rows(cases: list[tuple[int, ...]]) -> str:
    return ", ".join("{" + ", ".join(map(str, c)) + "}" for c in cases)


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory):
    require("gcc")
    d = tmp_path_factory.mktemp("inplace_kernels")
    src = TEST_C.replace("DW_CASES", _rows(DW_CASES)).replace("PW_CASES", _rows(PW_CASES))
    (d / "t.c").write_text(src)
    srcs = [REF / n for n in ("dwconv2d_inplace_s8.c", "conv2d_1x1_inplace_s8.c",
                              "dwconv2d_s8.c", "conv2d_1x1_s8.c")]
    exe = d / "t"
    r = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(INC),
                        "-I", str(REF), str(d / "t.c"), *map(str, srcs), "-o", str(exe)],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=60)
    return r


def test_inplace_kernels_match_the_out_of_place_ones(kernel_run):
    assert kernel_run.returncode == 0, kernel_run.stdout + kernel_run.stderr
    assert kernel_run.stdout.count("dw ") == len(DW_CASES)
    assert kernel_run.stdout.count("pw ") == len(PW_CASES)


def test_scratch_sizes_match_the_python_mirror(kernel_run):
    got = dict(re.findall(r"^(\w+ \d+) scratch (\d+)$", kernel_run.stdout, re.MULTILINE))
    for k, c in enumerate(DW_CASES):
        h, w, ch, kh, kw, pt, pl, pb, pr, dh, dw = c
        g = Graph()
        g.add_tensor(Tensor("x", (1, h, w, ch), "int8"))
        g.add_tensor(Tensor("y", (1, h, w, ch), "int8"))
        g.const("w", np.zeros((1, kh, kw, ch), np.int8))
        node = Node(Op.DWCONV2D, ("x", "w"), ("y",),
                    DwConv2dAttrs(pad=(pt, pl, pb, pr), dilation=(dh, dw)))
        assert int(got[f"dw {k}"]) == dwconv2d_inplace_scratch(node, g, "ref")
    for k, (h, w, cin, cout) in enumerate(PW_CASES):
        g = Graph()
        g.add_tensor(Tensor("x", (1, h, w, cin), "int8"))
        g.add_tensor(Tensor("y", (1, h, w, cout), "int8"))
        g.const("w", np.zeros((cout, 1, 1, cin), np.int8))
        node = Node(Op.CONV2D, ("x", "w"), ("y",), Conv2dAttrs())
        assert int(got[f"pw {k}"]) == conv2d_1x1_inplace_scratch(node, g, "ref")


def use_inplace_kernels(pkg, plan, graph) -> None:
    """Stand-in for codegen support where emit_c lacks it: point the planned nodes' calls at
    the in-place variants (ctx = arena + plan.scratch[out]) and ship their sources. A no-op
    when emit_c already calls them (it reads GraphPlan.kernels)."""
    src = (pkg / "model.c").read_text()
    if all(k in src for k in plan.kernels.values()):
        return
    for i, nd in enumerate(graph.nodes):
        out = nd.outputs[0]
        if out not in plan.kernels:
            continue
        off, size = plan.scratch[out]
        pat = re.compile(rf"(EF_OP_BEGIN\({i}\);[^\n]*\n\s*EF_TRY\()ef_\w+_s8\(")
        call = f"{plan.kernels[out]}(&(ef_ctx){{ef_arena_ + {off}, {size}}}, "
        src, n = pat.subn(lambda m, call=call: m.group(1) + call, src)
        assert n == 1, f"no call for node {i}"
    src = src.replace('#include "ef_kernels.h"',
                      '#include "ef_kernels.h"\n#include "ef_inplace.h"')
    (pkg / "model.c").write_text(src)
    for f in ("ef_inplace.h", "dwconv2d_inplace_s8.c", "conv2d_1x1_inplace_s8.c"):
        shutil.copy(REF / f, pkg / f)


def test_kws_with_inplace_kernels_is_bit_exact_under_poison(tmp_path):
    require("gcc")
    g = load(fixture("kws_ds_cnn_int8.tflite"))
    plan = plan_graph(g, inplace_kernels=True)
    assert plan.kernels and plan.arena_size < plan_graph(g).arena_size
    # the widest step is the first conv: its 490 B input, 8000 B output and the kernels'
    # working set (in the arena, not on the stack); the depthwise steps hold one
    # activation, a 7-pixel ring and their working set
    ws = {o: n for o, (_, n) in plan.scratch.items()}
    first = g.nodes[plan.order[0]].outputs[0]
    assert plan.arena_size <= max(490 + 8000 + ws.get(first, 0),
                                  8000 + max(ws.values())) + 16
    samples = inputs_for(g, 3, seed=5)
    want = reference(g, samples)
    exe = build(g, plan, tmp_path / "kws", free_table(plan, g), patch=use_inplace_kernels)
    assert_same(run_exe(exe, g, samples), want, "kws in-place kernels")


@pytest.mark.parametrize("seed", range(8))
def test_random_graphs_with_inplace_kernels_are_bit_exact_under_poison(seed, tmp_path):
    require("gcc")
    from tests.unit.test_plan_props import random_int8_graph
    g = random_int8_graph(2000 + seed, n_ops=6)
    plan = plan_graph(g, inplace_kernels=True)
    g = plan.schedule(g)
    samples = inputs_for(g, 2, seed)
    want = reference(g, samples)
    exe = build(g, plan, tmp_path / "rand", free_table(plan, g), patch=use_inplace_kernels)
    assert_same(run_exe(exe, g, samples), want, f"random graph {2000 + seed}")


def test_some_random_graphs_use_the_inplace_kernels():
    from tests.unit.test_plan_props import random_int8_graph
    used = [bool(plan_graph(random_int8_graph(2000 + s, n_ops=6), inplace_kernels=True).kernels)
            for s in range(8)]
    assert sum(used) >= 2, used
