"""The judge of every attack: the smoothed classifier's majority vote.

At an input x the defended model is evaluated on x + N(0, sigma^2 I), or x plus another
:mod:`renyi_cert.noise` noise given in place of sigma (noise in [0, 1] pixel units and not clipped,
as in certification). **Robust accuracy is judged by the smoothed classifier**:
the majority vote over ``votes`` fresh noise draws (:func:`smoothed_predict`; ties go to the
lowest class index; there is no abstain, the vote always answers). With ``sigma = 0`` the vote is
the base model's argmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from renyi_cert._validate import check_positive_int

from ..devices import check_generator
from ..modes import eval_mode
from ..smoothing import check_finite_logits
from ._common import (DEFAULT_BATCH_SIZE, DEFAULT_VOTES, Noise, _check_noise, _draw_chunks, _forward, _randn,
                      _sample_noise)

__all__ = ["smoothed_predict"]


@torch.no_grad()
def smoothed_predict(model: nn.Module, x: torch.Tensor, sigma: float | Noise, *, votes: int = DEFAULT_VOTES,
                     generator: torch.Generator | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """The smoothed classifier's decision: majority vote of ``model(x + N(0, sigma^2 I))`` (or another noise).

    Parameters
    ----------
    model : torch.nn.Module
        Base classifier, pixels in [0, 1] -> logits; evaluated in eval mode (flags restored).
    x : torch.Tensor
        Inputs (B, ...) in [0, 1].
    sigma : float or renyi_cert.noise.Gaussian, Laplace or Uniform
        Gaussian noise level >= 0, or the noise itself; 0 gives the base model's argmax (``votes``
        is then unused).
    votes : int
        Number of fresh noise draws per input (>= 1).
    generator : torch.Generator, optional
        Source of the noise (advanced by every draw), on x's device type; a nondeterministically
        seeded one on x's device if None.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    torch.Tensor
        int64 (B,): the most frequent class per input, ties to the lowest index. This is a Monte
        Carlo estimate of the smoothed classifier (no abstain, no confidence level).

    Raises
    ------
    ValueError
        The model returned non-finite (NaN/inf) logits: no vote is drawn from them.
    """
    noise = _check_noise("sigma", sigma)
    votes = check_positive_int("votes", votes)
    batch_size = check_positive_int("batch_size", batch_size)
    with eval_mode(model):
        if noise is None:
            logits = _forward(model, x, batch_size)
            check_finite_logits(logits, lambda row: f"example {row} of {len(x)} (no noise)")
            return logits.argmax(dim=1)
        generator = check_generator(generator, x.device, create=True)
        # Split the examples so that at least one draw of a chunk fits in a pass.
        preds = [_vote_counts(model, x, s, noise, votes, generator, batch_size).argmax(dim=1)
                 for s in range(0, len(x), batch_size)]
        return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64, device=x.device)


def _vote_counts(model: nn.Module, x: torch.Tensor, start: int, noise: Noise, votes: int,
                 generator: torch.Generator, batch_size: int) -> torch.Tensor:
    """Per-class vote counts (b, num_classes) of the examples ``x[start:start + batch_size]``."""
    xb = x[start:start + batch_size]
    b = len(xb)
    counts = []
    for k in _draw_chunks(votes, b, batch_size):
        noisy = xb.unsqueeze(0) + _sample_noise(noise, (k,) + tuple(xb.shape), xb, generator, _randn)
        logits = model(noisy.reshape((-1,) + tuple(xb.shape[1:])))
        check_finite_logits(logits, lambda row: (
            f"a noisy copy of example {start + row % b} of {len(x)} (one of {votes} votes)"))
        labels = logits.argmax(dim=1).reshape(k, b)
        counts.append(F.one_hot(labels, logits.shape[1]).sum(dim=0))
    return torch.stack(counts).sum(dim=0)
