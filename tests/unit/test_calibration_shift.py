"""How far a domain moves the confidence curve: the suite run without it, and the curves' gap."""

from __future__ import annotations

import numpy as np

from lookalike.eval.calibration import curve_shift, without_domain
from lookalike.eval.suite import SuiteResult
from lookalike.models.calibrate import Calibration


def test_without_domain_leaves_out_its_pairs_and_vectors_only():
    pair = (np.ones((2, 10), np.float32), np.zeros((2, 10), bool))
    vecs = (np.eye(2, 4, dtype=np.float32), np.eye(3, 4, dtype=np.float32))
    result = SuiteResult([], ["m"], pairs={"m": {"icons": pair, "brain": pair}}, vectors={"m": {"icons": vecs, "brain": vecs}})
    rest = without_domain(result, "brain")
    assert set(rest.pairs["m"]) == set(rest.vectors["m"]) == {"icons"}
    assert set(result.pairs["m"]) == {"icons", "brain"}  # the run itself is untouched


def test_curve_shift_is_the_largest_signed_gap_and_where():
    a = Calibration("m", "v", (0.5, 0.7, 0.9), (0.0, 0.6, 1.0), 0.5)
    b = Calibration("m", "v", (0.5, 0.7, 0.9), (0.0, 0.4, 1.0), 0.5)
    assert np.allclose(curve_shift(a, b), (-0.2, 0.7))
    assert curve_shift(a, a)[0] == 0.0
