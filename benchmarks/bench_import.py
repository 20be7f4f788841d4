"""How long ``import renyi_cert`` takes, and what the first calls then cost.

Every figure is the wall time of a fresh ``python -c ...`` process (interpreter start included),
the median over ``--repeats`` rounds. The commands run interleaved, one of each per round, so
that load on the machine hits them alike; the baselines measured in the same run are the
interpreter alone, ``import numpy`` (the floor: the core needs numpy) and ``import scipy.stats``
(what ``import renyi_cert`` used to pull in). numba and scipy are imported on first use, so the
first call of :func:`renyi_cert.radius` (numba, plus loading the cached kernels) and of
:func:`renyi_cert.certify_from_counts` / :func:`renyi_cert.predict_from_counts` (scipy.special,
scipy.stats) are timed as well: lazy imports move that cost, they do not remove it.

Finally ``python -X importtime -c "import renyi_cert"`` lists the slowest modules still imported.

Usage::

    .venv/bin/python benchmarks/bench_import.py                   # 15 rounds, ~1 min on 2 cores
    .venv/bin/python benchmarks/bench_import.py --compare /tmp/old  # also a copy of an older version

``--compare DIR`` adds the rows of the ``renyi_cert`` package found in ``DIR`` (e.g. ``git archive
HEAD~1 renyi_cert | tar -x -C /tmp/old``), measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3  # issue 8: `import renyi_cert` in at most 0.3 s

# The code run in each fresh process; each prints a JSON dict of in-process timings (seconds).
_IMPORT = "import time; t0 = time.perf_counter(); import renyi_cert; t1 = time.perf_counter()\n"
SNIPPETS = {
    "python (no import)": "pass",
    "import numpy": "import numpy",
    "import scipy.stats": "import scipy.stats",
    "import renyi_cert": "import renyi_cert",
    "import + first radius()": _IMPORT + (
        "renyi_cert.radius(0.9, 0.1, 1.0); t2 = time.perf_counter()\n"
        "import json; print(json.dumps({'import': t1 - t0, 'first call': t2 - t1}))"
    ),
    "import + first certify_from_counts()": _IMPORT + (
        "renyi_cert.certify_from_counts([0, 10], [3, 997], 0.5, bounds=('renyi', 'cohen', 'pixeldp'))\n"
        "t2 = time.perf_counter()\n"
        "import json; print(json.dumps({'import': t1 - t0, 'first call': t2 - t1}))"
    ),
    "import + first predict_from_counts()": _IMPORT + (
        "renyi_cert.predict_from_counts([3, 997]); t2 = time.perf_counter()\n"
        "import json; print(json.dumps({'import': t1 - t0, 'first call': t2 - t1}))"
    ),
}
RENYI_ROWS = [k for k in SNIPPETS if k.startswith("import renyi_cert") or k.startswith("import + ")]


def _run(code: str, pythonpath: Path, cwd: str) -> tuple[float, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{out.stderr}")
    inner = json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}
    return wall, inner


def _importtime(pythonpath: Path, cwd: str) -> list[tuple[int, str]]:
    """(self us, module) for every module ``python -X importtime -c "import renyi_cert"`` loads."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import renyi_cert"], env=env, cwd=cwd,
                         capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:"):].split("|")
        rows.append((int(self_us), name.strip()))
    return rows


def _by_package(rows: list[tuple[int, str]]) -> list[tuple[str, int, int]]:
    """(top-level package, modules, self us summed), costliest first; the standard library as one row."""
    stdlib = set(sys.stdlib_module_names) | {"site", "sitecustomize", "encodings"}
    totals: dict[str, list[int]] = {}
    for self_us, name in rows:
        root = name.split(".")[0]
        key = "(standard library)" if root in stdlib or root.startswith("_") else root
        totals.setdefault(key, [0, 0])
        totals[key][0] += 1
        totals[key][1] += self_us
    return sorted(((k, n, us) for k, (n, us) in totals.items()), key=lambda r: -r[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--compare", type=Path, default=None,
                        help="a folder holding another renyi_cert package to time in the same rounds")
    parser.add_argument("--top", type=int, default=10, help="slowest modules listed from -X importtime")
    args = parser.parse_args()

    jobs = [(name, code, ROOT) for name, code in SNIPPETS.items()]
    if args.compare is not None:
        jobs += [(f"{name} [{args.compare}]", SNIPPETS[name], args.compare.resolve()) for name in RENYI_ROWS]
    walls: dict[str, list[float]] = {name: [] for name, _, _ in jobs}
    inner: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in jobs}
    with tempfile.TemporaryDirectory() as cwd:  # not the repository: `python -c` puts the cwd first on sys.path
        for _, code, path in jobs:  # warm-up: byte-code and numba caches, file-system cache
            _run(code, path, cwd)
        for _ in range(args.repeats):
            for name, code, path in jobs:
                wall, times = _run(code, path, cwd)
                walls[name].append(wall)
                if times:
                    inner[name].append(times)
        imported = _importtime(ROOT, cwd)

    numpy_s = statistics.median(walls["import numpy"])
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.repeats} interleaved rounds, fresh processes.\n")
    print("| command | median wall s | min s | / import numpy | in-process: import s | first call s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _, _ in jobs:
        med = statistics.median(walls[name])
        cells = ["", ""]
        if inner[name]:
            cells = [f"{statistics.median(t['import'] for t in inner[name]):.3f}",
                     f"{statistics.median(t['first call'] for t in inner[name]):.3f}"]
        print(f"| `{name}` | {med:.3f} | {min(walls[name]):.3f} | {med / numpy_s:.2f} | {cells[0]} | {cells[1]} |")
    med = statistics.median(walls["import renyi_cert"])
    verdict = "met" if med <= TARGET_S else "NOT met"
    print(f"\n`import renyi_cert`: median {med:.3f} s, target <= {TARGET_S} s {verdict}; "
          f"{med - numpy_s:+.3f} s over `import numpy`.")
    print("\n`python -X importtime -c \"import renyi_cert\"`, one run: self time summed per top-level package\n")
    print("| package | modules | self ms |")
    print("|---|---:|---:|")
    for package, count, self_us in _by_package(imported):
        print(f"| `{package}` | {count} | {self_us / 1e3:.1f} |")
    print(f"\nand the {args.top} slowest modules (self time):\n")
    print("| module | self ms |")
    print("|---|---:|")
    for self_us, name in sorted(imported, key=lambda r: -r[0])[:args.top]:
        print(f"| `{name}` | {self_us / 1e3:.1f} |")


if __name__ == "__main__":
    main()
