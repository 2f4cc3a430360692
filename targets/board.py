"""Board profiles (targets/boards/*.toml): a board's CPU, memory map, toolchain, counter and
flasher. Plain data read by compile (RAM limit) and by every target that builds or talks
to firmware, so it sits low in the layer chain, beside the manifest."""
from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge.errors import EdgeforgeError

BOARDS_DIR = Path(__file__).resolve().parent / "boards"
log = logging.getLogger(__name__)     # the CLI shows edgeforge.* records on stderr
_ANNOUNCED: set[str] = set()          # board files already said to be in use


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    arch: str
    dsp: bool
    toolchain: str                 # prefix: "arm-none-eabi-"
    cflags: tuple[str, ...]
    template: str
    kernels: str                   # "ref" | "dsp"
    clock_hz: int
    counter: str
    count_scale: int
    counter_unit: str              # "instructions" | "cycles"
    stack_bytes: int
    flash: dict[str, int]          # origin, size
    ram: dict[str, int]
    uart: dict[str, Any]           # driver, base, baud
    flasher: dict[str, str]        # tool, command, bootloader
    path: Path = field(default=Path())
    variant: str = ""              # set when the kernel set differs from the profile's
    clock: dict[str, Any] = field(default_factory=dict)   # [clock]: driver + its constants

    @property
    def gcc(self) -> str:
        return self.toolchain + "gcc"


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def is_board_file(name: str) -> bool:
    """A user's own profile is named by a path to a .toml (./my.toml), never by a name."""
    return name.endswith(".toml") and "/" in name


def load_board(name: str) -> Board:
    """Board profile by name (case-insensitive; "NUCLEO-L4R5ZI" == "nucleo-l4r5zi"), one of
    targets/boards/; or, given explicitly as a path ending in .toml (./my.toml), the user's
    own profile file -- its toolchain and flasher commands are run, so it is never found by
    a name (`--board ../../x/evil` is refused, not resolved outside the boards folder)."""
    if is_board_file(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise EdgeforgeError(f"board profile file {name} does not exist")
    else:
        names = board_names()
        if name.lower() not in names:
            hint = (" (a board file of your own: pass its path, e.g. --board ./my-board.toml)"
                    if "/" in name or "\\" in name or name.startswith(".") else "")
            raise EdgeforgeError(f"unknown board {name!r}; available: {', '.join(names)}{hint}")
        path = BOARDS_DIR / f"{name.lower()}.toml"
    try:
        raw = tomllib.loads(path.read_text())
        board = Board(
            name=raw["name"], description=raw["description"], cpu=raw["cpu"], arch=raw["arch"],
            dsp=bool(raw["dsp"]), toolchain=raw["toolchain"], cflags=tuple(raw["cflags"]),
            template=raw["template"], kernels=raw["kernels"], clock_hz=int(raw["clock_hz"]),
            counter=raw["counter"], count_scale=int(raw["count_scale"]),
            counter_unit=raw["counter_unit"], stack_bytes=int(raw["stack_bytes"]),
            flash=dict(raw["flash"]), ram=dict(raw["ram"]), uart=dict(raw["uart"]),
            flasher=dict(raw["flasher"]), path=path, clock=dict(raw.get("clock", {})))
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError, UnicodeDecodeError,
            OSError) as e:
        raise EdgeforgeError(f"{path}: bad board profile ({type(e).__name__}: {e})") from None
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", board.name):   # names DIR/fw/<name>/
        raise EdgeforgeError(f"{path}: bad board profile (name {board.name!r}: lower-case "
                             "letters, digits, '.', '_', '-')")
    if is_board_file(name) and str(path) not in _ANNOUNCED:
        _ANNOUNCED.add(str(path))
        log.warning("edgeforge: board %s from the profile file %s (not a built-in board): its "
                    "toolchain and flasher commands will run", board.name, path)
    return board
