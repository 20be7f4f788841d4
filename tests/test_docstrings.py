"""Every number in a docstring example is produced by the code: run the examples."""

import doctest
import importlib

import pytest

MODULES = ["renyi_cert.bounds", "renyi_cert.means", "renyi_cert.divergence"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
