"""Safe output files (renyi_cert._files) and the Ctrl-C policy of every command (renyi_cert._cli)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from renyi_cert._cli import EXIT_INTERRUPTED, interruptible
from renyi_cert._files import (
    LockedError,
    OutputPathError,
    atomic_output,
    atomic_write_text,
    check_output_path,
    exclusive_lock,
    lock_path,
)


# ------------------------------------------------------------------------------ atomic writes


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "sub" / "settings.json"
    atomic_write_text(target, "first")
    os.chmod(target, 0o600)
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["settings.json"]  # no temporary left behind


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, exc):
    target = tmp_path / "model.pt"
    target.write_bytes(b"the trained model")
    with pytest.raises(type(exc)):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half a mod")  # a save killed half-way
            raise exc
    assert target.read_bytes() == b"the trained model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_failed_first_write_leaves_no_file(tmp_path):
    target = tmp_path / "report.md"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ output checks


def test_check_output_path_accepts_new_nested_file(tmp_path):
    p = check_output_path(tmp_path / "a" / "b" / "out.tsv")
    assert p == tmp_path / "a" / "b" / "out.tsv"
    assert not (tmp_path / "a").exists()  # creates nothing


def test_check_output_path_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputPathError, match=r"--out .*plain/out.tsv.* cannot be created: .*plain' is a file"):
        check_output_path(tmp_path / "plain" / "out.tsv")


def test_check_output_path_is_a_folder(tmp_path):
    with pytest.raises(OutputPathError, match=r"--out .* is a folder"):
        check_output_path(tmp_path)


def test_check_output_path_existing_without_overwrite(tmp_path):
    (tmp_path / "m.pt").write_text("x")
    with pytest.raises(OutputPathError, match=r"--model .*m.pt.* exists; refusing to overwrite"):
        check_output_path(tmp_path / "m.pt", name="--model", overwrite=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_check_output_path_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputPathError, match="is not writable"):
            check_output_path(ro / "out.tsv")
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------------------------- locks


def test_lock_refuses_a_second_holder_in_the_same_process(tmp_path):
    out = tmp_path / "log.tsv"
    with exclusive_lock(out) as lp:
        assert lp == lock_path(out)
        assert lp.read_text().strip() == str(os.getpid())
        with pytest.raises(LockedError, match=rf"in use by another process \(pid {os.getpid()}"):
            with exclusive_lock(out):
                pass
    with exclusive_lock(out):  # released at the end of the block
        pass


def test_lock_is_exclusive_across_processes_and_released_when_the_holder_dies(tmp_path):
    out = tmp_path / "log.tsv"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from renyi_cert._files import exclusive_lock
            with exclusive_lock({str(out)!r}):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=rf"pid {holder.pid}"):
            with exclusive_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive_lock(out):  # the kernel dropped the dead holder's lock
        pass


# ------------------------------------------------------------------------------------- Ctrl-C


def test_interruptible_prints_one_line_and_returns_130(capsys):
    @interruptible("demo-cmd", "rows so far are kept")
    def main(argv=None) -> int:
        raise KeyboardInterrupt

    assert main([]) == EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert err == "demo-cmd: interrupted; rows so far are kept\n"


def test_interruptible_passes_results_and_other_errors_through():
    @interruptible("x")
    def ok(argv=None) -> int:
        return 7

    @interruptible("x")
    def boom(argv=None) -> int:
        raise ValueError("not an interrupt")

    assert ok() == 7
    with pytest.raises(ValueError, match="not an interrupt"):
        boom()
