"""Package-level promises: the core never imports torch; the public names exist."""

import subprocess
import sys
from pathlib import Path

import pytest

import renyi_cert as rc


def test_core_imports_without_torch():
    # Importing and using every core module must not load torch (installed in the dev env).
    code = (
        "import sys\n"
        "import renyi_cert as rc, renyi_cert.analyze, renyi_cert.compare_pixeldp, renyi_cert.reference\n"
        "assert abs(rc.radius(0.9, 0.1, 1.0) - 1.0319295637) < 1e-9\n"
        "assert 'torch' not in sys.modules, 'the core imported torch'\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_import_is_light():
    # `import renyi_cert` loads numpy and the package, nothing heavier: scipy.stats alone takes
    # about half a second to import, scipy.special and numba a quarter each
    # (benchmarks/bench_import.py). They are imported by the functions that need them.
    code = (
        "import sys\n"
        "import renyi_cert\n"
        "heavy = sorted(m for m in ('scipy', 'scipy.special', 'scipy.stats', 'numba', 'matplotlib', 'torch')"
        " if m in sys.modules)\n"
        "print(','.join(heavy) or 'none')\n"
        "renyi_cert.predict_from_counts([3, 9])\n"
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["none", "True"]  # ... and the first use does import what it needs


def test_every_module_declares_its_public_names():
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(rc.__path__):
        module = importlib.import_module(f"renyi_cert.{info.name}")
        assert isinstance(getattr(module, "__all__", None), list), info.name
        for name in module.__all__:
            assert hasattr(module, name), (info.name, name)


def test_ships_type_information():
    # PEP 561: the package carries a py.typed marker, and pyproject installs it as package data.
    tomllib = pytest.importorskip("tomllib")
    assert (Path(rc.__file__).parent / "py.typed").is_file()
    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    data = meta["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["renyi_cert"] and "py.typed" in data["renyi_cert_torch"]


def test_public_names():
    for name in rc.__all__:
        assert hasattr(rc, name), name
    assert set(rc.BOUNDS) == {"renyi", "cohen", "pixeldp"}
    assert rc.METHODS == ("clopper-pearson", "sison-glaz", "goodman")


def test_pyproject_license_is_an_spdx_string():
    # setuptools >= 77 deprecates the table form `license = { text = ... }` (a warning on every
    # install, an error from 2027); PEP 639 wants an SPDX expression string.
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    requires = meta["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=") and
               tuple(int(x) for x in r.split(">=")[1].split(".")[:1]) >= (77,) for r in requires), requires


def test_one_meaning_per_name():
    # alpha is only the significance level (keyword-only wherever it configures a call); the
    # Renyi order (the paper's alpha) is `order`; "bounds" are only the radius bounds.
    import dataclasses
    import inspect

    from renyi_cert import caps, reference

    assert [f.name for f in dataclasses.fields(rc.RadiusResult)] == ["radius", "order"]
    for f in (rc.renyi_objective, rc.lemma1_bound, rc.renyi_divergence):
        assert "order" in inspect.signature(f).parameters and "alpha" not in inspect.signature(f).parameters
    assert "order" in inspect.signature(rc.gaussian_renyi_divergence).parameters
    assert "order" in inspect.signature(reference.g_mp).parameters
    keyword_only = {
        rc.clopper_pearson_interval: ["alpha"], rc.top2_confidence: ["alpha", "method", "top"],
        rc.sison_glaz: ["alpha"], rc.goodman: ["alpha"], rc.predict_from_counts: ["alpha"],
        caps.radius_cap: ["alpha", "sigma"], caps.min_samples: ["sigma", "alpha", "bound"],
    }
    for f, names in keyword_only.items():
        params = inspect.signature(f).parameters
        for name in names:
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (f.__name__, name)
    with pytest.raises(TypeError):
        rc.clopper_pearson_interval(3, 10, 0.05)
    assert not [n for n in rc.__all__ if "ounds" in n and n != "BOUNDS"]
