"""runtime/c as a library: every kernel source builds warning-free on the host gcc and on
arm-none-eabi-gcc (Cortex-M4F), in both rounding modes; every public symbol in ef_kernels.h
has a Doxygen block; ef_requantize matches edgeforge.qmath.requantize bit for bit."""
from __future__ import annotations

import ctypes
import re
import subprocess

import numpy as np
import pytest

from edgeforge.codegen.c import KERNEL_DIR, KERNEL_FILES, RUNTIME_C
from edgeforge.qmath import requantize
from tests.conftest import require

WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
ARM = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
SOURCES = sorted(KERNEL_DIR.glob("*.c"))


@pytest.mark.parametrize("single", ["0", "1"])
@pytest.mark.parametrize("cc,extra", [("gcc", []), ("arm-none-eabi-gcc", ARM)],
                         ids=["gcc", "arm-none-eabi-gcc"])
def test_every_kernel_builds_warning_free(cc, extra, single, tmp_path):
    require(cc)
    objs = []
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        r = subprocess.run([cc, *extra, *WARN, f"-DEF_SINGLE_ROUNDING={single}",
                            "-I", str(RUNTIME_C), "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0 and not r.stderr, f"{cc} {src.name}:\n{r.stderr}"
        objs.append(obj)
    assert len(objs) == len(SOURCES) >= len(set(KERNEL_FILES.values()))


def test_every_mapped_kernel_exists_and_is_documented():
    header = (RUNTIME_C / "ef_kernels.h").read_text() + (KERNEL_DIR / "ef_inplace.h").read_text()
    for sym, src in KERNEL_FILES.items():
        assert (KERNEL_DIR / src).is_file(), src
        assert re.search(rf"\b{sym}\(", (KERNEL_DIR / src).read_text()), (sym, src)
        decl = header.index(f"ef_status {sym}(")
        assert header.rfind("*/", 0, decl) > header.rfind(";", 0, decl), f"{sym}: no doc block"


@pytest.fixture(scope="module")
def requant_lib(tmp_path_factory):
    require("gcc")
    d = tmp_path_factory.mktemp("requant")
    src = d / "rq.c"
    src.write_text('#include "ef_requantize.h"\n'
                   "void rq(const int32_t *a, const int32_t *m, const int32_t *s, int32_t *o,"
                   " int n, int single) { for (int i = 0; i < n; ++i) o[i] = single ?"
                   " ef_requantize_single(a[i], m[i], s[i]) : ef_requantize_double(a[i], m[i],"
                   " s[i]); }\n"
                   "void rq_default(const int32_t *a, const int32_t *m, const int32_t *s,"
                   " int32_t *o, int n) { for (int i = 0; i < n; ++i)"
                   " o[i] = ef_requantize(a[i], m[i], s[i]); }\n")
    libs = {}
    for single in ("0", "1"):
        so = d / f"librq{single}.so"
        subprocess.run(["gcc", *WARN, f"-DEF_SINGLE_ROUNDING={single}", "-fPIC", "-shared",
                        "-I", str(RUNTIME_C), str(src), "-o", str(so)], check=True,
                       timeout=120)
        libs[single] = ctypes.CDLL(str(so))
    return libs


def test_requantize_matches_qmath(requant_lib):
    rng = np.random.default_rng(0)
    n = 20000
    acc = np.concatenate([rng.integers(-(1 << 24), 1 << 24, n // 2),
                          rng.integers(-300, 300, n // 2)]).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, n).astype(np.int32)
    shift = rng.integers(-20, 2, n).astype(np.int32)
    for single, rounding in (("0", "double"), ("1", "single")):
        want = requantize(acc, mult, shift, rounding)
        ok = (want >= -(1 << 31)) & (want < (1 << 31))
        for fn, args in (("rq", (int(single),)), ("rq_default", ())):
            got = np.zeros(n, np.int32)
            getattr(requant_lib[single], fn)(
                acc.ctypes.data_as(ctypes.c_void_p), mult.ctypes.data_as(ctypes.c_void_p),
                shift.ctypes.data_as(ctypes.c_void_p), got.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(n), *[ctypes.c_int(a) for a in args])
            assert np.array_equal(got[ok], want[ok].astype(np.int32)), (fn, rounding)
