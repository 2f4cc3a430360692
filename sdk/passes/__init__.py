"""Graph rewrites on the float IR, as ONE pipeline that reads top to bottom.

Each pass is `def pass_name(g: Graph) -> int` (number of changes); most are built from rewrite
rules `def rule(g, node) -> list[Node] | None` (sdk/passes/rewrite.py). They run on any
float IR: ONNX imports and float .tflite graphs alike. `run_passes` verifies the graph after
every pass and logs what each changed in graph.meta["passes"]:
    [{"name": str, "changes": int, "ops_before": {op: n}, "ops_after": {op: n}}, ...]
(sdk/report.py shows it in `edgeforge inspect`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeforge import ir
from edgeforge.ir import Graph, IRError
from edgeforge.passes.fold import (
    absorb_transpose_into_fc,
    cancel_transposes,
    fold_constants,
    merge_reshapes,
    remove_identity,
)
from edgeforge.passes.fuse import (
    batchnorm_to_affine,
    canonicalize_clip,
    div_by_sqrt_to_rsqrt,
    div_sub_to_mul_add,
    fold_affine_into_next,
    fold_batchnorm,
    fold_const_add_into_bias,
    fold_const_mul_into_weights,
    fuse_activation,
    fuse_pad,
    hard_sigmoid_to_relu6,
    matmul_add_to_fc,
    merge_clips,
    merge_const_chains,
)
from edgeforge.passes.rewrite import op_counts

Pass = Callable[[Graph], int]

PIPELINE: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),                  # const-only subgraphs -> tensors
    ("remove_identity", remove_identity),                # reshape-to-same, x*1, zero pad, ...
    ("cancel_transposes", cancel_transposes),            # T(q)∘T(p) -> one or none
    ("merge_reshapes", merge_reshapes),                  # R(R(x)) -> R(x)
    ("fold_batchnorm", fold_batchnorm),                  # BN into the conv/fc before it
    ("batchnorm_to_affine", batchnorm_to_affine),        # leftover BN -> MUL + ADD
    ("div_sub_to_mul_add", div_sub_to_mul_add),          # x/c -> x*(1/c), x-c -> x+(-c)
    ("div_by_sqrt_to_rsqrt", div_by_sqrt_to_rsqrt),      # x/SQRT(v) -> x*RSQRT(v)
    ("hard_sigmoid_to_relu6", hard_sigmoid_to_relu6),    # -> RELU6(6a*x + 6b) / 6
    ("merge_const_chains", merge_const_chains),          # (x*a)*b -> x*(ab), (x+a)+b
    ("matmul_add_to_fc", matmul_add_to_fc),              # MATMUL(x, const) -> FC
    ("absorb_transpose_into_fc", absorb_transpose_into_fc),  # flatten's NCHW order -> W cols
    ("fuse_pad", fuse_pad),                              # zero PAD -> conv pads
    ("fold_const_mul_into_weights", fold_const_mul_into_weights),
    ("fold_const_add_into_bias", fold_const_add_into_bias),
    ("fold_affine_into_next", fold_affine_into_next),    # leftover x*S+T -> unpadded conv/fc
    ("merge_clips", merge_clips),                        # clamp of clamp -> one CLIP
    ("canonicalize_clip", canonicalize_clip),            # CLIP(0,6) -> RELU6, CLIP(0,inf)
    ("fuse_activation", fuse_activation),                # RELU/RELU6/CLIP -> producer's act
    ("remove_identity_final", remove_identity),
]


def run_passes(g: Graph, verify: bool = True, dump: Any = None, *,
               pipeline: list[tuple[str, Pass]] | None = None) -> list[dict]:
    """Run PIPELINE in order on `g` (in place); return and store the log in g.meta["passes"].

    `verify` runs edgeforge.ir.verify after every pass and raises IRError naming the pass that broke
    the graph. `dump` is a directory (one text listing per pass, NN_name.txt) or a
    callable(name, g).
    """
    log: list[dict] = []
    for k, (name, fn) in enumerate(pipeline or PIPELINE):
        before = op_counts(g)
        changes = int(fn(g))
        if verify:
            try:
                ir.verify(g)
            except IRError as e:
                raise IRError(f"after pass {name}: {e}") from None
        log.append({"name": name, "changes": changes, "ops_before": before,
                    "ops_after": op_counts(g)})
        if dump is not None:
            _dump(dump, k, name, g)
    g.meta["passes"] = g.meta.get("passes", []) + log
    return log


def _dump(dump: Any, k: int, name: str, g: Graph) -> None:
    if callable(dump):
        dump(name, g)
        return
    d = Path(dump)
    d.mkdir(parents=True, exist_ok=True)
    lines = [f"# after {name}: {len(g.nodes)} nodes"]
    for i, n in enumerate(g.nodes):
        lines.append(f"{i:4d} {n.op.value:12s} {', '.join(n.inputs)} -> {', '.join(n.outputs)}"
                     f"  {n.attrs}")
    (d / f"{k:02d}_{name}.txt").write_text("\n".join(lines) + "\n")
