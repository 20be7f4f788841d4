"""``renyi-cert attack`` on several processes (issue 10, item 3): blocks of examples shared out over workers.

What is promised, and checked here with real launches (``--nproc``, torch's elastic launcher, and
ranks started by hand with the variables torchrun sets), gloo on the CPU:

* block ``b`` of ``--attack-batch`` examples draws its randomness from ``derive_seed(--seed, b)``
  only, and the blocks' counts are added up in block order: the TSV is that of per-block
  ``robust_accuracy`` calls combined by hand, and the same for 1 or 2 workers (every column but
  ``seconds``);
* more workers than blocks is an error on every worker; an error met on one worker (a missing
  dataset, other settings than rank 0's, a model that returns NaN) stops every worker with the same
  message; only rank 0 looks at ``--out``.

The checkpoint is a model trained for a few steps on clean digits (so that some examples are right
and the counts are not all zero).
"""

from __future__ import annotations

import csv

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")
dist = pytest.importorskip("torch.distributed")
if not (dist.is_available() and dist.is_gloo_available()):  # pragma: no cover
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from renyi_cert.seeds import derive_seed  # noqa: E402
from renyi_cert_torch import attacks  # noqa: E402
from renyi_cert_torch.attack_cli import TSV_COLUMNS, main as attack_main  # noqa: E402
from renyi_cert_torch.data import load_dataset  # noqa: E402
from renyi_cert_torch.models import build_model  # noqa: E402
from renyi_cert_torch.train import load_checkpoint, save_checkpoint  # noqa: E402

from _workers import run_by_hand, run_cli as launch  # noqa: E402

SIGMA = 0.25
# a cheap white-box attack: l2 PGD (continuous perturbation norms), 2 steps of 2 noise draws, 5 votes
FLAGS = ["--attack", "pgd", "--norm", "l2", "--eps", "0,1", "--steps", "2", "--eot", "2", "--votes", "5",
         "--device", "cpu", "--no-progress", "--no-plot"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    train = load_dataset("mnist5k", "train")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("mnist_cnn")
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        for i in range(0, 300, 50):
            loss = torch.nn.functional.cross_entropy(model(train.x[i:i + 50]), train.y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    path = tmp_path_factory.mktemp("attack_dist") / "m.pt"
    return save_checkpoint(path, model, {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k",
                                         "sigma": SIGMA})


@pytest.fixture
def one_thread():
    """In-process runs on one thread, like the launched workers (the same arithmetic)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def table(path):
    """The TSV's rows as dicts, without the ``seconds`` column."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert rows and list(rows[0]) == list(TSV_COLUMNS)
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def single(ckpt, out, *flags):
    assert attack_main(["--checkpoint", str(ckpt), "--out", str(out), *FLAGS, *flags]) == 0
    return table(out)


# ----------------------------------------------------------------------------------- block seeds


def test_blocks_are_seeded_by_their_index_and_added_up_in_order(ckpt, tmp_path, one_thread, capsys):
    flags = ["--max", "7", "--attack-batch", "3", "--seed", "3"]  # blocks 0..2, the last of one example
    got = single(ckpt, tmp_path / "a.tsv", *flags)
    assert single(ckpt, tmp_path / "b.tsv", *flags) == got  # repeatable
    capsys.readouterr()
    # the oracle: robust_accuracy on each block by hand, with the block's own generator
    model, _ = load_checkpoint(ckpt)
    data = load_dataset("mnist5k", "test")
    attack = attacks.PGD(norm="l2", steps=2, eot=2)
    per_block = [attacks.robust_accuracy(model, data.x[s:s + 3][:7 - s], data.y[s:s + 3][:7 - s], SIGMA,
                                         attack=attack, eps_list=(0.0, 1.0), votes=5, attack_batch=3,
                                         generator=torch.Generator().manual_seed(derive_seed(3, b)))
                 for b, s in enumerate(range(0, 7, 3))]
    assert [r[0].n for r in per_block] == [3, 3, 1]
    assert len(got) == 2
    for i, row in enumerate(got):
        res = [r[i] for r in per_block]
        n_robust = sum(r.n_robust for r in res)
        assert (int(row["n"]), int(row["n_robust"]), float(row["eps"])) == (7, n_robust, res[0].eps)
        assert float(row["robust_accuracy"]) == pytest.approx(n_robust / 7, rel=1e-5)
        clean = sum(round(r.clean_accuracy * r.n) for r in res)
        base = sum(round(r.base_clean_accuracy * r.n) for r in res)
        assert float(row["clean_accuracy"]) == pytest.approx(clean / 7, rel=1e-5)
        assert float(row["base_clean_accuracy"]) == pytest.approx(base / 7, rel=1e-5)
        norm = sum(r.mean_perturbation_norm * r.n for r in res) / 7
        assert float(row["mean_perturbation_norm"]) == pytest.approx(norm, rel=1e-5, abs=1e-12)
    assert float(got[1]["mean_perturbation_norm"]) > 0  # eps 1 moved the points (a non-trivial check)
    assert float(got[0]["clean_accuracy"]) > 0  # some examples are right, so the counts are not all zero


def test_leading_separator_nproc_one_and_nproc_under_torchrun(ckpt, tmp_path, one_thread, monkeypatch, capsys):
    flags = ["--max", "3", "--attack-batch", "2"]
    reference = single(ckpt, tmp_path / "a.tsv", *flags)
    assert attack_main(["--", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b.tsv"), *FLAGS, *flags,
                        "--nproc", "1"]) == 0  # `torchrun ... -m renyi_cert_torch.cli -- attack ...`; a plain run
    assert table(tmp_path / "b.tsv") == reference
    monkeypatch.setenv("WORLD_SIZE", "2")
    capsys.readouterr()
    assert attack_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "c.tsv"), "--nproc", "2"]) == 2
    assert "--nproc starts the workers itself; under torchrun drop it" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    assert attack_main(["--checkpoint", str(ckpt), "--nproc", "0"]) == 2
    assert "--nproc (0) must be an integer >= 1" in capsys.readouterr().err
    assert attack_main(["--checkpoint", str(ckpt), "--timeout", "0"]) == 2
    assert "--timeout ('0') must be finite and > 0" in capsys.readouterr().err


def test_a_block_whose_model_returns_nan_is_a_clean_error(tmp_path, capsys):
    with torch.random.fork_rng():
        model = build_model("mnist_cnn")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.pt", model, {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k",
                                                        "sigma": SIGMA})
    out = tmp_path / "n.tsv"
    assert attack_main(["--checkpoint", str(path), "--out", str(out), *FLAGS, "--max", "4", "--attack-batch", "3"]) == 2
    err = capsys.readouterr().err
    assert "error: block 0 of 2 (examples 0..2; the message counts them from 0): " in err and "non-finite" in err
    assert not out.exists()


# ------------------------------------------------------------------------------- many workers


def test_two_workers_write_the_table_of_one_process(ckpt, tmp_path, one_thread):
    flags = ["--max", "7", "--attack-batch", "2"]  # 4 blocks for 2 workers
    reference = single(ckpt, tmp_path / "one.tsv", *flags)
    out = tmp_path / "two.tsv"
    res = launch("attack", "--checkpoint", str(ckpt), "--out", str(out), *FLAGS, *flags, "--nproc", "2")
    assert res.returncode == 0, res.stderr
    assert table(out) == reference
    assert res.stdout.count(f"wrote {out}") == 1  # rank 0 alone writes and reports


def test_more_workers_than_blocks_is_an_error_on_every_worker(ckpt, tmp_path):
    out = tmp_path / "o.tsv"
    res = launch("attack", "--checkpoint", str(ckpt), "--out", str(out), *FLAGS, "--max", "3", "--attack-batch",
                 "3", "--nproc", "2")
    assert res.returncode == 2, res.stderr
    message = "2 workers for 1 block(s) of --attack-batch 3 examples (3 examples): start at most 1 workers"
    assert res.stderr.count(message) == 2, res.stderr  # every worker says it
    assert not out.exists()


def _pair(ckpt, flags0, flags1):
    """Rank 0 and rank 1 started by hand (the variables torchrun sets), with their own flags."""
    common = ["--", "attack", "--checkpoint", str(ckpt), *FLAGS, "--max", "4", "--attack-batch", "2", "--timeout",
              "60"]
    return run_by_hand([[*common, *flags0], [*common, *flags1]])


def test_only_rank_0_looks_at_out_and_an_error_on_one_rank_stops_all(ckpt, tmp_path):
    taken = tmp_path / "taken.tsv"
    taken.write_text("an earlier run's results\n")
    out = tmp_path / "o.tsv"
    (rc0, out0, err0), (rc1, out1, err1) = _pair(ckpt, ["--out", str(out)], ["--out", str(taken)])
    assert (rc0, rc1) == (0, 0), err0 + err1
    assert taken.read_text() == "an earlier run's results\n" and table(out)
    assert f"wrote {out}" in out0 and "wrote" not in out1
    # the dataset's files are missing on rank 1 only: both stop, with rank 1's message (exit status 1)
    out = tmp_path / "p.tsv"
    missing = ["--dataset", "mnist", "--data-root", str(tmp_path / "nowhere")]
    (rc0, _, err0), (rc1, _, err1) = _pair(ckpt, ["--out", str(out)], ["--out", str(out), *missing])
    assert (rc0, rc1) == (1, 1), err0 + err1
    assert "error: (on rank 1) " in err0 and "nowhere" in err0
    assert "error: " in err1 and "(on rank" not in err1 and "nowhere" in err1
    assert not out.exists()
    # workers started with other settings: both refuse, before anything is attacked
    (rc0, _, err0), (rc1, _, err1) = _pair(ckpt, ["--out", str(out)], ["--out", str(out), "--seed", "1"])
    assert (rc0, rc1) == (2, 2), err0 + err1
    for err in (err0, err1):
        assert "rank 1 was started with other settings than rank 0 (seed: 1 on rank 1, 0 on rank 0)" in err
    assert not out.exists()
