"""Geometric verification's rules without the model: the order it gives, the values it
accepts, and the one-line error without OpenCV."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any, cast

import pytest

from lookalike.engine.library import Hit
from lookalike.engine.params import parse_flag
from lookalike.engine.verify import DEPTH, MIN_INLIERS, check_depth, check_verify, verified_order
from lookalike.errors import InvalidQuery
from lookalike.web import STATIC_DIR


def test_verified_candidates_come_first_by_inliers_the_rest_keep_cosine_order():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    inliers = [0, MIN_INLIERS - 1, 40, MIN_INLIERS, 3]
    assert verified_order(scores, inliers) == [2, 3, 0, 1, 4]
    assert verified_order(scores, [0] * 5) == [0, 1, 2, 3, 4]  # nothing verified: unchanged
    assert verified_order(scores, inliers, min_inliers=100) == [0, 1, 2, 3, 4]


def test_values():
    assert check_depth(None) == DEPTH and check_depth(1) == 1 and check_depth(200) == 200
    for bad in (0, 201, -3, True, 2.5, "10"):
        with pytest.raises(InvalidQuery, match="verify_depth must be an integer from 1 to 200"):
            check_depth(cast(Any, bad))
    with pytest.raises(InvalidQuery, match="--verify-depth must be"):
        check_depth(0, "--verify-depth")
    assert [parse_flag(v, "verify") for v in (None, "", True, "true", "1", "Yes", "off", False)] == \
        [None, None, True, True, True, True, False, False]
    with pytest.raises(InvalidQuery, match="verify must be true or false, got 'maybe'"):
        parse_flag("maybe", "verify")
    assert check_verify(False, None, "q.jpg", []) == 0
    with pytest.raises(InvalidQuery, match="verify takes one query image"):
        check_verify(True, None, ["a.jpg", "b.jpg"], [])
    with pytest.raises(InvalidQuery, match="verify takes one query image"):
        check_verify(True, None, "a.jpg", ["b.jpg"])
    with pytest.raises(InvalidQuery, match="verify must be true or false"):
        check_verify(cast(Any, "yes"), None, "a.jpg", [])


def test_only_verified_results_carry_inliers():
    plain = Hit(1, 7, "/p/a.jpg", 0.5).to_dict()
    assert "inliers" not in plain
    assert Hit(1, 7, "/p/a.jpg", 0.5, inliers=31).to_dict()["inliers"] == 31


def test_without_opencv_verify_is_a_missing_extra():
    code = ("import sys\nsys.modules['cv2'] = None\n"
            "from lookalike.engine.verify import check_verify\n"
            "from lookalike.errors import MissingExtra\n"
            "try:\n    check_verify(True, None, 'q.jpg', [])\nexcept MissingExtra as e:\n    print('MISSING', e)\n"
            "from lookalike.engine.verify import unavailable\nprint('UNAVAILABLE', unavailable())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    missing, reason = out.stdout.splitlines()
    assert missing.startswith("MISSING geometric verification (search --verify)") and "lookalike[duplicates]" in missing
    assert reason == "UNAVAILABLE " + missing[len("MISSING "):]  # what /api/stats tells the page


def test_suite_options():
    from lookalike.eval.suite import parse_method

    assert parse_method("effnet-lite0+verify") == ("effnet-lite0", ["verify"])
    assert parse_method("effnet-lite0+flip+verify50") == ("effnet-lite0", ["flip", "verify50"])
    with pytest.raises(InvalidQuery, match="known: flip, pcaN, qe, dba, verify, verifyN"):
        parse_method("effnet-lite0+verified")


def test_the_web_page_marks_verified_results_by_the_engine_threshold():
    """app.js decides which cards show "N matching points" with its own copy of MIN_INLIERS."""
    found = re.search(r"^const MIN_INLIERS = (\d+);", (STATIC_DIR / "app.js").read_text(), re.M)
    assert found is not None and int(found.group(1)) == MIN_INLIERS


def test_the_web_page_says_how_many_results_it_verifies():
    """The switch's tooltip names the engine's verification depth."""
    from lookalike.engine.verify import DEPTH

    found = re.search(r'id="verify-label" title="Checks the top (\d+) results', (STATIC_DIR / "index.html").read_text())
    assert found and int(found.group(1)) == DEPTH
