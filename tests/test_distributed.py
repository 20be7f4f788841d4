"""``certify`` on several processes (issue 10): torch.distributed with gloo, 2 workers on the CPU.

What is promised, and checked here with real launches (torch's elastic launcher behind
``--nproc``, and ``python -m torch.distributed.run``, which is ``torchrun``):

* the log of N workers holds the same rows as the log of one process, every column but ``time``
  (each example's noise depends on the run seed and its index only), also with
  ``--split-example``, where every worker draws a share of each example's samples;
* a worker killed mid-run stops the run with a message saying which worker and that the rows are
  kept; ``--resume`` with another number of workers completes the log, no row lost or doubled;
* misconfigurations (more workers than examples, workers started with other settings, a resumed
  log made with other settings, a worker that never comes) give the same error on every worker,
  and no worker waits longer than ``--timeout``.

The checkpoint is an untrained model: its accuracy does not matter, only that the rows agree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")
dist = pytest.importorskip("torch.distributed")
if not (dist.is_available() and dist.is_gloo_available()):  # pragma: no cover
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from renyi_cert_torch.certify_log import sort_log  # noqa: E402
from renyi_cert_torch.cli import certify_main  # noqa: E402
from renyi_cert_torch.distributed import SINGLE, SplitSampler, WorkQueue, _chunks  # noqa: E402
from renyi_cert_torch.launch import strip_separator  # noqa: E402
from renyi_cert_torch.models import build_model  # noqa: E402
from renyi_cert_torch.smoothing import SmoothedClassifier  # noqa: E402

from _workers import LIMIT, env, free_port, run_by_hand, run_cli as launch, untrained_checkpoint, worker_env  # noqa: E402

SMALL = ["--n0", "20", "--n", "300", "--batch", "64", "--no-progress", "--device", "cpu"]  # gloo on the CPU


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return untrained_checkpoint(tmp_path_factory.mktemp("dist") / "m.pt")


def rows(path):
    """The rows of a log without their ``time`` column, as lists of cells."""
    lines = path.read_text().splitlines()
    return [cells[:5] + cells[6:] for cells in (line.split("\t") for line in lines)]


def single(ckpt, out, *flags):
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(out), *SMALL, *flags]) == 0
    return rows(out)


# ------------------------------------------------------------------------------- same rows


def test_two_workers_write_the_rows_of_one_process(ckpt, tmp_path):
    reference = single(ckpt, tmp_path / "one.tsv", "--max", "9")
    out = tmp_path / "two.tsv"
    res = launch("certify", "--checkpoint", str(ckpt), "--out", str(out), *SMALL, "--max", "9", "--nproc", "2")
    assert res.returncode == 0, res.stderr
    assert "2 workers" in res.stderr
    assert rows(out) == reference  # same rows, in idx order, every column but time
    import json

    settings = json.loads((tmp_path / "two.tsv.json").read_text())
    assert settings["workers"] == 2 and settings["runs"][-1]["workers"] == 2


def test_torchrun_needs_the_separator_and_then_agrees(ckpt, tmp_path):
    reference = single(ckpt, tmp_path / "one.tsv", "--max", "5")
    out = tmp_path / "run.tsv"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "renyi_cert_torch.cli"]
    command = ["certify", "--checkpoint", str(ckpt), "--out", str(out), *SMALL, "--max", "5"]
    bare = subprocess.run([*torchrun, *command], capture_output=True, text=True, timeout=LIMIT, env=env())
    assert bare.returncode != 0 and "ambiguous option" in bare.stderr  # why the README prints `--`
    res = subprocess.run([*torchrun, "--", *command], capture_output=True, text=True, timeout=LIMIT, env=env())
    assert res.returncode == 0, res.stderr
    assert rows(out) == reference


def test_two_machines_through_the_c10d_rendezvous(ckpt, tmp_path):
    # the README's multi-node command, both "machines" on this one: torchrun --nnodes 2 with one
    # worker each, meeting at a c10d rendezvous endpoint
    reference = single(ckpt, tmp_path / "one.tsv", "--max", "5")
    out, port = tmp_path / "nodes.tsv", free_port()
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test-nodes",
               "-m", "renyi_cert_torch.cli", "--", "certify", "--checkpoint", str(ckpt), "--out", str(out), *SMALL,
               "--max", "5"]
    nodes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
             for _ in range(2)]
    try:
        results = [(p.wait(timeout=LIMIT), p.stderr.read()) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert all(rc == 0 for rc, _ in results), results
    assert rows(out) == reference


def test_split_example_rows_do_not_depend_on_the_number_of_workers(ckpt, tmp_path):
    flags = ["--max", "3", "--split-example", "--n", "500", "--batch", "60"]
    reference = single(ckpt, tmp_path / "one.tsv", *flags)
    out = tmp_path / "two.tsv"
    res = launch("certify", "--checkpoint", str(ckpt), "--out", str(out), *SMALL, *flags, "--nproc", "2")
    assert res.returncode == 0, res.stderr
    assert "each example split over all" in res.stderr
    assert rows(out) == reference
    assert [r[-2] for r in reference[1:]] == ["520"] * 3  # n0 + n forward passes per row, all counted


# ------------------------------------------------------------------------- a worker dies


def _rank_one(launcher_pid):
    """The pid of the worker with RANK=1 among the launcher's children (Linux /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if ppid == launcher_pid and b"RANK=1" in env:
            return int(entry)
    return None


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker through /proc")
def test_a_killed_worker_stops_the_run_and_resume_with_another_count_completes_it(ckpt, tmp_path):
    out = tmp_path / "k.tsv"
    flags = [*SMALL, "--max", "10", "--n", "2000"]
    proc = subprocess.Popen([sys.executable, "-m", "renyi_cert_torch.cli", "certify", "--checkpoint", str(ckpt),
                             "--out", str(out), *flags, "--nproc", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    try:
        deadline = time.monotonic() + LIMIT
        while not (out.exists() and len(out.read_text().splitlines()) >= 3):  # header + 2 rows
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.05)
        victim = _rank_one(proc.pid)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "worker rank 1 of 2" in err and "killed by signal SIGKILL (the first to fail)" in err
    assert "rows written so far are kept" in err and "--resume" in err
    kept = rows(out)
    assert 3 <= len(kept) < 11
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(out), *flags, "--resume"]) == 0  # now 1 worker
    resumed = rows(out)
    assert [r[0] for r in resumed[1:]] == [str(i) for i in range(10)]  # none lost, none twice, in order
    assert all(r in resumed for r in kept)
    assert resumed == single(ckpt, tmp_path / "one.tsv", *flags[len(SMALL):])


# -------------------------------------------------------------------------- misconfiguration


def test_more_workers_than_examples_is_an_error_on_every_worker(ckpt, tmp_path):
    res = launch("certify", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o.tsv"), *SMALL, "--max", "1",
                 "--nproc", "2")
    assert res.returncode == 2
    assert res.stderr.count("2 workers for 1 example(s): start at most 1 workers") == 2  # both ranks say it


def _pair(ckpt, tmp_path, flags0, flags1):
    """Rank 0 and rank 1 started by hand (the variables torchrun sets), with their own flags."""
    common = ["certify", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o.tsv"), *SMALL, "--max", "4",
              "--timeout", "60"]
    return run_by_hand([[*common, *flags0], [*common, *flags1]])


def test_workers_started_with_other_settings_all_refuse(ckpt, tmp_path):
    results = _pair(ckpt, tmp_path, [], ["--seed", "1"])
    for rc, _, err in results:
        assert rc == 2
        assert "rank 1 was started with other settings than rank 0 (seed: 1 on rank 1, 0 on rank 0)" in err
    assert not (tmp_path / "o.tsv").exists()  # refused before the log was started


def test_resume_of_a_log_with_other_settings_is_refused_on_every_worker(ckpt, tmp_path):
    single(ckpt, tmp_path / "o.tsv", "--max", "2")
    before = (tmp_path / "o.tsv").read_text()
    res = launch("certify", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o.tsv"), *SMALL, "--max", "4",
                 "--resume", "--alpha", "0.01", "--nproc", "2")
    assert res.returncode == 2
    assert res.stderr.count("the existing log was made with other settings (alpha: 0.001 in the log, 0.01 now") == 2
    assert "(on rank 0) --resume" in res.stderr
    assert (tmp_path / "o.tsv").read_text() == before


def test_a_worker_that_never_comes_is_a_bounded_wait(ckpt, tmp_path):
    alone = worker_env(0, 2, free_port())  # rank 1 is never started
    t0 = time.monotonic()
    res = launch("certify", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o.tsv"), *SMALL, "--timeout", "3",
                 environment=alone)
    assert res.returncode == 2
    assert "rank 0 could not join the other 1 worker(s) within 3 s" in res.stderr
    assert time.monotonic() - t0 < 60


def test_nproc_under_torchrun_is_refused(ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert certify_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "o.tsv"), "--nproc", "2"]) == 2
    assert "--nproc starts the workers itself; under torchrun drop it" in capsys.readouterr().err


def test_nproc_one_is_a_plain_run(ckpt, tmp_path):
    assert single(ckpt, tmp_path / "a.tsv", "--max", "2", "--nproc", "1") == single(ckpt, tmp_path / "b.tsv",
                                                                                    "--max", "2")


# ---------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize("n,batch,world", [(1, 5, 2), (10, 3, 2), (1000, 64, 3), (64, 64, 4), (7, 100, 2)])
def test_chunks_of_all_workers_cover_every_copy_once(n, batch, world):
    pieces = sorted(c for rank in range(world) for c in _chunks(n, batch, rank, world))
    assert [start for start, _ in pieces] == list(range(0, n, batch))
    assert sum(size for _, size in pieces) == n and all(0 < size <= batch for _, size in pieces)


def test_split_sampler_alone_counts_every_chunk_from_its_own_seed():
    clf = SmoothedClassifier(build_model("mnist_cnn"), 0.5, 10, device="cpu", batch_size=40)
    x = torch.rand(1, 28, 28)
    sampler = SplitSampler(clf, SINGLE)
    a = sampler.sample_counts(x, 0.5, 130, generator=clf.make_generator(3))
    b = sampler.sample_counts(x, 0.5, 130, generator=clf.make_generator(3))
    assert a.sum() == 130 and np.array_equal(a, b)
    with pytest.raises(ValueError, match="generator must be given"):
        sampler.sample_counts(x, 0.5, 10)


def test_work_queue_alone_hands_out_each_position_once():
    assert list(WorkQueue(SINGLE, 4)) == [0, 1, 2, 3]
    assert list(WorkQueue(SINGLE, 0)) == []


def test_strip_separator():
    assert strip_separator(["--", "certify", "--n", "4"]) == ["certify", "--n", "4"]
    assert strip_separator(["certify", "--", "x"]) == ["certify", "--", "x"]
    assert strip_separator([]) == []


def test_sort_log_puts_rows_in_idx_order(tmp_path):
    log = tmp_path / "l.tsv"
    log.write_text("idx\tx\n10\ta\n2\tb\n3\tc\n")
    assert sort_log(log) is True
    assert log.read_text() == "idx\tx\n2\tb\n3\tc\n10\ta\n"
    assert sort_log(log) is False


# ------------------------------------------------------------- the reproduction's counts


def test_reproduction_counts_on_two_workers_equal_one_process(ckpt):
    from renyi_cert_torch.counts import count_examples, sharded_counts
    from renyi_cert_torch.train import load_checkpoint

    model, _ = load_checkpoint(ckpt, map_location="cpu")
    x = torch.rand(5, 1, 28, 28)
    clf = SmoothedClassifier(model, 0.5, 10, device="cpu", batch_size=64)
    alone = count_examples(clf, x, n0=20, n=150, seed=11)
    assert [sum(c) for c in alone["selection"]] == [20] * 5 and [sum(c) for c in alone["estimation"]] == [150] * 5
    first = count_examples(clf, x[:2], n0=20, n=150, seed=11)  # an example's draws do not depend on the others
    assert first["estimation"] == alone["estimation"][:2] and first["selection"] == alone["selection"][:2]
    shared = sharded_counts(ckpt, x, sigma=0.5, num_classes=10, n0=20, n=150, seed=11, batch=64, device="cpu",
                            nproc=2)
    assert shared == alone
