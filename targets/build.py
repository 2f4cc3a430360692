"""Board profiles (targets/boards/*.toml) and `edgeforge build DIR --board B`.

build() compiles firmware_templates/<template>/ together with the generated C package in
DIR/c into DIR/fw/<board>/{firmware.elf,firmware.bin,build.json}, checks the image fits
the board's flash and RAM, and reports a size table (code, weights, data, bss, arena).
The output directory is written under a temporary name and renamed at the end.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from typing import Any

from edgeforge.errors import BuildError, EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.targets.board import BOARDS_DIR, Board, board_names, load_board  # noqa: F401
from edgeforge.targets.clock import check as check_clock
from edgeforge.targets.clock import defines as clock_defines

# package data of edgeforge.firmware_templates / edgeforge.runtime (a checkout and a wheel alike)
TEMPLATES_DIR = Path(str(files("edgeforge.firmware_templates")))
DSP_KERNELS_DIR = Path(str(files("edgeforge.runtime") / "c" / "kernels" / "dsp"))
COMPILE_TIMEOUT_S = 300
TEMPLATE_SOURCES = ("startup.c", "main.c", "ef_frame.c", "ef_counter.c", "ef_libc.c")
COLD_SOURCES = ("model.c", "weights.c")     # generated glue: run once per op, size matters
NO_LTO = ("weights.c", "ef_libc.c")         # see build(): kept out of link-time optimization
# DSP files whose time goes elsewhere: thin wrappers around the shared engine
# (ef_dsp_conv.c) plus their reference fallbacks for rare shapes, and kernels that are a
# sliver of any model's work. Built for size: they decide whether KWS code fits in 16 KB.
# The depthwise files' hot loops are noinline asm (pixel taps, requantization), so -Os only
# shrinks what surrounds them (VWW -1.0 KB, +0.3% instructions); ADD at -Os costs ~4
# instructions per element (ResNet-8 +0.14 M, 0.8%) and saves 3.5 KB of ResNet-8's code.
DSP_SIZE_SOURCES = ("conv2d_s8.c", "conv2d_1x1_s8.c", "conv2d_1x1_inplace_s8.c",
                    "conv2d_shallow_s8.c", "avgpool2d_s8.c", "fc_s8.c", "add_s8.c",
                    "dwconv2d_3x3_s8.c", "dwconv2d_inplace_s8.c")
# board "counter" -> the firmware define that selects it (ef_counter.c)
COUNTERS = {"systick": "EF_COUNTER_SYSTICK", "dwt": "EF_COUNTER_DWT"}
UNITS = {"instructions": 0, "cycles": 1}          # EF_UNIT_* in ef_proto.h
DTYPES = {"int8": 1, "uint8": 2, "int16": 3, "int32": 4, "float32": 5}  # INFO dtype codes
WARN_FLAGS = ["-Wall", "-Wextra"]


KERNEL_SETS = ("ref", "dsp")


def board_with(name: str, kernels: str | None = None) -> Board:
    """The board profile, optionally with its kernel set overridden (ref | dsp)."""
    board = load_board(name)
    if kernels is None or kernels == board.kernels:
        return board
    if kernels not in KERNEL_SETS:
        raise EdgeforgeError(f"unknown kernel set {kernels!r}; use one of {KERNEL_SETS}")
    if kernels == "dsp" and not board.dsp:
        raise BuildError(f"board {board.name} ({board.cpu}) has no DSP extension")
    return dataclasses.replace(board, kernels=kernels, variant=kernels)


def fw_dir(directory: str | Path, board: Board) -> Path:
    """DIR/fw/<board>/, or DIR/fw/<board>-<kernels>/ for a non-default kernel set."""
    return Path(directory) / "fw" / (board.name + (f"-{board.variant}" if board.variant else ""))


# ---------------------------------------------------------------------------- sources


def _driver(board: Board, tdir: Path, kind: str, name: str, label: str) -> Path:
    """tdir/ef_<kind>_<name>.c, or a BuildError naming the drivers the template has."""
    src = tdir / f"ef_{kind}_{name}.c"
    if not src.is_file():
        have = sorted(p.stem.removeprefix(f"ef_{kind}_") for p in tdir.glob(f"ef_{kind}_*.c"))
        raise BuildError(f"board {board.name}: no {label} driver {src.name} in {tdir} "
                         f"(drivers available: {', '.join(have)})")
    return src


def _template_sources(board: Board) -> tuple[Path, list[Path]]:
    tdir = TEMPLATES_DIR / board.template
    if not tdir.is_dir():
        raise BuildError(f"board {board.name}: no firmware template {tdir} "
                         f"(needs the {board.toolchain}gcc toolchain and a {board.template} port)")
    missing = [s for s in TEMPLATE_SOURCES if not (tdir / s).is_file()]
    if missing:     # e.g. esp32-s3/ holds only its clock driver so far: no Xtensa port
        raise BuildError(f"board {board.name}: firmware template {tdir} has no "
                         f"{', '.join(missing)} (no {board.template} port yet)")
    uart = _driver(board, tdir, "uart", board.uart["driver"].replace("-", "_"), "UART")
    counter = COUNTERS.get(board.counter)
    if counter is None:
        raise BuildError(f"board {board.name}: counter {board.counter!r} not in the template "
                         f"(have: {', '.join(COUNTERS)})")
    clock = _driver(board, tdir, "clock", board.clock.get("driver", "none"), "clock")
    check_clock(board)          # the PLL within the vendor's limits, giving clock_hz
    return tdir, [tdir / s for s in TEMPLATE_SOURCES] + [uart, clock]


def model_sources(directory: Path, board: Board) -> tuple[list[Path], list[Path]]:
    """(C sources, include dirs) of the generated package, kernels swapped for the board's.

    Kernel choice happens here, TFLM OPTIMIZED_KERNEL_DIR style: a DSP board compiles
    runtime/c/kernels/dsp/<file>.c in place of any package file of the same name.
    """
    cdir = directory / "c"
    if not (cdir / "model.h").is_file():
        raise BuildError(f"{directory}: no c/model.h; run `edgeforge compile` first")
    # examples/main.c is the user's example program (its own main), not the package
    srcs = sorted(p for p in cdir.rglob("*.c") if "examples" not in p.relative_to(cdir).parts)
    incs = sorted({p.parent for p in cdir.rglob("*.h")} | {cdir})
    if board.kernels == "dsp" and board.dsp and DSP_KERNELS_DIR.is_dir():
        dsp = {p.name: p for p in DSP_KERNELS_DIR.glob("*.c")}
        swapped = [dsp.get(p.name, p) for p in srcs]
        if swapped != srcs:
            # the shared engines (ef_dsp_*.c) go with any DSP kernel; --gc-sections drops
            # the ones no kernel calls
            srcs = swapped + sorted(DSP_KERNELS_DIR.glob("ef_dsp_*.c"))
        incs.append(DSP_KERNELS_DIR)
    return srcs, incs


def tensor_desc(m: Manifest) -> bytes:
    """The INFO tensor descriptors (PROTOCOL.md): dtype, rank, dims, scale, zero point."""
    out = b""
    for t in [*m.inputs, *m.outputs]:
        out += struct.pack("<BB", DTYPES.get(t.dtype, 0), len(t.shape))
        out += struct.pack(f"<{len(t.shape)}I", *t.shape)
        out += struct.pack("<fi", t.scale or 0.0, t.zero_point or 0)
    return out


def _c_table(rows: list[list[int]], width: int) -> str:
    rows = rows or [[0] * width]                      # C has no empty arrays: a no-op row
    return "{" + ", ".join("{" + ", ".join(f"0x{v:x}u" for v in r) + "}" for r in rows) + "}"


def _info_header(m: Manifest, board: Board) -> str:
    """ef_fw_info.h: INFO tensor descriptors (manifest) + UART set-up tables (board)."""
    desc = tensor_desc(m)
    body = ", ".join(f"0x{b:02x}" for b in desc) or "0"
    u = board.uart
    return ("/* Generated by targets/build.py from manifest.json and the board profile. */\n"
            "#ifndef EF_FW_INFO_H\n#define EF_FW_INFO_H\n"
            f"#define EF_FW_TENSOR_DESC {{{body}}}\n"
            f"#define EF_FW_TENSOR_DESC_LEN {len(desc)}u\n"
            f"#define EF_UART_SETUP {_c_table(u.get('setup', []), 2)}\n"
            f"#define EF_UART_PINS {_c_table(u.get('pins', []), 3)}\n"
            f"#define EF_UART_BRR_SCALE {int(u.get('brr_scale', 1))}u\n"
            + "".join(f"#define {k} {v}u\n" for k, v in clock_defines(board).items())
            + "#endif\n")


def _linker_script(tdir: Path, board: Board, flash_size: int, ram_size: int) -> str:
    text = (tdir / "link.ld.in").read_text()
    fields = {"FLASH_ORIGIN": board.flash["origin"], "FLASH_SIZE": flash_size,
              "RAM_ORIGIN": board.ram["origin"], "RAM_SIZE": ram_size,
              "STACK_SIZE": board.stack_bytes}
    for k, v in fields.items():
        text = text.replace(f"@{k}@", f"0x{v:08x}")
    return text


def _defines(board: Board) -> list[str]:
    return [f"-D{COUNTERS[board.counter]}=1", f"-DEF_COUNT_SCALE={board.count_scale}u",
            f"-DEF_COUNTER_UNIT={UNITS[board.counter_unit]}u", f"-DEF_CPU_HZ={board.clock_hz}u",
            f"-DEF_BAUD={board.uart['baud']}u", f"-DEF_UART_BASE=0x{board.uart['base']:08x}u"]


def _cflags(board: Board, opt: str) -> list[str]:
    return [*board.cflags, opt, "-std=c99", "-ffunction-sections", "-fdata-sections", "-g",
            *WARN_FLAGS, *_defines(board)]


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                           check=False)
    except FileNotFoundError:
        raise BuildError(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: timed out after {COMPILE_TIMEOUT_S} s") from None
    if r.returncode != 0:
        raise BuildError(f"{what} failed:\n{(r.stderr or r.stdout).strip()[-4000:]}")
    return r


def build_key(directory: Path, board: Board, opt: str = "-O2") -> str:
    """Hash of everything the image depends on: sources, headers, flags, board profile."""
    tdir = TEMPLATES_DIR / board.template
    h = hashlib.sha256()
    files = sorted(tdir.glob("*")) + sorted((directory / "c").rglob("*")) + [board.path,
                                                                            directory / "manifest.json"]
    if board.kernels == "dsp" and DSP_KERNELS_DIR.is_dir():
        # DSP files may include their reference twins (../ref/*.c) for fallbacks
        files += sorted(DSP_KERNELS_DIR.glob("*")) + sorted(DSP_KERNELS_DIR.parent.glob("ref/*"))
    for p in files:
        if p.is_file():
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    h.update(" ".join([board.kernels, *_cflags(board, opt), Path(__file__).read_text()]).encode())
    return h.hexdigest()


def is_fresh(directory: str | Path, board: Board) -> bool:
    out = fw_dir(directory, board)
    try:
        meta = json.loads((out / "build.json").read_text())
    except (OSError, ValueError):
        return False
    return (out / "firmware.elf").is_file() and meta.get("key") == build_key(Path(directory), board)


# ---------------------------------------------------------------------------- build


def _section_sizes(board: Board, elf: Path) -> dict[str, int]:
    r = _run([board.toolchain + "size", "-A", str(elf)], "size")
    sizes: dict[str, int] = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def size_table(sections: dict[str, int], arena_bytes: int) -> dict[str, int]:
    """code/weights/data/bss/arena/stack and the flash/RAM totals, in bytes."""
    code = sum(sections.get(s, 0) for s in (".text", ".rodata", ".ARM.exidx"))
    bss = sections.get(".bss", 0)
    arena = min(arena_bytes, bss)    # the arena is a .bss array of the generated model.c
    t = {"code": code, "weights": sections.get(".weights", 0), "data": sections.get(".data", 0),
         "bss": bss - arena, "arena": arena, "stack": sections.get(".stack", 0)}
    t["flash"] = t["code"] + t["weights"] + t["data"]
    t["ram"] = t["data"] + t["bss"] + t["arena"] + t["stack"]
    return t


def _compile_all(board: Board, jobs: list[tuple[Path, Path, list[str]]]) -> list[str]:
    """Compile (src, obj, extra flags) jobs two at a time; return the warnings seen."""
    def one(job: tuple[Path, Path, list[str]]) -> str:
        src, obj, extra = job
        r = _run([board.gcc, *extra, "-c", str(src), "-o", str(obj)], f"compile {src.name}")
        return r.stderr.strip()
    with ThreadPoolExecutor(max_workers=2) as ex:
        return [w for w in ex.map(one, jobs) if w]


def build(directory: str | Path, board_name: str, *, kernels: str | None = None,
          opt: str = "-O2", verbose: int = 0) -> dict[str, Any]:
    """Build DIR's firmware for a board; return {board, elf, bin, sizes, limits, warnings}.

    kernels: "ref" or "dsp" overrides the board profile's kernel set (output then goes to
    DIR/fw/<board>-<kernels>/)."""
    directory = Path(directory)
    board = board_with(board_name, kernels)
    m = Manifest.load(directory)
    if shutil.which(board.gcc) is None:
        raise BuildError(f"board {board.name} needs the {board.gcc} toolchain, which is not "
                         "installed" + (" (ESP-IDF installs it: idf.py / install.sh esp32s3)"
                                        if board.arch == "xtensa" else ""))
    tdir, tsrcs = _template_sources(board)
    msrcs, incs = model_sources(directory, board)
    out = fw_dir(directory, board)
    made_fw = not out.parent.exists()         # a failed first build takes DIR/fw/ away again
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{board.name}-", dir=out.parent))
    try:
        (tmp / "ef_fw_info.h").write_text(_info_header(m, board))
        base = _cflags(board, opt) + [f"-I{tdir}", f"-I{tmp}"] + [f"-I{d}" for d in incs]
        # template files are ours: warning-free or fail; the generated package gets -Wall
        # -Wextra and its warnings are reported. The hooks make EF_OP_BEGIN/END count.
        # Only the kernels are hot: the protocol loop and the straight-line model.c are
        # built for size (-Os after `opt` wins). In a DSP build the DSP kernels carry the
        # work, so the reference kernels left over (pooling, softmax, ...) are built for
        # size too: that keeps KWS code under 16 KB.
        # Link-time optimization sees model.c's constant shapes at every kernel call, so a
        # kernel's fallback for shapes the model never has is dropped (with the DSP kernels
        # that is ~3 KB of KWS code). Left out of LTO: weights.c (data only; its object
        # name puts it in the .weights section) and ef_libc.c (memcpy must stay a loop).
        hooks = ["-include", str(tdir / "ef_hooks.h")]
        jobs = [(s, tmp / f"fw_{s.stem}.o",
                 [*base, *([] if s.name in NO_LTO else ["-flto"]), "-Os",
                  "-fno-tree-loop-distribute-patterns", "-Werror"]) for s in tsrcs]
        dsp_build = any(s.is_relative_to(DSP_KERNELS_DIR) for s in msrcs)
        names: set[str] = set()
        for s in msrcs:
            stem = s.stem if s.stem not in names else f"{s.parent.name}_{s.stem}"
            names.add(stem)
            dsp = s.is_relative_to(DSP_KERNELS_DIR)
            cold = (s.name in COLD_SOURCES or (dsp_build and not dsp)
                    or (dsp and s.name in DSP_SIZE_SOURCES))
            lto = [] if s.name in NO_LTO else ["-flto"]
            jobs.append((s, tmp / f"{stem}.o",
                         [*base, *lto, *hooks, *(["-Os"] if cold else [])]))
        stage = logging.getLogger("edgeforge.stage").info    # shown on a terminal (cli)
        stage("build: compiling %d files for %s (%s kernels)", len(jobs), board.name,
              board.kernels if board.dsp else "ref")
        warnings = _compile_all(board, jobs)
        stage("build: linking %s", out / "firmware.elf")
        objs = [str(j[1]) for j in jobs]
        elf = tmp / "firmware.elf"

        def link(flash: int, ram: int) -> subprocess.CompletedProcess:
            (tmp / "link.ld").write_text(_linker_script(tdir, board, flash, ram))
            return subprocess.run(
                [board.gcc, *board.cflags, opt, "-flto", "-nostartfiles", "--specs=nano.specs",
                 "--specs=nosys.specs", "-Wl,--gc-sections",
                 # -Xlinker passes the path as one word: -Wl,-Map= splits a DIR with a comma
                 "-Xlinker", f"-Map={tmp / 'firmware.map'}",
                 "-T", str(tmp / "link.ld"), *objs, "-lm", "-o", str(elf)],
                capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)

        r = link(board.flash["size"], board.ram["size"])
        # on overflow, link once more with room to spare, only to report the real numbers
        if (r.returncode != 0 and "overflowed" in r.stderr
                and link(0x10000000, 0x10000000).returncode == 0):
            t = size_table(_section_sizes(board, elf), m.arena_bytes)
            raise BuildError(
                f"{directory} does not fit {board.name}: flash {t['flash']} B "
                f"(code {t['code']} + weights {t['weights']} + data {t['data']}) of "
                f"{board.flash['size']} B; RAM {t['ram']} B (data {t['data']} + bss "
                f"{t['bss']} + arena {t['arena']} + stack {t['stack']}) of "
                f"{board.ram['size']} B")
        if r.returncode != 0:
            raise BuildError(f"link failed:\n{r.stderr.strip()[-4000:]}")
        linker_warnings = [w for w in r.stderr.splitlines() if w.strip()]
        _run([board.toolchain + "objcopy", "-O", "binary", str(elf), str(tmp / "firmware.bin")],
             "objcopy")
        sizes = size_table(_section_sizes(board, elf), m.arena_bytes)
        result = {
            "board": board.name, "dir": str(directory), "elf": str(out / "firmware.elf"),
            "bin": str(out / "firmware.bin"), "sizes": sizes,
            "limits": {"flash": board.flash["size"], "ram": board.ram["size"]},
            "kernels": board.kernels if board.dsp else "ref", "opt": opt,
            "model_sha256": m.model_sha256, "warnings": warnings + linker_warnings,
            "key": build_key(directory, board, opt),
        }
        (tmp / "build.json").write_text(json.dumps(result, indent=2) + "\n")
        for o in objs:
            os.unlink(o)
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
        try:
            tmp.rename(out)
        except OSError:
            # another build of the same DIR finished first: keep its (identical) image
            if not is_fresh(directory, board):
                raise BuildError(f"cannot replace {out}: another build is writing it") from None
        return result
    except subprocess.TimeoutExpired:
        raise BuildError(f"link timed out after {COMPILE_TIMEOUT_S} s") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if made_fw and not out.exists():
            with contextlib.suppress(OSError):    # not empty: another build is using it
                out.parent.rmdir()


def ensure_built(directory: str | Path, board_name: str, kernels: str | None = None) -> Path:
    """Path of DIR/fw/<board>/firmware.elf, building it first if missing or stale."""
    board = board_with(board_name, kernels)
    if not is_fresh(directory, board):
        build(directory, board_name, kernels=kernels)
    return fw_dir(directory, board) / "firmware.elf"
