"""The C library's public headers hold the public API only, and nothing they define is dead.

Public: what codegen ships to users' builds as API (codegen.c.HEADERS). Private helpers of
the kernels (ef_nn_*) live in kernels/ref/ef_nn_support.h.
"""
from __future__ import annotations

import re

from edgeforge.codegen.c import HEADERS, RUNTIME_C
from tests.conftest import ROOT


def _sources() -> str:
    """Every C source, header and generator that could use a name."""
    parts = [p.read_text() for p in (ROOT / "runtime" / "c").rglob("*.[chS]")]
    parts += [p.read_text() for p in (ROOT / "firmware_templates").rglob("*.[ch]")]
    parts += [p.read_text() for p in (ROOT / "sdk").rglob("*.py")]
    return "\n".join(parts)


def test_public_headers_have_no_private_helpers():
    for h in HEADERS:
        names = re.findall(r"\b(ef_nn_\w+)\s*\(", (RUNTIME_C / h).read_text())
        assert not names, f"{h} defines private helpers {names}; move them to ef_nn_support.h"


def test_every_macro_and_status_of_ef_types_is_used():
    text = (RUNTIME_C / "ef_types.h").read_text()
    names = set(re.findall(r"^#define (EF_\w+)", text, re.MULTILINE))
    names |= set(re.findall(r"^\s+(EF_[A-Z_]+)\s*=", text, re.MULTILINE))
    names.discard("EF_TYPES_H")
    everything = _sources()
    # a use is any mention but a definition (`#define NAME`, `NAME = value` in the enum)
    unused = sorted(n for n in names
                    if not re.search(rf"(?<!#define )\b{n}\b(?!\s*=[^=])", everything))
    assert not unused, f"defined in ef_types.h, used nowhere: {unused}"
