"""Seeds: every random stream of the project is derived here from a run seed and a label.

Two rules, one function each:

* :func:`derive_seed` -- the seed of one unit of work (an example, a stage of a report) from the
  run seed and the unit's integer labels. It depends on nothing else (not on the order in which
  units run, how many workers run them, or what ran before), so a resumed or re-ordered run draws
  exactly the same noise for every unit.
* :func:`spawn_seeds` -- several independent seeds from one seed (e.g. model initialisation,
  shuffling and noise of one training run).

Both use numpy's ``SeedSequence`` (a hash of all its entropy words into well-mixed output), and
return non-negative integers below 2**63 that every generator of numpy and torch accepts.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["derive_seed", "spawn_seeds"]


def _entropy(name: str, values: Iterable[object]) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} ({v!r}) must be non-negative integers")
        out.append(int(v))
    return out


def derive_seed(seed: int, *labels: int) -> int:
    """A 63-bit seed for the unit of work ``labels`` under run seed ``seed``.

    Parameters
    ----------
    seed : int
        The run seed (>= 0).
    *labels : int
        Non-negative integers naming the unit (an example index; hashed stage names).

    Returns
    -------
    int
        In ``[0, 2**63)``.

    Examples
    --------
    >>> derive_seed(0, 7) == derive_seed(0, 7) != derive_seed(0, 8)
    True
    """
    a, b = np.random.SeedSequence(_entropy("seed and labels", (seed, *labels))).generate_state(2, dtype=np.uint32)
    return ((int(a) << 32) | int(b)) >> 1


def spawn_seeds(seed: int, count: int) -> tuple[int, ...]:
    """``count`` independent 63-bit seeds from one seed (>= 0).

    Examples
    --------
    >>> len(set(spawn_seeds(0, 3)))
    3
    """
    (seed,) = _entropy("seed", (seed,))
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count ({count!r}) must be an integer >= 1")
    return tuple(int(s) >> 1 for s in np.random.SeedSequence(seed).generate_state(int(count), dtype=np.uint64))
