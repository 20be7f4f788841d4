"""Every number in a docstring example is produced by the code: run the examples."""

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = ["renyi_cert.bounds", "renyi_cert.means", "renyi_cert.divergence", "renyi_cert._files",
           "renyi_cert.caps", "renyi_cert.seeds", "renyi_cert.sequential", "renyi_cert.noise"]
TORCH_MODULES = ["renyi_cert_torch.modes"]


@pytest.mark.parametrize("name", MODULES + TORCH_MODULES)
def test_docstring_examples(name):
    if name in TORCH_MODULES:
        pytest.importorskip("torch")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


DOCS = ["docs/numerics.md", "docs/sequential.md", "docs/noise.md", "README.md"]


@pytest.mark.parametrize("name", DOCS)
def test_docs_examples(name):
    # The examples in the README and docs/ are produced by the code: run them (a closing code fence ends an
    # example's expected output).
    path = Path(__file__).resolve().parents[1] / name
    text = path.read_text(encoding="utf-8").replace("\n```", "\n\n```")
    test = doctest.DocTestParser().get_doctest(text, {}, name, str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
