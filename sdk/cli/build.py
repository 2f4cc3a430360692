"""`edgeforge build DIR --board B`: edgeforge.api.build, then the size table (or --json)."""
from __future__ import annotations

import json
from typing import Any

from edgeforge import api


def print_sizes(result: dict[str, Any]) -> None:
    from rich.table import Table

    s, lim = result["sizes"], result["limits"]
    t = Table(title=f"{result['board']}: {result['elf']}")
    t.add_column("section")
    t.add_column("bytes", justify="right")
    t.add_column("where")
    for k, where in (("code", "flash"), ("weights", "flash"), ("data", "flash+RAM"),
                     ("bss", "RAM"), ("arena", "RAM"), ("stack", "RAM")):
        t.add_row(k, f"{s[k]:,}", where)
    t.add_row("flash total", f"{s['flash']:,}", f"of {lim['flash']:,} ({s['flash'] / lim['flash']:.1%})")
    t.add_row("RAM total", f"{s['ram']:,}", f"of {lim['ram']:,} ({s['ram'] / lim['ram']:.1%})")
    from edgeforge.cli import console
    console().print(t)
    for w in result["warnings"]:
        print(f"warning: {w}")


def main(args: Any) -> int:
    result = api.build(args.dir, args.board, kernels=getattr(args, "kernels", None))
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2))
    else:
        print_sizes(result)
    return 0

