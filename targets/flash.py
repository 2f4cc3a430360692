"""`edgeforge flash DIR --board B [--port P]`: put DIR's firmware on a board with its flasher.

The board profile's [flasher] says which tool (pyocd, openocd, picotool, esptool) and its
command line, with {elf} {bin} {hex} {port} filled in here. The firmware is built first if
missing or stale. A missing flasher is one clear error naming how to install it.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edgeforge.errors import BuildError, DeviceError, EdgeforgeError
from edgeforge.targets.build import ensure_built, load_board

FLASH_TIMEOUT_S = 300
# flasher -> (executables to look for, how to install)
FLASHERS: dict[str, tuple[tuple[str, ...], str]] = {
    "pyocd": (("pyocd",), "pip install pyocd"),
    "openocd": (("openocd",), "apt install openocd"),
    "picotool": (("picotool",), "apt install picotool, or build raspberrypi/picotool"),
    "esptool": (("esptool.py", "esptool"), "pip install esptool"),
}


def flash_command(directory: str | Path, board_name: str, port: str | None = None) -> list[str]:
    """The flasher command line for DIR's (built) firmware on this board."""
    board = load_board(board_name)
    tool = board.flasher["tool"]
    if tool == "qemu":
        return []
    if tool not in FLASHERS:
        raise EdgeforgeError(f"board {board.name}: unknown flasher {tool!r} "
                             f"(known: {', '.join(FLASHERS)})")
    exes, how = FLASHERS[tool]
    exe = next((e for e in exes if shutil.which(e)), None)
    if exe is None:
        raise EdgeforgeError(f"board {board.name} is flashed with {tool}, which is not "
                             f"installed ({how}); bootloader: {board.flasher['bootloader']}")
    template = board.flasher["command"]
    if "{port}" in template and not port:
        raise EdgeforgeError(f"board {board.name}: {tool} needs --port (e.g. /dev/ttyUSB0)")
    elf = ensure_built(directory, board.name)
    files = {"elf": elf, "bin": elf.with_suffix(".bin"), "hex": elf.with_suffix(".hex"),
             "port": port or ""}
    if "{hex}" in template and not files["hex"].is_file():
        r = subprocess.run([board.toolchain + "objcopy", "-O", "ihex", str(elf),
                            str(files["hex"])], capture_output=True, text=True, timeout=60,
                           check=False)
        if r.returncode != 0:
            raise BuildError(f"objcopy -O ihex failed: {r.stderr.strip()}")
    argv = flasher_argv(board.name, template, {k: str(v) for k, v in files.items()})
    argv[0] = exe if argv[0] in exes else argv[0]
    return argv


def flasher_argv(board: str, template: str, values: dict[str, str]) -> list[str]:
    """The board's command template split into words FIRST, then each {name} filled in:
    a path with spaces, quotes or `--erase chip` in it stays one argument. A placeholder
    inside a multi-word argument (openocd's `-c "program {elf} verify"`, a Tcl script) gets
    the path in Tcl braces, and a path Tcl braces cannot hold is refused."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise EdgeforgeError(f"board {board}: flasher command {template!r}: {e}") from None
    argv = []
    for w in words:
        script = any(c.isspace() for c in w)
        fill = dict(values)
        if script:
            for k, v in values.items():
                if f"{{{k}}}" in w and set(v) & set("{}\\\n"):
                    raise EdgeforgeError(f"board {board}: the flasher's script argument {w!r} "
                                         f"cannot quote the path {v!r}; move the DIR to a "
                                         "path without braces, backslashes or newlines")
                fill[k] = "{" + v + "}"
        try:
            argv.append(w.format(**fill))
        except (KeyError, IndexError, ValueError) as e:
            raise EdgeforgeError(f"board {board}: flasher command {template!r} has an unknown "
                                 f"placeholder ({e}); known: {', '.join(values)}") from None
    return argv


def flash(directory: str | Path, board_name: str, port: str | None = None) -> dict[str, Any]:
    argv = flash_command(directory, board_name, port)
    if not argv:
        return {"board": board_name, "flashed": False,
                "note": "QEMU loads firmware.elf itself at every `edgeforge profile`"}
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S,
                           check=False)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{argv[0]} timed out after {FLASH_TIMEOUT_S} s") from None
    if r.returncode != 0:
        raise DeviceError(f"{shlex.join(argv)} failed ({r.returncode}):\n"
                          f"{(r.stderr or r.stdout).strip()[-2000:]}")
    return {"board": board_name, "flashed": True, "command": argv}
