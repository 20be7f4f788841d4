"""What the multi-process tests share: launching ``python -m renyi_cert_torch.cli`` in fresh
processes (one CPU thread each, as the launchers give their workers) and the variables a
hand-started worker needs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

#: Seconds any launched run may take before the test fails (a hang is a failure).
LIMIT = 240


def env(**extra) -> dict:
    """This process's environment with one CPU thread and ``extra`` (as strings)."""
    out = dict(os.environ, OMP_NUM_THREADS="1")
    out.update({k: str(v) for k, v in extra.items()})
    return out


def worker_env(rank: int, world_size: int, port: int, **extra) -> dict:
    """The variables torchrun gives worker ``rank`` of ``world_size`` on this machine."""
    return env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=rank, WORLD_SIZE=world_size, LOCAL_RANK=rank,
               LOCAL_WORLD_SIZE=world_size, **extra)


def run_cli(*args, environment=None) -> subprocess.CompletedProcess:
    """``python -m renyi_cert_torch.cli ARGS`` in a fresh process; its CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "renyi_cert_torch.cli", *args], capture_output=True, text=True,
                          timeout=LIMIT, env=environment or env())


def free_port() -> int:
    """A TCP port nobody listens on now (for a rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def untrained_checkpoint(path, sigma: float = 0.5):
    """An untrained mnist_cnn checkpoint (seed 0) for mnist5k at ``sigma``; its path."""
    import torch

    from renyi_cert_torch.models import build_model
    from renyi_cert_torch.train import save_checkpoint

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("mnist_cnn")
    return save_checkpoint(path, model, {"arch": "mnist_cnn", "num_classes": 10, "dataset": "mnist5k", "sigma": sigma})


def run_by_hand(argvs) -> list[tuple[int, str, str]]:
    """Start one worker per argument list (``python -m renyi_cert_torch.cli ARGV`` with the variables
    torchrun sets, rank = position), wait for all; their (exit status, stdout, stderr)."""
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "renyi_cert_torch.cli", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=worker_env(rank, len(argvs), port))
             for rank, argv in enumerate(argvs)]
    try:
        outputs = [p.communicate(timeout=LIMIT) for p in procs]
        return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    finally:
        for p in procs:
            p.kill()
