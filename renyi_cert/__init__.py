"""renyi_cert: certified robustness with additive Gaussian noise.

Implements Li, Chen, Wang & Carin, "Certified Adversarial Robustness with Additive Gaussian
Noise" (NeurIPS 2019): the Renyi-divergence certified radius with the supremum over the order
taken exactly, the comparison bounds (Cohen et al. 2019, PixelDP), confidence intervals for the
top two classes, and certification from class counts for any model backend. The core needs numpy, scipy and numba
only; the torch backend lives in the separate package ``renyi_cert_torch``.

``import renyi_cert`` loads numpy and the package itself: scipy and numba (with the compiled,
disk-cached kernels) are imported by the first call that needs them, which pays that cost once
per process (benchmarks/bench_import.py measures both).
"""

from .bounds import (
    BOUNDS,
    PixelDPResult,
    RadiusResult,
    cohen_radius,
    pixeldp_details,
    pixeldp_radius,
    radius,
    radius_details,
    renyi_objective,
)
from .backend import Backend, CallableBackend, certify, predict
from .certificate import (
    Certificate,
    Prediction,
    certify_from_counts,
    certify_from_counts_single,
    predict_from_counts,
)
from .divergence import gaussian_renyi_divergence, lemma1_bound, renyi_divergence
from .intervals import (
    GUARANTEED_METHODS,
    METHODS,
    ConfidenceInterval,
    Top2Confidence,
    clopper_pearson_interval,
    goodman,
    sison_glaz,
    top2_confidence,
)
from .means import generalized_mean
from .sequential import AdaptiveCertificate, certify_adaptive

__version__ = "0.1.0"

__all__ = [
    "BOUNDS",
    "GUARANTEED_METHODS",
    "METHODS",
    "Backend",
    "CallableBackend",
    "Certificate",
    "ConfidenceInterval",
    "Prediction",
    "Top2Confidence",
    "certify",
    "certify_adaptive",
    "AdaptiveCertificate",
    "certify_from_counts",
    "certify_from_counts_single",
    "clopper_pearson_interval",
    "goodman",
    "predict",
    "predict_from_counts",
    "sison_glaz",
    "top2_confidence",
    "PixelDPResult",
    "RadiusResult",
    "cohen_radius",
    "gaussian_renyi_divergence",
    "generalized_mean",
    "lemma1_bound",
    "pixeldp_details",
    "pixeldp_radius",
    "radius",
    "radius_details",
    "renyi_divergence",
    "renyi_objective",
]
