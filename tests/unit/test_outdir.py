"""compile -o: a DIR is recognised by what only edgeforge writes, compile never deletes a file
it did not write, and the swap of an old DIR for a new one survives a failure at every step
(issue 10, data loss)."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeforge import outdir
from edgeforge.compiler import compile_model
from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest
from tests.conftest import ROOT, fixture

KWS = "kws_ds_cnn_int8.tflite"
OTHER = "ic_resnet8_int8.tflite"


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file()}


def intact(d: Path) -> str:
    """d is a whole compiled DIR (every listed file there, unchanged); its model_sha256."""
    assert outdir.not_ours(d) == [], outdir.not_ours(d)
    return Manifest.load(d).model_sha256


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.parent.iterdir() if p.name.startswith(f".{d.name}."))


def test_a_folder_with_a_foreign_manifest_is_not_a_dir(tmp_path):
    """The issue's repro: any manifest.json made a folder a DIR, and compile wiped it."""
    w = tmp_path / "w"
    (w / "src").mkdir(parents=True)
    (w / "manifest.json").write_text('{"name":"x"}')
    (w / "index.html").write_text("<p>mine</p>")
    before = tree(w)
    r = cli("compile", fixture(KWS), "-o", w)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "not a compiled DIR" in r.stderr and "format edgeforge-dir/1" in r.stderr
    assert tree(w) == before and (w / "src").is_dir()
    assert leftovers(w) == []


def test_manifest_lists_every_file_with_its_hash(tmp_path):
    compile_model(fixture(KWS), tmp_path / "d")
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert m["format"] == "edgeforge-dir/1"
    on_disk = {k for k in tree(tmp_path / "d") if k != "manifest.json"}
    assert set(m["files"]) == on_disk and "model.tflite" in on_disk and "c/model.c" in on_disk
    assert m["files"]["model.tflite"] == m["model_sha256"]


@pytest.mark.parametrize("change, named", [
    (lambda d: (d / "notes.txt").write_text("mine"), "notes.txt"),
    (lambda d: (d / "c" / "mine.c").write_text("int x;"), "c/mine.c"),
    (lambda d: (d / "empty").mkdir(), "empty/"),
    (lambda d: (d / "c" / "model.c").write_text("/* edited */"), "c/model.c (edited)"),
    (lambda d: (d / "fw" / "b").mkdir(parents=True) or (d / "fw" / "b" / "x.txt").write_text(""),
     "fw/b/x.txt"),
    (lambda d: os.symlink("/etc", d / "link"), "link"),
])
def test_recompile_refuses_what_the_user_put_in_a_dir(tmp_path, change, named):
    d = tmp_path / "d"
    compile_model(fixture(KWS), d)
    change(d)
    before = tree(d)
    r = cli("compile", fixture(OTHER), "-o", d)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line, = r.stderr.strip().splitlines()
    assert "holds files edgeforge did not write" in line and named in line, line
    assert tree(d) == before and leftovers(d) == []


def test_recompile_replaces_a_dir_with_its_build_output(tmp_path):
    """fw/<board>/ is what `edgeforge build` wrote: a recompile may replace it."""
    d = tmp_path / "d"
    compile_model(fixture(KWS), d)
    (d / "fw" / "mps2-an386").mkdir(parents=True)
    (d / "fw" / "mps2-an386" / "firmware.elf").write_bytes(b"\x7fELF")
    (d / "fw" / ".mps2-an386-abc").mkdir()            # build's own interrupted temp dir
    res = compile_model(fixture(OTHER), d)
    assert intact(d) == res.manifest.model_sha256 and not (d / "fw").exists()
    assert leftovers(d) == []


def old_and_new(tmp_path: Path) -> tuple[Path, str, str]:
    d = tmp_path / "d"
    old = compile_model(fixture(KWS), d).manifest.model_sha256
    new = compile_model(fixture(OTHER), tmp_path / "ref").manifest.model_sha256
    assert old != new
    return d, old, new


class Boom(KeyboardInterrupt):
    """Ctrl-C at one step."""


# (step, which call of it fails): every step swap_in takes, in both ways of swapping
STEPS = [("hash_tree", 1), ("check_out", 2), ("_publish", 1), ("_exchange", 1), ("rmtree", 1),
         ("_rename", 1), ("_rename", 2)]


def fail_at(monkeypatch, step: str, nth: int, *, fallback: bool, killed: bool) -> None:
    """Make the nth call of outdir.<step> raise. fallback: no renameat2 exchange, so the old
    DIR is renamed aside first. killed: no cleanup or rollback runs after the failure
    either, as when the process is killed there."""
    real = getattr(outdir, step)
    calls = {"n": 0}

    def dead(*a, **k):
        raise Boom("killed")

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] != nth:
            return real(*a, **k)
        if killed:
            monkeypatch.setattr(outdir, "rmtree", dead)
            monkeypatch.setattr(outdir, "_rename", dead)
        raise Boom(step)
    if fallback and step != "_exchange":
        def no_exchange(a, b):
            raise OSError(errno.EINVAL, "no RENAME_EXCHANGE here")
        monkeypatch.setattr(outdir, "_exchange", no_exchange)
    monkeypatch.setattr(outdir, step, boom)


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "rename-aside"])
@pytest.mark.parametrize("killed", [False, True], ids=["ctrl-c", "killed"])
@pytest.mark.parametrize("step, nth", STEPS)
def test_a_failure_at_every_step_of_the_swap_keeps_a_dir(tmp_path, monkeypatch, step, nth,
                                                         fallback, killed):
    """Fail each step of replacing DIR: DIR is the old or the new one, whole, at once
    (Manifest.load finishes a rename-aside cut in half), and the next compile cleans up
    every temporary folder."""
    d, old, new = old_and_new(tmp_path)
    with monkeypatch.context() as mp:
        fail_at(mp, step, nth, fallback=fallback, killed=killed)
        try:
            compile_model(fixture(OTHER), d)
            failed = False
        except Boom:
            failed = True
    assert failed or step == "_rename" and not fallback    # a rename only in the fallback
    assert Manifest.load(d).model_sha256 in (old, new)     # recovers a cut rename-aside
    assert intact(d) in (old, new)
    compile_model(fixture(OTHER), d)
    assert intact(d) == new and leftovers(d) == []


def test_next_command_rolls_back_a_rename_aside_cut_in_half(tmp_path):
    """State a kill between the two renames leaves: no DIR, the old one at .d.X.old and a
    half-written new one at .d.Y.tmp whose writer is gone."""
    d, old, _ = old_and_new(tmp_path)
    os.rename(d, tmp_path / ".d.abc.old")
    partial = tmp_path / ".d.xyz.tmp"
    partial.mkdir()
    (partial / outdir.PARTIAL).write_text("999999999")
    (partial / "model.tflite").write_bytes(b"half")
    assert Manifest.load(d).model_sha256 == old          # any command reading DIR recovers
    assert leftovers(d) == []


def test_recover_leaves_what_is_not_ours(tmp_path):
    d = tmp_path / "d"
    mine = tmp_path / ".d.keep.tmp"                      # a user's folder with our pattern
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    live = tmp_path / ".d.live.tmp"                      # another compile still writing
    live.mkdir()
    (live / outdir.PARTIAL).write_text(str(os.getppid()))
    outdir.recover(d)
    assert (mine / "notes.txt").read_text() == "mine" and live.is_dir()


def test_output_is_a_file_or_a_symlink(tmp_path):
    (tmp_path / "f").write_text("x")
    os.symlink(tmp_path / "f", tmp_path / "ln")
    for o in ("f", "ln"):
        with pytest.raises(EdgeforgeError, match="exists and is not a directory"):
            compile_model(fixture(OTHER), tmp_path / o)
    assert (tmp_path / "f").read_text() == "x"


def test_compile_into_an_empty_folder_and_a_new_one(tmp_path):
    (tmp_path / "empty").mkdir()
    compile_model(fixture(OTHER), tmp_path / "empty")
    compile_model(fixture(OTHER), tmp_path / "a" / "b")
    intact(tmp_path / "empty")
    intact(tmp_path / "a" / "b")
    shutil.rmtree(tmp_path / "a")


def test_output_is_the_current_directory(tmp_path, monkeypatch):
    """-o . (or a parent of it): the swap would leave the shell in a deleted folder."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for o in (".", "..", str(tmp_path)):
        with pytest.raises(EdgeforgeError, match="is the current directory or contains it"):
            compile_model(fixture(KWS), o)
    assert [p.name for p in tmp_path.iterdir()] == ["sub"] and not any((tmp_path / "sub").iterdir())


def test_a_name_with_glob_characters(tmp_path, monkeypatch):
    d = tmp_path / "x[1]*"
    compile_model(fixture(KWS), d)
    (tmp_path / ".x1a.abc.tmp").mkdir()                  # matched by an unescaped glob
    (tmp_path / ".x1a.abc.tmp" / "keep").write_text("mine")
    with monkeypatch.context() as mp:
        fail_at(mp, "rmtree", 1, fallback=False, killed=True)
        with pytest.raises(Boom):
            compile_model(fixture(OTHER), d)
    assert len(leftovers(d)) == 1                        # the old DIR, swapped out
    compile_model(fixture(OTHER), d)
    assert leftovers(d) == [] and (tmp_path / ".x1a.abc.tmp" / "keep").read_text() == "mine"


def test_a_dir_from_before_the_format_key(tmp_path):
    """A DIR whose manifest has no format key / file list (compiled before it existed): it
    cannot be told from a user's folder, so it is refused with a word on why."""
    d = tmp_path / "d"
    compile_model(fixture(KWS), d)
    m = json.loads((d / "manifest.json").read_text())
    del m["format"], m["files"]
    (d / "manifest.json").write_text(json.dumps(m))
    before = tree(d)
    with pytest.raises(EdgeforgeError, match="from an older edgeforge .* delete it yourself"):
        compile_model(fixture(OTHER), d)
    assert tree(d) == before
