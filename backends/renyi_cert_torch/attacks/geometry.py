"""Norms and projections of perturbations: the eps-balls the attacks live in.

A perturbation of a batch is a tensor (B, ...); its norm is taken per example over all the other
dimensions. ``"linf"`` is the largest absolute entry, ``"l2"`` the Euclidean norm, ``"l1"`` the sum
of the absolute entries.
"""

from __future__ import annotations

import torch

from renyi_cert._validate import check_choice, check_real

from ._common import PGD_NORMS

__all__ = ["perturbation_norm", "project", "truncate_l2", "project_l1_ball"]


def _flat_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example norm (B,) of ``t`` (B, ...), unchecked."""
    flat = t.reshape(len(t), -1)
    if norm == "l2":
        return flat.norm(p=2, dim=1)
    if norm == "l1":
        return flat.abs().sum(dim=1)
    return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(len(t))


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example values (B,) reshaped to broadcast against (B, ...)."""
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def perturbation_norm(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example ``||x_adv - x||`` in ``norm`` ("linf", "l2" or "l1"), shape (B,)."""
    check_choice("norm", norm, PGD_NORMS)
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


def project_l1_ball(delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """The Euclidean projection of each example's perturbation onto the l1 ball of radius eps.

    The sort-based algorithm of Duchi, Shalev-Shwartz, Singer & Chandra ("Efficient projections
    onto the l1-ball for learning in high dimensions", ICML 2008, Figure 1), batched: a
    perturbation with ``||delta||_1 <= eps`` is returned unchanged; otherwise, with u the |delta_i|
    sorted in decreasing order, rho = max{j : u_j > (u_1 + ... + u_j - eps) / j} and
    theta = (u_1 + ... + u_rho - eps) / rho, the projection is the soft threshold
    ``sign(delta_i) * max(|delta_i| - theta, 0)``, whose l1 norm is eps. eps = 0 gives 0. The
    threshold is computed in float64 (and where its rounding leaves the l1 norm above eps, the
    shrunk vector is scaled back to norm eps); the result has delta's dtype, so its l1 norm exceeds
    eps by at most that dtype's rounding (relative 2^-24 in float32).

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
    flat = delta.reshape(len(delta), -1)
    if flat.shape[1] == 0 or len(flat) == 0:
        return delta.clone()
    a = flat.abs().double()
    radius = torch.as_tensor(eps, dtype=torch.float64, device=delta.device).expand(len(flat))
    u = a.sort(dim=1, descending=True).values
    css = u.cumsum(dim=1) - radius[:, None]
    j = torch.arange(1, u.shape[1] + 1, dtype=torch.float64, device=delta.device)
    rho = ((u * j > css) * j).amax(dim=1).clamp_min(1.0)  # the condition holds for j = 1..rho (Duchi et al.)
    theta = css.gather(1, rho.long()[:, None] - 1) / rho[:, None]
    kept = (a - theta).clamp_min(0.0)
    # theta's rounding (cancellation in the cumulative sums when eps is tiny beside |delta|) may leave
    # the sum a few ulps of |delta| above eps: scale those back onto the sphere.
    total = kept.sum(dim=1, keepdim=True)
    kept = kept * torch.where(total > radius[:, None], radius[:, None] / total.clamp_min(1e-300), 1.0)
    shrunk = (flat.sign() * kept.to(flat.dtype)).reshape(delta.shape)
    inside = a.sum(dim=1) <= radius
    return torch.where(_bcast(inside, delta), delta, shrunk)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Map ``x_adv`` into the eps-ball around ``x`` intersected with the box [0, 1]^d.

    l_inf: clamp to [x - eps, x + eps], then to [0, 1] -- the exact Euclidean projection onto
    the intersection (both sets are boxes). l2: scale delta = x_adv - x by
    ``min(1, eps / ||delta||_2)`` (projection onto the ball, :func:`truncate_l2`), then clamp to
    [0, 1]. l1: the exact Euclidean projection of delta onto the l1 ball
    (:func:`project_l1_ball`), then clamp to [0, 1]. For l2 and l1, because x lies in [0, 1], the
    clamp moves each coordinate of x + delta towards x_i (it only shrinks |delta_i|), so every
    norm of delta can only decrease and the result stays in the ball as well as in the box; this
    is the usual PGD projection for these norms (feasible, not the exact projection onto the
    intersection).

    Parameters
    ----------
    x_adv, x : torch.Tensor
        Same shape (B, ...); x in [0, 1].
    eps : float
        Radius, >= 0.
    norm : {"linf", "l2", "l1"}

    Returns
    -------
    torch.Tensor
        The projected points, same shape as ``x``.
    """
    eps = check_real("eps", eps, minimum=0.0)
    check_choice("norm", norm, PGD_NORMS)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv (shape {tuple(x_adv.shape)}) and x (shape {tuple(x.shape)}) must have the same shape")
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = truncate_l2(delta, eps) if norm == "l2" else project_l1_ball(delta, eps)
    return (x + delta).clamp(0.0, 1.0)
