"""Norms and projections of perturbations: the eps-balls the attacks live in.

A perturbation of a batch is a tensor (B, ...); its norm is taken per example over all the other
dimensions. ``"linf"`` is the largest absolute entry, ``"l2"`` the Euclidean norm.
"""

from __future__ import annotations

import torch

from renyi_cert._validate import check_choice, check_real

from ._common import NORMS

__all__ = ["perturbation_norm", "project", "truncate_l2"]


def _flat_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example norm (B,) of ``t`` (B, ...), unchecked."""
    flat = t.reshape(len(t), -1)
    if norm == "l2":
        return flat.norm(p=2, dim=1)
    return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(len(t))


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example values (B,) reshaped to broadcast against (B, ...)."""
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def perturbation_norm(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example ``||x_adv - x||`` in ``norm`` ("linf" or "l2"), shape (B,)."""
    check_choice("norm", norm, NORMS)
    return _flat_norm(x_adv - x, norm)


def _check_radius(eps: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A radius >= 0: a real number, or a tensor of shape () or (B,) of them (on ``like``'s device and dtype)."""
    if not isinstance(eps, torch.Tensor):
        return check_real("eps", eps, minimum=0.0)
    batch = len(like)
    if eps.ndim > 1 or (eps.ndim == 1 and len(eps) != batch):
        raise ValueError(f"eps must be a number or a tensor of shape () or ({batch},), got shape {tuple(eps.shape)}")
    if eps.dtype == torch.bool or eps.is_complex() or not bool((torch.isfinite(eps) & (eps >= 0)).all()):
        raise ValueError("eps must hold finite real numbers >= 0")
    return eps.to(device=like.device, dtype=like.dtype)


def truncate_l2(delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Radially shrink each example's perturbation to l2 norm at most eps.

    Returns ``delta * min(1, eps / ||delta||_2)`` per example: a perturbation shorter than eps is
    kept whole, a longer one keeps its direction and gets norm eps. ``x + truncate_l2(delta, eps)``
    is the Euclidean projection of ``x + delta`` onto the eps-ball around x; when x and
    x + delta lie in [0, 1] so does it (a convex combination of the two), so no clamp is applied.

    Parameters
    ----------
    delta : torch.Tensor
        Perturbations (B, ...).
    eps : float or torch.Tensor
        Radius >= 0, one for all examples or a tensor (B,) with one per example.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``delta``.

    Raises
    ------
    ValueError
        A negative or non-finite eps, or an eps tensor of another shape.
    """
    eps = _check_radius(eps, delta)
    n = _flat_norm(delta, "l2")
    factor = torch.where(n > eps, eps / n.clamp_min(1e-30), torch.ones_like(n))
    return delta * _bcast(factor, delta)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Map ``x_adv`` into the eps-ball around ``x`` intersected with the box [0, 1]^d.

    l_inf: clamp to [x - eps, x + eps], then to [0, 1] -- the exact Euclidean projection onto
    the intersection (both sets are boxes). l2: scale delta = x_adv - x by
    ``min(1, eps / ||delta||_2)`` (projection onto the ball, :func:`truncate_l2`), then clamp to
    [0, 1]. Because x lies in [0, 1], the clamp only shrinks |delta_i|, so the result stays in the
    ball; this is the usual PGD-l2 projection (feasible, not the exact projection onto the
    intersection).

    Parameters
    ----------
    x_adv, x : torch.Tensor
        Same shape (B, ...); x in [0, 1].
    eps : float
        Radius, >= 0.
    norm : {"linf", "l2"}

    Returns
    -------
    torch.Tensor
        The projected points, same shape as ``x``.
    """
    eps = check_real("eps", eps, minimum=0.0)
    check_choice("norm", norm, NORMS)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv (shape {tuple(x_adv.shape)}) and x (shape {tuple(x.shape)}) must have the same shape")
    delta = x_adv - x
    delta = delta.clamp(-eps, eps) if norm == "linf" else truncate_l2(delta, eps)
    return (x + delta).clamp(0.0, 1.0)
