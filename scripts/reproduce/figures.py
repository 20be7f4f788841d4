"""The report's figures: Figures 1-4 of the paper and the cross-check, as small PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from renyi_cert._files import atomic_output

from .attacks import AttackData
from .certification import Figure1Data
from .crosscheck import CrossCheckData
from .plan import Plan

DPI = 100
PNG_COLORS = 128  # palette size of the saved PNGs (line plots need few colours; keeps each file small)


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_png(image, path: Path) -> Path:
    """Write a PIL image as a palette PNG (``PNG_COLORS`` colours), atomically."""
    small = image.convert("RGB").quantize(colors=PNG_COLORS)
    with atomic_output(path) as tmp:  # a killed run never leaves a truncated figure
        small.save(tmp, format="PNG", optimize=True)
    return path


def _save(fig, path: Path) -> Path:
    from PIL import Image

    fig.tight_layout()
    fig.canvas.draw()
    return save_png(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())), path)


def figure1(plan: Plan, data: Figure1Data, path: Path) -> Path:
    """Certified accuracy vs radius per sigma: STN and Gaussian (Renyi), STN PixelDP and Cohen; TRADES's
    empirical accuracy under PGD-l2 (the same line in every panel)."""
    k = len(plan.sigmas)
    cols = 2 if k > 1 else 1
    rows = math.ceil(k / cols)
    fig = _figure((5.0 * cols, 3.4 * rows))
    for j, sigma in enumerate(plan.sigmas):
        ax = fig.add_subplot(rows, cols, j + 1)
        grid, curves, cap = data.grids[sigma], data.curves, data.caps[sigma]["renyi"]
        ax.plot(grid, curves[(sigma, "stn", "renyi")], "C0-", label="STN, Rényi bound")
        ax.plot(grid, curves[(sigma, "gaussian", "renyi")], "C1--", label="Gaussian aug., Rényi bound")
        ax.plot(grid, curves[(sigma, "stn", "pixeldp")], "C3:", label="STN, PixelDP bound")
        ax.plot(grid, curves[(sigma, "stn", "cohen")], color="0.55", lw=0.8, label="STN, Cohen et al. (tight)")
        if data.trades is not None:
            t = data.trades
            ax.plot([0.0] + list(t["eps"]), [t["clean"]] + list(t["robust"]), "kd--", ms=3, lw=0.9,
                    label="TRADES: empirical, PGD-ℓ2 (no certificate)")
        ax.axvline(cap, color="C0", lw=0.6, alpha=0.6)
        ax.set_title(f"σ = {sigma:.3g}  (Rényi cap {cap:.2f} at n = {plan.n_fig1})", fontsize=9)
        ax.set_xlabel("ℓ2 radius")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, grid[-1])
        ax.grid(alpha=0.3)
        if j == 0:
            ax.legend(fontsize=7)
    return _save(fig, path)


def _linf_label(plan: Plan) -> str:
    return "attack size, ℓ∞" if plan.linf_unit == 1.0 else "attack size, ℓ∞ (× 1/255)"


def figure2(plan: Plan, attacks: dict, path: Path) -> Path:
    """Robust accuracy of the main STN model and of TRADES vs attack size: l2 (left) and l_inf (right) panels."""
    fig = _figure((10.0, 4.2))
    s = f"STN σ={plan.main_sigma:.3g}"
    for p, norm in enumerate(("l2", "linf")):
        ax = fig.add_subplot(1, 2, p + 1)
        scale = 1.0 if norm == "l2" else 1.0 / plan.linf_unit
        for key, style, label in [
            (f"white_{norm}", "C0o-", f"{s}: white-box PGD + EOT"),
            (f"cw_{norm}", "C2s-", f"{s}: white-box C&W (κ = {plan.cw_kappa:g}) + EOT"),
            (f"transfer_{norm}", "C1^--", f"{s}: transfer PGD (from undefended)"),
            (f"transfer_pgdat_{norm}", "C1v-.", f"{s}: transfer PGD (from PGD-AT)"),
            (f"trades_white_{norm}", "C4d-", "TRADES: white-box PGD"),
            (f"trades_transfer_pgdat_{norm}", "C4d-.", "TRADES: transfer PGD (from PGD-AT)"),
            (f"undefended_{norm}", "C3x:", "undefended model: white-box PGD"),
        ]:
            if key in attacks:
                r = attacks[key]
                ax.plot([0.0] + [e * scale for e in r["eps"]], [r["clean"]] + list(r["robust"]), style, label=label,
                        ms=4)
        ax.set_xlabel("attack size, ℓ2" if norm == "l2" else _linf_label(plan))
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{'ℓ2' if norm == 'l2' else 'ℓ∞'} attacks, {plan.attack_examples} test examples", fontsize=9)
    return _save(fig, path)


def figure3(plan: Plan, data: AttackData, path: Path) -> Path:
    """Robust accuracy against white-box PGD-l_inf + EOT, one line per sigma (0: undefended)."""
    fig = _figure((5.2, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    scale = 1.0 / plan.linf_unit
    for j, (sigma, r) in enumerate(sorted(data.by_sigma.items())):
        label = "σ = 0 (undefended)" if sigma == 0 else f"σ = {sigma:.3g} (STN)"
        ax.plot([0.0] + [e * scale for e in r["eps"]], [r["clean"]] + list(r["robust"]), "o-", color=f"C{j}",
                label=label, ms=4)
    ax.set_xlabel(_linf_label(plan))
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("white-box PGD-ℓ∞ + EOT against the smoothed classifier", fontsize=9)
    return _save(fig, path)


def figure_crosscheck(plan: Plan, data: CrossCheckData, path: Path) -> Path:
    """Certified curves against the empirical l2 robust accuracies, with the sampling-error margin."""
    fig = _figure((5.6, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(data.grid, data.curves["renyi"], "C0-", label="certified, Rényi bound")
    ax.plot(data.grid, data.curves["cohen"], color="0.5", lw=0.9, ls="--", label="certified, Cohen et al.")
    eps = np.asarray(plan.l2_eps)
    clean = data.raw["clean_accuracy"]
    pgd_r, cw_r = np.asarray(data.raw["pgd_l2"]["robust"]), np.asarray(data.raw["cw_l2"]["robust"])
    ax.plot(np.r_[0.0, eps], np.r_[clean, pgd_r], "C3o-", ms=4, label="empirical, PGD-ℓ2 + EOT")
    ax.plot(np.r_[0.0, eps], np.r_[clean, cw_r], "C2s-", ms=4, label="empirical, C&W-ℓ2 + EOT")
    emp = np.minimum(pgd_r, cw_r)
    ax.fill_between(eps, emp, emp + np.asarray(data.margins), color="C3", alpha=0.15, lw=0,
                    label="sampling-error margin")
    ax.set_xlabel("ℓ2 radius / attack size ε")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(eps.max(), data.grid[-1]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"certified ≤ empirical: STN σ = {plan.main_sigma:.3g}, same {plan.attack_examples} examples",
                 fontsize=9)
    return _save(fig, path)


def figure4(plan: Plan, work: Path, path: Path) -> tuple[Path, str]:
    """Figure 4 through renyi_cert.compare_pixeldp: ``(path, summary)``; the full-size PNG/PDF stay
    in ``work``, ``path`` gets a copy 900 pixels wide."""
    from PIL import Image

    from renyi_cert import compare_pixeldp

    grid = compare_pixeldp.compute_grid(sigma=1.0, resolution=plan.fig4_resolution, min_total=0.2)
    summary = compare_pixeldp.format_summary(compare_pixeldp.summarize(grid), grid)
    full = compare_pixeldp.plot(grid, work / "fig4_bounds")
    with Image.open(full[0]) as im:
        w, h = im.size
        save_png(im.convert("RGB").resize((900, round(900 * h / w)), Image.LANCZOS), path)
    return path, summary
