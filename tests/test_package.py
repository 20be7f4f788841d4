"""Package-level promises: the core never imports torch; the public names exist."""

import subprocess
import sys

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


def test_public_names():
    for name in rc.__all__:
        assert hasattr(rc, name), name
    assert set(rc.BOUNDS) == {"renyi", "cohen", "pixeldp"}
    assert rc.METHODS == ("clopper-pearson", "sison-glaz", "goodman")
