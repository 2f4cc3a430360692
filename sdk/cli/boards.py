"""`edgeforge boards [--json]`: edgeforge.api.boards, one row per board profile."""
from __future__ import annotations

import json
from typing import Any

from edgeforge import api


def main(args: Any) -> int:
    rows = api.boards()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from rich.table import Table

    from edgeforge.cli import console
    t = Table(title="boards (targets/boards/*.toml): --board NAME, --target qemu://NAME")
    for col, just in (("name", "left"), ("cpu", "left"), ("kernels", "left"),
                      ("MHz", "right"), ("flash", "right"), ("RAM", "right"),
                      ("flashed with", "left"), ("QEMU", "left"), ("toolchain", "left")):
        t.add_column(col, justify=just)
    for b in rows:
        t.add_row(b["name"], b["cpu"], b["kernels"], f"{b['clock_mhz']:g}",
                  f"{b['flash_bytes'] // 1024:,} KB", f"{b['ram_bytes'] // 1024:,} KB",
                  b["flasher"], "yes" if b["qemu"] else "",
                  b["toolchain"] + ("" if b["toolchain_installed"] else " (not installed)"))
    console().print(t)
    return 0
