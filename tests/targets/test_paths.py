"""Odd paths and names (issue 10): a DIR with spaces, quotes, commas or flasher options in its
name; board names that are paths; target options in the URI query.

`flash` split a formatted command string (`sp ace/x --erase chip` became flasher arguments, a
`'` a traceback); `-Wl,-Map=` split a DIR with a comma (build, profile qemu://); `--board
../../x/evil` loaded a profile from outside targets/boards/; `?threads=2` lost to the CLI's
default; `local?dir=...` was an unknown target.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from edgeforge.errors import EdgeforgeError
from edgeforge.targets import open_target
from edgeforge.targets.board import BOARDS_DIR, load_board
from edgeforge.targets.flash import flasher_argv
from tests.conftest import require
from tests.targets._servers import client_key, compile_fixture, make_dir, sshd  # noqa: F401

ODD = "sp ace/x --erase chip/it's,a dir"       # every character that broke something


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_flasher_template_is_split_before_the_paths_go_in():
    elf = f"/w/{ODD}/fw/firmware.elf"
    assert flasher_argv("b", "pyocd flash --target nrf52840 {hex}", {"hex": elf}) == \
        ["pyocd", "flash", "--target", "nrf52840", elf]
    assert flasher_argv("b", "pyocd flash {bin}@0x08000000", {"bin": elf}) == \
        ["pyocd", "flash", f"{elf}@0x08000000"]
    # openocd -c takes a Tcl script: the path goes in Tcl braces, one word for Tcl too
    argv = flasher_argv("b", 'openocd -f x.cfg -c "program {elf} verify reset exit"',
                        {"elf": elf})
    assert argv == ["openocd", "-f", "x.cfg", "-c", f"program {{{elf}}} verify reset exit"]
    with pytest.raises(EdgeforgeError, match="cannot quote the path"):
        flasher_argv("b", 'openocd -c "program {elf} exit"', {"elf": "/w/a}b/firmware.elf"})
    with pytest.raises(EdgeforgeError, match="unknown placeholder"):
        flasher_argv("b", "pyocd {nope}", {"elf": elf})
    with pytest.raises(EdgeforgeError, match="flasher command"):
        flasher_argv("b", "pyocd 'unclosed {elf}", {"elf": elf})


def test_board_names_are_names_and_files_are_explicit_paths(tmp_path):
    evil = tmp_path / "x" / "evil.toml"
    evil.parent.mkdir()
    shutil.copyfile(BOARDS_DIR / "mps2-an386.toml", evil)
    # what `BOARDS_DIR / f"{name}.toml"` used to resolve to the file outside the folder
    sneaky = os.path.relpath(str(evil)[:-5], BOARDS_DIR)
    for name in (sneaky, "../../x/evil", "mps2-an386/../mps2-an386", str(evil)[:-5]):
        with pytest.raises(EdgeforgeError, match="unknown board"):
            load_board(name)
    b = load_board(str(evil))                         # explicitly a .toml path: the user's file
    assert b.path == evil and b.name == "mps2-an386"
    bad = tmp_path / "bad.toml"
    bad.write_text((BOARDS_DIR / "mps2-an386.toml").read_text()
                   .replace('name = "mps2-an386"', 'name = "../../escape"'))
    with pytest.raises(EdgeforgeError, match="bad board profile .*name"):
        load_board(str(bad))                         # its name becomes DIR/fw/<name>/


@pytest.fixture(scope="module")
def odd_dir(tmp_path_factory) -> Path:
    require("arm-none-eabi-gcc")
    return compile_fixture("kws_ds_cnn_int8.tflite", tmp_path_factory.mktemp("paths") / ODD,
                           numerics="tflm")


def test_build_and_profile_qemu_in_a_dir_with_a_comma(odd_dir):
    require("arm-none-eabi-gcc", "qemu-system-arm")
    r = cli("build", str(odd_dir), "--board", "mps2-an386", "--json")
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)["elf"]).is_file()
    assert (odd_dir / "fw" / "mps2-an386" / "firmware.elf").is_file()
    r = cli("profile", str(odd_dir), "--target", "qemu://mps2-an386", "--runs", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outputs_match_reference"] is True


def test_flash_passes_an_odd_dir_as_one_argument(odd_dir, tmp_path, monkeypatch):
    require("arm-none-eabi-gcc")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv.txt"
    fake = bindir / "pyocd"              # records one argument per line
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > '{log}'\n")
    fake.chmod(0o755)
    gcc = Path(shutil.which("arm-none-eabi-gcc")).parent
    monkeypatch.setenv("PATH", f"{bindir}:{gcc}:/usr/bin:/bin")
    r = cli("flash", str(odd_dir), "--board", "nrf52840-dk")
    assert r.returncode == 0, r.stderr
    argv = log.read_text().splitlines()
    assert argv == ["flash", "--target", "nrf52840",
                    str(odd_dir / "fw" / "nrf52840-dk" / "firmware.hex")]
    assert Path(argv[-1]).is_file() and "--erase" not in argv[:-1]


def test_cli_refuses_a_board_path_as_a_name_and_says_when_it_uses_a_file(odd_dir, tmp_path):
    require("arm-none-eabi-gcc")
    evil = tmp_path / "x" / "evil.toml"
    evil.parent.mkdir()
    evil.write_text((BOARDS_DIR / "nrf52840-dk.toml").read_text()
                    .replace('name = "nrf52840-dk"', 'name = "evil"'))
    r = cli("flash", str(odd_dir), "--board", str(evil)[:-5])
    assert r.returncode == 2 and "unknown board" in r.stderr and "--board ./my-board.toml" in \
        r.stderr and "Traceback" not in r.stderr
    r = cli("build", str(odd_dir), "--board", str(evil), "--json")
    assert r.returncode == 0, r.stderr
    assert f"board evil from the profile file {evil}" in r.stderr
    assert (odd_dir / "fw" / "evil" / "firmware.elf").is_file()


def test_local_query_options_are_accepted_and_unknown_ones_refused(tmp_path):
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    base = tmp_path / "base dir"
    r = cli("profile", str(d), "--target", f"local?dir={quote(str(base))}&threads=2",
            "--runs", "2", "--json", timeout=180)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["threads"] == 2 and (base / "models").is_dir()
    for uri, match in (("local?thread=2", "unknown target option.*thread"),
                       ("local?threads=0", "threads='0'"),
                       ("local?threads=abc", "threads='abc'"),
                       ("local?timeout=-1", "timeout='-1'")):
        with pytest.raises(EdgeforgeError, match=match):
            open_target(uri)


def test_ssh_uri_threads_is_honoured_by_profile(sshd, client_key, tmp_path):  # noqa: F811
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    uri = (f"{sshd.uri}?python={quote(sys.executable)}&dir={quote(str(tmp_path / 'b'))}"
           "&threads=2")
    common = ("--identity", str(client_key), "--known-hosts", str(sshd.known_hosts), "--runs",
              "2", "--json")
    r = cli("profile", str(d), "--target", uri, *common, timeout=180)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["threads"] == 2
    r = cli("profile", str(d), "--target", uri, "--threads", "3", *common, timeout=180)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["threads"] == 3          # an explicit flag wins
