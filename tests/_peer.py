"""Cohen et al.'s published certification logs (``../shared/peer-data``, beside the repository):
their paths, and the marker that skips a test when they are absent (e.g. a clone elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

PEER = Path(__file__).resolve().parents[1] / ".." / "shared" / "peer-data"
COHEN_025 = PEER / "cohen2019-cifar10-resnet110-noise0.25-sigma0.25.tsv"
COHEN_050 = PEER / "cohen2019-cifar10-resnet110-noise0.50-sigma0.50.tsv"
needs_peer = pytest.mark.skipif(
    not (COHEN_025.exists() and COHEN_050.exists()),
    reason=f"Cohen et al.'s published logs not found in {PEER} (../shared/peer-data relative to the repository)",
)
