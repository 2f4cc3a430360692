"""Cortex-M4 cycle estimate from QEMU's execution log (`-d in_asm,exec,nochain`).

QEMU counts instructions, not cycles. This module turns an instruction stream into cycles
with the timings of Arm's Cortex-M4 Technical Reference Manual (DDI 0439B, r0p1):
3.3.1 "Table of processor instructions" (Table 3-1) for the integer core, 3.3.2 "Load/store
timings" for pipelined neighbouring loads and address-dependency stalls, and 7.2.3 "FPU
instruction set" (Table 7-1) for the FPU. Zero-wait-state memory, as the TRM assumes.

How: QEMU logs each translation block (TB) once when it translates it (in_asm: the guest
addresses it holds) and one line each time it runs one (exec; `nochain` makes every run go
through the logger). The stream is consumed line by line: memory is one entry per distinct
TB and per segment (op), never per executed line. Each instruction is classified from
arm-none-eabi-objdump's disassembly of the ELF (QEMU's own text as a fallback), and a TB's
cost is computed once. A TB that ends in a branch is billed the pipeline refill only when
the branch was taken, which the next TB's address tells.

Two quantities the log cannot tell are bounded rather than guessed: SDIV/UDIV take 2-12
cycles by operand size (nominal 7), and a refill P is 1-3 cycles (nominal: 1, +1 for a
32-bit target on a halfword boundary, +1 when the target comes from a register).
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgeforge.errors import EdgeforgeError

SOURCE = ("Arm Cortex-M4 TRM r0p1 (DDI 0439B): 3.3.1 Table 3-1, 3.3.2 load/store timings, "
          "7.2.3 FPU Table 7-1; zero wait states")
Cost = tuple[int, int, int]            # (low, nominal, high) cycles

_ALU1 = {  # one cycle each (Table 3-1): data processing, extend, bit field, saturate, the
    # DSP extension's single-cycle multiplies and SIMD, IT, NOP, hints, status moves
    "mov", "movw", "movt", "mvn", "add", "addw", "adc", "adr", "sub", "subw", "sbc", "rsb",
    "and", "orr", "orn", "eor", "bic", "tst", "teq", "cmp", "cmn", "lsl", "lsr", "asr", "ror",
    "rrx", "neg", "mul", "mla", "mls", "smull", "umull", "smlal", "umlal", "umaal",
    "sxtb", "sxth", "uxtb", "uxth", "sxtab", "sxtah", "uxtab", "uxtah", "sxtb16", "uxtb16",
    "sxtab16", "uxtab16", "bfc", "bfi", "sbfx", "ubfx", "clz", "rbit", "rev", "rev16", "revsh",
    "ssat", "usat", "ssat16", "usat16", "sel", "pkhbt", "pkhtb", "usad8", "usada8",
    "qadd", "qsub", "qdadd", "qdsub", "it", "nop", "sev", "yield", "mrs", "msr", "cpsid",
    "cpsie", "dmb", "dsb", "cpy",
}
_DSP_PREFIX = ("smla", "smul", "smua", "smus", "smls", "smml", "smmu", "smmls", "sadd", "ssub",
               "uadd", "usub", "qadd", "qsub", "shadd", "shsub", "uhadd", "uhsub", "uqadd",
               "uqsub", "sasx", "ssax", "uasx", "usax", "qasx", "qsax", "shasx", "shsax",
               "uhasx", "uhsax", "uqasx", "uqsax")
_LOADS = ("ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrsbt",
          "ldrsht", "ldrex", "ldrexb", "ldrexh")
_STORES = ("str", "strb", "strh", "strt", "strbt", "strht", "strex", "strexb", "strexh")
_FPU = {  # Table 7-1
    "vabs": 1, "vadd": 1, "vsub": 1, "vmul": 1, "vnmul": 1, "vneg": 1, "vcmp": 1, "vcmpe": 1,
    "vcvt": 1, "vcvtr": 1, "vcvtb": 1, "vcvtt": 1, "vmov": 1, "vmrs": 1, "vmsr": 1,
    "vmla": 3, "vmls": 3, "vnmla": 3, "vnmls": 3, "vfma": 3, "vfms": 3, "vfnma": 3,
    "vfnms": 3, "vdiv": 14, "vsqrt": 14, "vldr": 2, "vstr": 2,
}
_CONDS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt",
          "gt", "le", "al")
_REG = re.compile(r"\b(r1[0-5]|r[0-9]|sp|lr|pc|ip|fp|sl|sb)\b")
_ALIAS = {"ip": "r12", "fp": "r11", "sl": "r10", "sb": "r9"}


@dataclasses.dataclass(frozen=True)
class Insn:
    addr: int
    size: int              # bytes: 2 or 4
    mnem: str              # without condition, width or flag-setting suffix
    ops: str               # operand text
    text: str              # as disassembled, for reports

    @property
    def regs(self) -> list[str]:
        return [_ALIAS.get(r, r) for r in _REG.findall(self.ops.split("@")[0])]


def _base_mnemonic(m: str) -> str:
    m = m.lower().split(".")[0]               # .w / .n / .f32
    for known in (*_LOADS, *_STORES, *_ALU1, *_FPU, "b", "bl", "blx", "bx", "cbz", "cbnz",
                  "tbb", "tbh", "ldm", "ldmia", "ldmdb", "ldmfd", "stm", "stmia", "stmdb",
                  "stmea", "push", "pop", "ldrd", "strd", "sdiv", "udiv", "vpush", "vpop",
                  "vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "isb", "wfi", "wfe",
                  "bkpt", "svc", "udf"):
        if m == known:
            return m
    # a condition first: "bls" is b + ls, not bl + s
    for suffix in (*_CONDS, *(c + "s" for c in _CONDS), *("s" + c for c in _CONDS), "s"):
        if m.endswith(suffix) and len(m) > len(suffix):
            stem = m[: -len(suffix)]
            if stem in _ALU1 or stem in _LOADS or stem in _STORES or stem in (
                    "b", "bl", "bx", "blx", "ldm", "stm", "push", "pop", "ldrd", "strd", "sdiv",
                    "udiv") or stem.startswith(_DSP_PREFIX) or stem in _FPU:
                return stem
    return m


def _branch_target(ops: str) -> int | None:
    m = re.match(r"\s*(?:r\d+, )?#?(0x[0-9a-f]+|[0-9a-f]+)\b", ops)
    return int(m.group(1), 16) if m else None


@dataclasses.dataclass(frozen=True)
class Block:
    """One translation block: its cost without and with the final branch taken."""
    pc: int
    insns: tuple[Insn, ...]
    cost: Cost             # every instruction, final branch not taken
    taken: Cost            # extra when the final branch is taken (refill)
    fallthrough: int
    ends_in_branch: bool


def _p(target: Insn | None, indirect: bool) -> Cost:
    """Pipeline refill P (Table 3-1 note: 1-3 by the target's width and alignment, and whether
    the core can speculate the address early)."""
    nom = 1 + (1 if target is not None and target.size == 4 and target.addr % 4 == 2 else 0)
    return (1, min(3, nom + (1 if indirect else 0)), 3)


def _is_load(i: Insn) -> bool:
    return i.mnem in _LOADS


def _is_store(i: Insn) -> bool:
    return i.mnem in _STORES


def _address_regs(i: Insn) -> set[str]:
    inside = re.search(r"\[([^\]]*)\]", i.ops)
    return {_ALIAS.get(r, r) for r in _REG.findall(inside.group(1))} if inside else set()


def _writes(i: Insn) -> str | None:
    """The register a data-processing instruction writes (its first operand)."""
    if i.mnem in ("cmp", "cmn", "tst", "teq", "it", "nop") or not i.regs:
        return None
    return i.regs[0]


def _reglist(ops: str) -> int:
    """N of Table 3-1: registers in a {list}, ranges such as r4-r7 or s16-s31 expanded."""
    inside = re.search(r"\{([^}]*)\}", ops)
    if not inside:
        return 1
    n = 0
    for part in inside.group(1).split(","):
        a, _, b = part.strip().partition("-")
        lo, hi = a[1:], b.strip()[1:]
        n += int(hi) - int(lo) + 1 if lo.isdigit() and hi.isdigit() else 1
    return n


def insn_cost(i: Insn, prev: Insn | None) -> Cost:
    """Cycles of one instruction (not counting a taken branch's refill), given the one before
    it in the same block (pipelining and address-dependency rules of TRM 3.3.2)."""
    m, regs = i.mnem, i.regs
    if _is_load(i) or _is_store(i):
        if "pc" in regs[:1] and _is_load(i):
            return (2, 2, 2)                      # LDR PC: 2 + P, the P billed as a branch
        stall = 0
        addr = _address_regs(i)
        if prev is not None and not (_is_load(prev) or _is_store(prev)):
            w = _writes(prev)                     # no forwarding into address generation
            stall = 1 if w is not None and w in addr and prev.mnem in _ALU1 else 0
        pipelined = (prev is not None and _is_load(prev) and prev.regs
                     and prev.regs[0] not in addr)
        if pipelined:
            return (1, 1, 1)
        if _is_store(i):
            reg_offset = len(addr) > 1
            c = (2 if reg_offset else 1) + stall
            return (c, c, c)
        c = 2 + stall
        return (c, c, c)
    if m in ("ldrd", "strd"):
        return (3, 3, 3)                          # 1 + N, N = 2; never pipelined
    if m in ("ldm", "ldmia", "ldmdb", "ldmfd", "stm", "stmia", "stmdb", "stmea", "push", "pop"):
        n = _reglist(i.ops)
        return (1 + n, 1 + n, 1 + n)
    if m in ("vpush", "vpop", "vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb"):
        n = _reglist(i.ops) * (2 if re.search(r"\{\s*d", i.ops) else 1)   # D = 2 words
        return (1 + n, 1 + n, 1 + n)
    if m in ("sdiv", "udiv"):
        return (2, 7, 12)                         # early termination by operand size
    if m in _FPU:
        c = _FPU[m]
        if m == "vmov" and len(regs) == 2 and i.ops.count(",") >= 2:
            c = 2                                 # two core registers <-> D / two S
        return (c, c, c)
    if m == "isb":
        return (2, 2, 4)                          # 1 + B, B >= one refill
    if m in ("tbb", "tbh"):
        return (3, 3, 3)                          # 2 + P (the load and the add), P billed taken
    if m in _ALU1 or m.startswith(_DSP_PREFIX):
        return (1, 1, 1)
    return (1, 1, 1)                              # b/bl/bx/cbz before refill, and the rest


def _is_branch(i: Insn) -> tuple[bool, bool]:
    """(ends the block with a possible jump, target from a register)."""
    m = i.mnem
    if m in ("b", "bl", "cbz", "cbnz"):
        return True, False
    if m in ("bx", "blx", "tbb", "tbh"):
        return True, True
    if m in ("pop", "ldm", "ldmia", "ldmfd") and "pc" in i.regs:
        return True, True
    if (_is_load(i) or m in ("mov", "add")) and i.regs[:1] == ["pc"]:
        return True, True
    return False, False


def make_block(pc: int, insns: list[Insn], code: dict[int, Insn]) -> Block:
    total = [0, 0, 0]
    prev = None
    for i in insns:
        c = insn_cost(i, prev)
        total = [a + b for a, b in zip(total, c)]
        prev = i
    last = insns[-1]
    branch, indirect = _is_branch(last)
    taken: Cost = (0, 0, 0)
    if branch:
        target = _branch_target(last.ops) if not indirect else None
        taken = _p(code.get(target) if target is not None else None, indirect)
    return Block(pc, tuple(insns), (total[0], total[1], total[2]), taken,
                 last.addr + last.size, branch)


# ---------------------------------------------------------------------------- disassembly

_OBJDUMP_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f]{4}(?: [0-9a-f]{4})?)\s*\t(\S+)\s*(.*)$")
_QEMU_LINE = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f]{4}(?: [0-9a-f]{4})?)\s+(\S+)\s*(.*)$")


def _insn(addr: int, raw: str, mnem: str, ops: str) -> Insn:
    size = 4 if " " in raw.strip() or len(raw.strip()) == 8 else 2
    ops = ops.split(";")[0].split("@")[0].strip()
    return Insn(addr, size, _base_mnemonic(mnem), ops.lower(), f"{mnem} {ops}".strip())


def disassemble(elf: str | Path, objdump: str = "arm-none-eabi-objdump") -> dict[int, Insn]:
    """Every instruction of the ELF's code, by address (objdump -d)."""
    try:
        r = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True,
                           timeout=120, check=False)
    except FileNotFoundError:
        raise EdgeforgeError(f"{objdump} not found (apt install binutils-arm-none-eabi)") from None
    if r.returncode != 0:
        raise EdgeforgeError(f"{objdump} -d {elf}: {r.stderr.strip()[-300:]}")
    out: dict[int, Insn] = {}
    for line in r.stdout.splitlines():
        m = _OBJDUMP_LINE.match(line)
        if m and not m.group(3).startswith("."):
            out[int(m.group(1), 16)] = _insn(int(m.group(1), 16), m.group(2), m.group(3),
                                             m.group(4))
    return out


def functions(elf: str | Path, nm: str = "arm-none-eabi-nm") -> list[tuple[int, int, str]]:
    """(start, size, name) of every code symbol (size 0: a label), Thumb bit cleared."""
    r = subprocess.run([nm, "-S", "--defined-only", str(elf)], capture_output=True, text=True,
                       timeout=60, check=False)
    out = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            parts.insert(1, "0")
        if len(parts) == 4 and parts[2] in ("t", "T", "W", "w"):
            out.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return sorted(out)


# ---------------------------------------------------------------------------- the log


@dataclasses.dataclass
class Segment:
    """What ran in one op (or one address range): executions per (block, taken)."""
    runs: dict[tuple[int, bool], int] = dataclasses.field(default_factory=dict)

    def add(self, key: tuple[int, bool]) -> None:
        self.runs[key] = self.runs.get(key, 0) + 1

    def merge(self, other: Segment) -> None:
        for k, v in other.runs.items():
            self.runs[k] = self.runs.get(k, 0) + v


class ExecLog:
    """Consumes `-d in_asm,exec,nochain` lines; bounded by the number of distinct blocks.

    begin / end: addresses whose block entry opens / closes a segment (the firmware's
    ef_fw_op_begin / ef_fw_op_end). Without them, everything logged is one segment."""

    def __init__(self, code: dict[int, Insn], begin: Iterable[int] = (),
                 end: Iterable[int] = (), max_blocks: int = 200_000):
        self.code = code
        self.begin, self.end = set(begin), set(end)
        self.blocks: list[Block] = []
        self.by_host: dict[str, int] = {}
        self.pending: list[Insn] = []
        self.in_block = False
        self.prev: int | None = None          # block index that ran last
        self.prev_seg: Segment | None = None
        self.segments: list[Segment] = []
        self.glue = Segment()                 # between an op's end and the next op's begin
        self.after = Segment()                # since the last op's end (not yet glue)
        self.outside = Segment()              # before the first begin / with no markers
        self.current: Segment | None = None
        self.max_blocks = max_blocks
        self.lines = 0

    def _block_from_pending(self, pc: int) -> int:
        insns = self.pending or ([self.code[pc]] if pc in self.code else [])
        if not insns:
            insns = [Insn(pc, 2, "?", "", "?")]
        self.blocks.append(make_block(pc, insns, self.code))
        if len(self.blocks) > self.max_blocks:
            raise EdgeforgeError(f"execution log: more than {self.max_blocks} translation "
                                 "blocks; is the code self-modifying?")
        self.pending = []
        return len(self.blocks) - 1

    def feed(self, line: str) -> None:
        self.lines += 1
        if line.startswith("Trace "):
            self.in_block = False
            # Trace 0: 0x7fe804000440 [00800408/0000000e/00000110/ff000200] sym
            host, _, rest = line[8:].partition(" [")
            host = host.strip(": ")
            fields = rest.split("/")
            if len(fields) < 2:
                return
            pc = int(fields[1], 16)
            if self.pending and self.pending[0].addr == pc:
                idx = self._block_from_pending(pc)
                self.by_host[host] = idx
            else:
                idx = self.by_host.get(host)
                if idx is None or self.blocks[idx].pc != pc:
                    idx = self._block_from_pending(pc)
                    self.by_host[host] = idx
            self._ran(idx, pc)
        elif line.startswith("IN:"):
            self.in_block, self.pending = True, []
        elif self.in_block and line.startswith("0x"):
            m = _QEMU_LINE.match(line.rstrip())
            if m:
                addr = int(m.group(1), 16)
                self.pending.append(self.code.get(addr)
                                    or _insn(addr, m.group(2), m.group(3), m.group(4)))

    def _ran(self, idx: int, pc: int) -> None:
        if self.prev is not None and self.prev_seg is not None:
            b = self.blocks[self.prev]
            self.prev_seg.add((self.prev, b.ends_in_branch and pc != b.fallthrough))
        if pc in self.begin:
            self.glue.merge(self.after)       # glue between two ops is inference time
            self.after = Segment()
            self.current = Segment()
            self.segments.append(self.current)
        seg = self.current if self.current is not None else (
            self.after if self.segments else self.outside)
        self.prev, self.prev_seg = idx, seg
        if pc in self.end and self.current is not None:
            self.current = None

    def finish(self) -> None:
        if self.prev is not None and self.prev_seg is not None:
            self.prev_seg.add((self.prev, self.blocks[self.prev].ends_in_branch))
            self.prev = None

    def cost(self, seg: Segment) -> dict[str, Any]:
        lo = nom = hi = n = 0
        for (idx, taken), count in seg.runs.items():
            b = self.blocks[idx]
            c = b.cost if not taken else tuple(x + y for x, y in zip(b.cost, b.taken))
            lo, nom, hi = lo + c[0] * count, nom + c[1] * count, hi + c[2] * count
            n += len(b.insns) * count
        return {"instructions": n, "cycles": nom, "cycles_low": lo, "cycles_high": hi}

    def by_function(self, seg: Segment, funcs: list[tuple[int, int, str]], top: int = 10
                    ) -> list[dict[str, Any]]:
        """Cycles per function symbol (by each block's first address), largest first."""
        import bisect
        starts = [f[0] for f in funcs]
        acc: dict[str, int] = {}
        for (idx, taken), count in seg.runs.items():
            b = self.blocks[idx]
            k = bisect.bisect_right(starts, b.pc) - 1
            name = funcs[k][2] if k >= 0 and b.pc < funcs[k][0] + max(funcs[k][1], 1) else "?"
            c = b.cost[1] + (b.taken[1] if taken else 0)
            acc[name] = acc.get(name, 0) + c * count
        return [{"function": k, "cycles": v}
                for k, v in sorted(acc.items(), key=lambda kv: -kv[1])[:top]]


def consume(lines: Iterator[str], log: ExecLog, max_lines: int) -> ExecLog:
    """Feed at most max_lines lines (the bound on a runaway log), then finish."""
    for line in lines:
        log.feed(line)
        if log.lines > max_lines:
            raise EdgeforgeError(f"execution log longer than {max_lines:,} lines; stopped")
    log.finish()
    return log


def address_range(log: ExecLog, lo: int, hi: int) -> dict[str, Any]:
    """Cycles of the instructions at addresses [lo, hi) over the whole log (microbenchmarks):
    each block's instructions are costed in context and those in range summed."""
    tot = [0, 0, 0]
    n = 0
    segs = [log.outside, log.glue, log.after, *log.segments]
    for seg in segs:
        for (idx, taken), count in seg.runs.items():
            b = log.blocks[idx]
            prev = None
            for i in b.insns:
                c = insn_cost(i, prev)
                prev = i
                if lo <= i.addr < hi:
                    if i is b.insns[-1] and taken:
                        c = tuple(x + y for x, y in zip(c, b.taken))
                    tot = [a + x * count for a, x in zip(tot, c)]
                    n += count
    return {"instructions": n, "cycles": tot[1], "cycles_low": tot[0], "cycles_high": tot[2]}


# ---------------------------------------------------------------------------- a firmware run

# protocol and UART code: left out of the log (-dfilter), else the UART polling loop floods it
_NOT_LOGGED = ("main", "dispatch", "send_frame", "ef_uart_", "ef_frame_", "ef_crc32", "do_",
               "stack_", "ef_reset_handler", "put16", "put32", "get16", "get32", "status_only")
MAX_LOG_LINES = 200_000_000           # ~16 GB of log streamed: far past any model that fits


def _dfilter(funcs: list[tuple[int, int, str]]) -> str:
    """QEMU -dfilter ranges: every sized function but the protocol's, neighbours merged."""
    keep = [(a, a + s) for a, s, n in funcs if s and not n.startswith(_NOT_LOGGED)]
    merged: list[list[int]] = []
    for a, b in sorted(keep):
        if merged and a <= merged[-1][1] + 4:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return ",".join(f"0x{a:x}..0x{b - 1:x}" for a, b in merged)


def estimate(directory: str | Path, x: Any, *, board: str = "mps2-an386",
             kernels: str | None = None, elf: str | Path | None = None,
             timeout_s: float = 600.0, filter_protocol: bool = True,
             region: tuple[str, str] | None = None) -> dict[str, Any]:
    """One inference of DIR's firmware on QEMU with the execution log streamed through a
    FIFO: estimated Cortex-M4 cycles in total and per op (the firmware's op markers), the
    log's own instruction count beside them, and the hottest functions.

    elf: another image speaking the same protocol (benchmarks/peers: TFLM in our harness).
    region=(begin, end): function names whose entries open and close the inference instead
    of the op markers, e.g. ("ef_peer_invoke", "ef_counter_now") for an image whose per-op
    events are compiled out. filter_protocol=False logs the protocol loop too (slower; what
    a run falls back to when the filtered log's count disagrees with the firmware's)."""
    import os
    import tempfile
    import threading

    import numpy as np

    from edgeforge.manifest import Manifest
    from edgeforge.runner import check_inputs
    from edgeforge.targets import commands
    from edgeforge.targets.build import ensure_built
    from edgeforge.targets.protocol import Device
    from edgeforge.targets.qemu import QemuTarget

    directory = Path(directory)
    m = Manifest.load(directory)
    elf = Path(elf) if elf else ensure_built(directory, board, kernels)
    code = disassemble(elf)
    funcs = functions(elf)
    first, last = region or ("ef_fw_op_begin", "ef_fw_op_end")
    begin = [a for a, _, n in funcs if n.startswith(first)]
    end = [a for a, _, n in funcs if n.startswith(last)]
    if not begin or not end:
        raise EdgeforgeError(f"{elf}: no {first} / {last} functions to find the inference by "
                             "(an edgeforge firmware from firmware_templates/)")

    def session(dfilter: list[str]) -> tuple[ExecLog, int | None]:
        log = ExecLog(code, begin, end)
        with tempfile.TemporaryDirectory(prefix="ef-cycles-") as tmp:
            fifo = os.path.join(tmp, "exec.log")
            os.mkfifo(fifo)
            err: list[BaseException] = []

            def reader() -> None:
                try:
                    with open(fifo, errors="replace") as f:
                        consume(f, log, MAX_LOG_LINES)
                except BaseException as e:       # noqa: BLE001 - handed to the caller below
                    err.append(e)

            th = threading.Thread(target=reader, daemon=True)
            th.start()
            t = QemuTarget(board, kernels=kernels, elf=elf, timeout=30.0,
                           extra_args=["-d", "in_asm,exec,nochain", "-D", fifo, *dfilter])
            try:
                # the bare protocol: a peer's image carries no model hash of ours to check
                transport, expect_boot = t._start(directory)
                dev = Device(transport, timeout=30.0)
                if expect_boot:
                    dev.wait_boot()
                commands.info(dev)
                for i, a in enumerate(check_inputs(m.inputs, [x], "cycles")):
                    commands.write_input(dev, i, np.ascontiguousarray(a).tobytes())
                counted = commands.invoke(dev, 1, 0)[0]
                dev.close()
            finally:
                if t.proc is not None and t.proc.poll() is None:
                    t.proc.terminate()           # a clean exit flushes QEMU's log buffer
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        t.proc.wait(timeout=10.0)
                t.close()
                if th.is_alive():                # QEMU never opened the log: release the reader
                    with contextlib.suppress(OSError):
                        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                th.join(timeout_s)
        if err:
            raise err[0]
        if th.is_alive():
            raise EdgeforgeError(f"execution log not consumed within {timeout_s:.0f} s")
        return log, counted

    # the protocol's functions are left out of the log (its UART polling would flood it);
    # if link-time inlining put part of the inference into one of them, the log's count
    # falls short of the firmware's, and the run is repeated with everything logged
    filtered = filter_protocol
    log, counted = session(["-dfilter", _dfilter(funcs)] if filtered else [])
    n = sum(log.cost(s)["instructions"] for s in (log.glue, *log.segments))
    if filtered and counted and abs(n - counted) > 0.01 * counted:
        filtered = False
        log, counted = session([])
    per_op = [log.cost(s) for s in log.segments]
    total = log.cost(Segment(runs={**log.glue.runs}))
    for s in log.segments:
        seg = log.cost(s)
        for k in total:
            total[k] += seg[k]
    nops = len(m.ops)
    return {
        "model": "cortex-m4", "source": SOURCE, **total,
        # the firmware's own count of the same inference (SysTick under -icount)
        "instructions_counted": counted,
        "per_op": [{"index": i, "op": m.ops[i] if i < nops else "?", **c}
                   for i, c in enumerate(per_op)],
        "hot_functions": log.by_function(_union(log), funcs),
        "blocks": len(log.blocks), "log_lines": log.lines, "protocol_filtered": filtered,
    }


def _union(log: ExecLog) -> Segment:
    s = Segment(runs={**log.glue.runs})
    for seg in log.segments:
        s.merge(seg)
    return s
