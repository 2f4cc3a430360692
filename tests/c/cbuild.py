"""Test helper: many generated C packages in ONE host shared library (one gcc call).

Each package is emitted with its own name (so its symbols are ef_<name>_*), its model.c and
weights.c are compiled from its own folder (so `#include "model.h"` finds its own header),
and the kernels and headers, identical across packages of one numerics profile, once.
`MultiLib.run(name, inputs)` runs N samples of one package in one ctypes call.
"""
from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np

from edgeforge.codegen.c import emit_c
from edgeforge.ir import Graph


class SeqPlan:
    """Every activation in its own 16-byte aligned slot, then every kernel's scratch
    (plan.scratch, as plan_graph sizes it) in its own: no sharing at all."""

    def __init__(self, g: Graph):
        from edgeforge.plan.scratch import scratch_bytes, unpacked_bytes
        self.offsets, off = {}, 0
        for t in g.activations():
            self.offsets[t] = off
            off += (g.tensors[t].nbytes + 15) // 16 * 16
        self.scratch: dict[str, tuple[int, int]] = {}
        for nd in g.nodes:       # packed (--cluster) weights unpack in front, as plan.memory
            n = unpacked_bytes(nd, g) + scratch_bytes(nd, g)
            if n and nd.outputs:
                self.scratch[nd.outputs[0]] = (off, n)
                off += (n + 15) // 16 * 16
        self.size = off


_SHIM_HEAD = """#include <string.h>
#include <stdint.h>
"""

_SHIM_CASE = """
static int run_{name}(const int8_t *in, int8_t *out, int32_t n)
{{
    static const int32_t ib[] = {{{ib}}}, ob[] = {{{ob}}};
    for (int32_t s = 0; s < n; ++s) {{
        for (int i = 0; i < {ni}; ++i) {{ memcpy(ef_{name}_input(i), in, ib[i]); in += ib[i]; }}
        int rc = ef_{name}_invoke();
        if (rc) return rc;
        for (int i = 0; i < {no}; ++i) {{ memcpy(out, ef_{name}_output(i), ob[i]); out += ob[i]; }}
    }}
    return 0;
}}
"""


class MultiLib:
    def __init__(self, graphs: dict[str, Graph], root: Path, numerics: str,
                 plans: dict[str, object] | None = None, flags: tuple[str, ...] = ("-O1",)):
        self.graphs = graphs
        root.mkdir(parents=True, exist_ok=True)
        kernels: dict[str, Path] = {}
        sources, shim, table = [], [_SHIM_HEAD], []
        for k, (name, g) in enumerate(graphs.items()):
            d = root / name
            plan = (plans or {}).get(name) or SeqPlan(g)
            emit_c(g, plan, d, name=name, numerics=numerics)
            for f in d.glob("*.c"):
                if f.name in ("model.c", "weights.c"):
                    sources.append(f)
                else:
                    kernels.setdefault(f.name, f)
            ib = [g.tensors[t].nbytes for t in g.inputs]
            ob = [g.tensors[t].nbytes for t in g.outputs]
            shim.append(f'#include "{d}/model.h"')
            shim.append(_SHIM_CASE.format(name=name, ni=len(ib), no=len(ob),
                                          ib=", ".join(map(str, ib)),
                                          ob=", ".join(map(str, ob))))
            table.append(f"run_{name}")
            self.index = getattr(self, "index", {})
            self.index[name] = k
        shim.append("typedef int (*runner)(const int8_t *, int8_t *, int32_t);")
        shim.append(f"static const runner runners[] = {{{', '.join(table)}}};")
        shim.append("int run_case(int k, const int8_t *in, int8_t *out, int32_t n)"
                    "{ return runners[k](in, out, n); }")
        (root / "shim.c").write_text("\n".join(shim) + "\n")
        first = next(iter(kernels.values())).parent
        lib = root / "libcases.so"
        cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *flags, "-fPIC", "-shared",
               "-I", str(first), *map(str, sources), *map(str, kernels.values()),
               str(root / "shim.c"), "-o", str(lib)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        self.lib = ctypes.CDLL(str(lib))
        self.lib.run_case.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.c_int32]

    def run(self, name: str, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """samples: [[x0, x1, ...], ...] -> [[y0, ...], ...] (int8, the graph's shapes)."""
        g = self.graphs[name]
        n = len(samples)
        packed = np.ascontiguousarray(np.concatenate(
            [np.concatenate([np.asarray(x, np.int8).ravel() for x in s]) for s in samples]))
        shapes = [g.tensors[t].shape for t in g.outputs]
        per = sum(int(np.prod(s)) for s in shapes)
        out = np.zeros(n * per, dtype=np.int8)
        rc = self.lib.run_case(self.index[name], packed.ctypes.data, out.ctypes.data, n)
        assert rc == 0, f"{name}: invoke returned {rc}"
        return split_samples(out, shapes, n)


def split_samples(flat: np.ndarray, shapes: list[tuple[int, ...]], n: int
                  ) -> list[list[np.ndarray]]:
    """n samples' outputs stored back to back (each sample: every output in order)
    -> [[y0, ...], ...] shaped as `shapes`."""
    res, k = [], 0
    for _ in range(n):
        ys = []
        for s in shapes:
            m = int(np.prod(s))
            ys.append(flat[k:k + m].reshape(s))
            k += m
        res.append(ys)
    return res
