"""The result cache of a reproduction run (one JSON file per stage) and the record of stage times."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from renyi_cert._files import atomic_write_text


@dataclass(frozen=True)
class StageTime:
    """How long one stage took.

    Attributes
    ----------
    name : str
        The stage.
    seconds : float
        Its run time when it was computed.
    cached : bool
        True when this run reused the result (or checkpoint) instead of computing it.
    """

    name: str
    seconds: float
    cached: bool


class Stages:
    """Result cache (JSON per stage, keyed by its parameters) and a record of stage times.

    Parameters
    ----------
    work : Path
        The work folder; results go to ``work/cache``.
    fresh : bool
        Recompute every stage (overwriting its cached result).
    """

    def __init__(self, work: Path, fresh: bool):
        self.dir = work / "cache"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fresh = fresh
        self.times: list[StageTime] = []

    def record(self, name: str, seconds: float, cached: bool) -> None:
        """Add a stage time computed elsewhere (model training)."""
        self.times.append(StageTime(name, float(seconds), cached))

    def run(self, name: str, params: dict, compute: Callable[[], dict], force: bool = False) -> dict:
        """The result of stage ``name`` with ``params``: cached, or ``compute()`` (then cached).

        The result gets ``_seconds`` (compute time) and ``_params``; ``force`` recomputes.
        """
        key = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = self.dir / f"{name}-{key}.json"
        if path.is_file() and not (self.fresh or force):
            result = json.loads(path.read_text())
            self.record(name, result["_seconds"], True)
            print(f"[{name}] cached ({result['_seconds']:.0f} s when computed)", flush=True)
            return result
        print(f"[{name}] computing ...", flush=True)
        t0 = time.perf_counter()
        result = compute()
        result["_seconds"] = time.perf_counter() - t0
        result["_params"] = params
        atomic_write_text(path, json.dumps(result))
        self.record(name, result["_seconds"], False)
        print(f"[{name}] done in {result['_seconds']:.0f} s", flush=True)
        return result
