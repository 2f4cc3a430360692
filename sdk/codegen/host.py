"""Run a generated C package on the host: build DIR/c into a shared library, call it via ctypes.

    m = CModel("out/kws")                  # a compiled DIR, or its c/ folder
    [y] = m.run([x])                       # one sample, arrays shaped like the model's I/O
    ys = m.run_batch([xs])                 # N samples stacked on a new leading axis, one call
    ns = m.time(runs=100)                  # per-invoke wall time measured inside C
    per_op = CModel(dir, per_op=True).time_ops(100)   # mean ns of each op (EF_OP_* hooks)

The library is cached by a hash of the C sources + compiler + flags under
$XDG_CACHE_HOME/edgeforge/c (default ~/.cache/edgeforge/c), so re-running a model costs only
the dlopen. A small shim (written next to the cached library, never into DIR/c) adds batch
and timing entry points on top of the EF_MODEL_* glue macros of model.h.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgeforge.errors import BuildError, EdgeforgeError

CC = os.environ.get("CC", "gcc")
DEFAULT_FLAGS = ("-O3",)   # -O3 vectorizes the int16 multiply-add loops (2-4x -O2)
BUILD_TIMEOUT = 300

_SHIM = r"""
/* edgeforge host shim: batch and timing entry points over the model.h glue macros. */
#define _POSIX_C_SOURCE 199309L
#include <string.h>
#include <time.h>
#include "model.h"

static const int32_t ef_host_in_bytes_[] = {%(in_bytes)s};
static const int32_t ef_host_out_bytes_[] = {%(out_bytes)s};

/* n samples; sample s of input i is at in + s * in_stride + in_off[i] (same for outputs) */
int ef_host_run_batch(const int8_t *in, int8_t *out, int32_t n)
{
    int32_t in_stride = 0, out_stride = 0;
    for (int i = 0; i < EF_MODEL_NUM_INPUTS; ++i) in_stride += ef_host_in_bytes_[i];
    for (int i = 0; i < EF_MODEL_NUM_OUTPUTS; ++i) out_stride += ef_host_out_bytes_[i];
    for (int32_t s = 0; s < n; ++s) {
        const int8_t *ip = in + (size_t)s * in_stride;
        int8_t *op = out + (size_t)s * out_stride;
        for (int i = 0; i < EF_MODEL_NUM_INPUTS; ++i) {
            memcpy(EF_MODEL_INPUT(i), ip, (size_t)ef_host_in_bytes_[i]);
            ip += ef_host_in_bytes_[i];
        }
        int rc = EF_MODEL_INVOKE();
        if (rc != 0) return rc;
        for (int i = 0; i < EF_MODEL_NUM_OUTPUTS; ++i) {
            memcpy(op, EF_MODEL_OUTPUT(i), (size_t)ef_host_out_bytes_[i]);
            op += ef_host_out_bytes_[i];
        }
    }
    return 0;
}

#ifdef EF_HOST_PER_OP
/* per-op wall time, accumulated by the EF_OP_BEGIN/EF_OP_END hooks (ef_host_hooks.h) */
int64_t ef_host_op_ns_[EF_MODEL_NUM_OPS > 0 ? EF_MODEL_NUM_OPS : 1];
static struct timespec ef_host_t0_;
void ef_host_op_begin(int i) { (void)i; clock_gettime(CLOCK_MONOTONIC, &ef_host_t0_); }
void ef_host_op_end(int i)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    ef_host_op_ns_[i] += (int64_t)(t.tv_sec - ef_host_t0_.tv_sec) * 1000000000LL
                         + (t.tv_nsec - ef_host_t0_.tv_nsec);
}

/* run `runs` times; ns[i] = total wall time of op i over the runs */
int ef_host_time_ops(int32_t runs, int64_t *ns)
{
    memset(ef_host_op_ns_, 0, sizeof(ef_host_op_ns_));
    for (int32_t k = 0; k < runs; ++k) {
        int rc = EF_MODEL_INVOKE();
        if (rc != 0) return rc;
    }
    memcpy(ns, ef_host_op_ns_, sizeof(int64_t) * (size_t)EF_MODEL_NUM_OPS);
    return 0;
}
#endif

/* invoke `runs` times on whatever the inputs hold; ns[k] = wall time of run k */
int ef_host_time(int32_t runs, int64_t *ns)
{
    for (int32_t k = 0; k < runs; ++k) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = EF_MODEL_INVOKE();
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (rc != 0) return rc;
        ns[k] = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    }
    return 0;
}
"""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeforge" / "c"


def c_dir_of(path: str | Path) -> Path:
    """DIR (a compiled directory) or DIR/c -> the folder holding model.h."""
    p = Path(path)
    for cand in (p, p / "c"):
        if (cand / "model.h").is_file():
            return cand
    raise EdgeforgeError(f"{path}: no generated C package (no model.h here or in c/); "
                         "run `edgeforge compile` first")


def header_text(c_dir: Path) -> str:
    """model.h, plus the model's own header when model.h is only the glue (compile --name)."""
    text = (c_dir / "model.h").read_text()
    m = re.search(r'^#include "(\w+\.h)"', text, re.MULTILINE)
    if m and "_invoke(void);" not in text and (c_dir / m.group(1)).is_file():
        text = (c_dir / m.group(1)).read_text() + "\n" + text
    return text


def _io_bytes(header: str) -> tuple[str, list[tuple[int, ...]], list[tuple[int, ...]]]:
    m = re.search(r"int ef_(\w+)_invoke\(void\);", header)
    if not m:
        raise EdgeforgeError("model.h: no ef_<name>_invoke() declaration")
    name = m.group(1)
    N = name.upper()

    def shapes(kind: str) -> list[tuple[int, ...]]:
        out = []
        for k in range(1 << 10):
            s = re.search(rf"#define EF_{N}_{kind}{k}_SHAPE \{{([^}}]*)\}}", header)
            if not s:
                break
            out.append(tuple(int(v) for v in s.group(1).split(",") if v.strip()))
        return out

    return name, shapes("INPUT"), shapes("OUTPUT")


def io_dtypes(header: str, kind: str, count: int) -> list[np.dtype]:
    """Element types of the model's inputs / outputs (kind INPUT / OUTPUT): int8 unless
    model.h declares EF_<NAME>_<KIND>k_TYPE (int16 graph I/O)."""
    m = re.search(r"int ef_(\w+)_invoke\(void\);", header)
    N = m.group(1).upper() if m else ""
    out = []
    for k in range(count):
        t = re.search(rf"#define EF_{N}_{kind}{k}_TYPE (\w+)", header)
        out.append(np.dtype(t.group(1).removesuffix("_t") if t else "int8"))
    return out


_HOOKS = """void ef_host_op_begin(int i);
void ef_host_op_end(int i);
#define EF_OP_BEGIN(i) ef_host_op_begin(i)
#define EF_OP_END(i) ef_host_op_end(i)
"""


def build_shared(c_dir: str | Path, flags: tuple[str, ...] = DEFAULT_FLAGS,
                 per_op: bool = False) -> Path:
    """Compile c_dir/*.c (+ the shim) into a cached shared library; return its path.
    `per_op` builds model.c with EF_OP_BEGIN/EF_OP_END timing hooks (ef_host_time_ops)."""
    c_dir = c_dir_of(c_dir)
    header = header_text(c_dir)
    _, ins, outs = _io_bytes(header)
    tin, tout = io_dtypes(header, "INPUT", len(ins)), io_dtypes(header, "OUTPUT", len(outs))
    shim = _SHIM % {
        "in_bytes": ", ".join(str(int(np.prod(s)) * t.itemsize) for s, t in zip(ins, tin))
        or "0",
        "out_bytes": ", ".join(str(int(np.prod(s)) * t.itemsize) for s, t in zip(outs, tout))
        or "0",
    }
    sources = sorted(c_dir.glob("*.c")) + sorted(c_dir.glob("*.h"))
    h = hashlib.sha256()
    h.update(CC.encode() + b"\0" + " ".join(flags).encode() + b"\0" + shim.encode()
             + (_HOOKS.encode() if per_op else b""))
    for f in sources:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    key = h.hexdigest()[:24]
    lib = _cache_root() / key / "libefmodel.so"
    if lib.is_file():
        return lib
    lib.parent.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=lib.parent.parent))
    try:
        (tmp / "ef_host_shim.c").write_text(shim)
        hooks: list[str] = []
        if per_op:
            (tmp / "ef_host_hooks.h").write_text(_HOOKS)
            hooks = ["-DEF_HOST_PER_OP", "-include", str(tmp / "ef_host_hooks.h")]
        cmd = [CC, "-std=c99", *flags, *hooks, "-fPIC", "-shared", "-Wl,-Bsymbolic",
               "-I", str(c_dir),
               *[str(f) for f in sorted(c_dir.glob("*.c"))], str(tmp / "ef_host_shim.c"),
               "-o", str(tmp / "libefmodel.so")]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                               check=False)
        except FileNotFoundError:
            raise BuildError(f"C compiler {CC!r} not found (set CC or install gcc)") from None
        except subprocess.TimeoutExpired:
            raise BuildError(f"{CC} took longer than {BUILD_TIMEOUT}s on {c_dir}") from None
        if r.returncode != 0:
            raise BuildError(f"{CC} failed on {c_dir}:\n{r.stderr.strip()[-4000:]}")
        try:
            os.replace(tmp, lib.parent)
        except OSError:        # another process built the same key first: use theirs
            if not lib.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lib


class CModel:
    """A generated C package loaded in this process: int8 (or its int16 graph I/O) in and out."""

    def __init__(self, path: str | Path, flags: tuple[str, ...] = DEFAULT_FLAGS,
                 per_op: bool = False):
        self.c_dir = c_dir_of(path)
        header = header_text(self.c_dir)
        self.name, self.input_shapes, self.output_shapes = _io_bytes(header)
        self.input_dtypes = io_dtypes(header, "INPUT", len(self.input_shapes))
        self.output_dtypes = io_dtypes(header, "OUTPUT", len(self.output_shapes))
        m = re.search(r"#define EF_MODEL_NUM_OPS (\d+)", header)
        self.num_ops = int(m.group(1)) if m else 0
        self.per_op = per_op
        self.lib_path = build_shared(self.c_dir, flags, per_op)
        self.lib = ctypes.CDLL(str(self.lib_path))
        self.lib.ef_host_run_batch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
        self.lib.ef_host_run_batch.restype = ctypes.c_int
        self.lib.ef_host_time.argtypes = [ctypes.c_int32, ctypes.c_void_p]
        self.lib.ef_host_time.restype = ctypes.c_int

    def run_batch(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """inputs[i]: [N, *input_shape_i] of input i's type (int8 or int16) ->
        outputs[j]: [N, *output_shape_j] of output j's type."""
        if len(inputs) != len(self.input_shapes):
            raise EdgeforgeError(f"{len(inputs)} inputs given, model has "
                                 f"{len(self.input_shapes)}")
        xs = [np.asarray(x) for x in inputs]
        n = xs[0].shape[0] if xs and xs[0].ndim else 0
        for i, (x, s, t) in enumerate(zip(xs, self.input_shapes, self.input_dtypes)):
            if x.dtype != t or x.shape[1:] != s or x.shape[0] != n:
                raise EdgeforgeError(f"input {i}: got {x.dtype}{list(x.shape)}, expected "
                                     f"{t}[N, {', '.join(map(str, s))}]")
        # samples back to back as bytes, each input's native-endian elements in a row
        packed = np.ascontiguousarray(np.concatenate(
            [np.ascontiguousarray(x).reshape(n, -1).view(np.uint8) for x in xs], axis=1))
        out_sizes = [int(np.prod(s)) * t.itemsize
                     for s, t in zip(self.output_shapes, self.output_dtypes)]
        out = np.zeros((n, sum(out_sizes)), dtype=np.uint8)
        rc = self.lib.ef_host_run_batch(packed.ctypes.data, out.ctypes.data, n)
        if rc != 0:
            raise EdgeforgeError(f"ef_{self.name}_invoke() returned {rc}")
        res, k = [], 0
        for size, s, t in zip(out_sizes, self.output_shapes, self.output_dtypes):
            res.append(np.ascontiguousarray(out[:, k:k + size]).view(t).reshape((n,) + s))
            k += size
        return res

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One sample: inputs[i] shaped like the model's input i."""
        return [y[0] for y in self.run_batch([np.asarray(x)[None] for x in inputs])]

    def time_ops(self, runs: int = 100) -> np.ndarray:
        """Mean wall time of each op (schedule order, nanoseconds); needs per_op=True.
        The hooks' clock reads add a little to every op."""
        if not self.per_op:
            raise EdgeforgeError("CModel(..., per_op=True) is needed for per-op times")
        ns = np.zeros(max(self.num_ops, 1), dtype=np.int64)
        fn = self.lib.ef_host_time_ops
        fn.argtypes, fn.restype = [ctypes.c_int32, ctypes.c_void_p], ctypes.c_int
        rc = fn(runs, ns.ctypes.data)
        if rc != 0:
            raise EdgeforgeError(f"ef_{self.name}_invoke() returned {rc}")
        return ns[:self.num_ops] / max(runs, 1)

    def time(self, runs: int = 100) -> np.ndarray:
        """Per-invoke wall time in nanoseconds, measured inside C (no ctypes overhead)."""
        ns = np.zeros(runs, dtype=np.int64)
        rc = self.lib.ef_host_time(runs, ns.ctypes.data)
        if rc != 0:
            raise EdgeforgeError(f"ef_{self.name}_invoke() returned {rc}")
        return ns
