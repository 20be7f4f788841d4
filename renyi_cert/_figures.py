"""Figures: drawn without pyplot, written atomically.

Every figure of the project is drawn with matplotlib's object-oriented API on an Agg canvas
(:func:`new_figure`: no pyplot, no global backend change, no display needed) and written with
:func:`save_figure` or :func:`save_png_pdf`, each file atomically (an existing file is replaced only
by a complete one, see :mod:`renyi_cert._files`; missing parent folders are created).
"""

from __future__ import annotations

import os

from ._files import atomic_output

__all__ = ["new_figure", "finish_accuracy_axes", "save_figure", "save_png_pdf"]


def new_figure(figsize: tuple[float, float] = (6.0, 4.2), **kwargs):
    """A matplotlib ``Figure`` with an Agg canvas (``kwargs`` go to ``Figure``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def finish_accuracy_axes(fig, ax, *, title: str | None = None) -> None:
    """The common finish of an accuracy-against-size plot: y in [0, 1], light grid, legend, title."""
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()


def save_figure(fig, path: str | os.PathLike, *, dpi: float | None = None) -> str:
    """Write ``fig`` to ``path`` atomically, in the format its suffix names (``.png``, ``.pdf``, ...).

    ``dpi`` (default: the figure's) sets the resolution of a PNG and of the rasterised parts of a
    PDF. Returns the path as a string.
    """
    path = os.fspath(path)
    kwargs = {} if dpi is None else {"dpi": dpi}
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:].lower() or "png", **kwargs)
    return path


def save_png_pdf(fig, out_stem: str | os.PathLike, *, dpi: float = 150) -> tuple[str, str]:
    """Write ``fig`` to ``<out_stem>.png`` (at ``dpi``) and ``<out_stem>.pdf``, each atomically."""
    stem = os.fspath(out_stem)
    return save_figure(fig, stem + ".png", dpi=dpi), save_figure(fig, stem + ".pdf")
