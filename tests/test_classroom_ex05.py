"""Exercise 05's checks: the truth comes from the randomization test on the model."""

import pytest

from cnnviz_widgets import classroom
from cnnviz_widgets.classroom.ex05_trust import randomization_scores


@pytest.fixture(scope="module")
def scores(shapes):
    return randomization_scores(shapes)


def test_the_scores_are_the_randomization_test(shapes, scores):
    assert set(scores) == set(classroom.TRUST_METHODS)
    for top, end in scores.values():
        assert -1 <= end <= 1 and -1 <= top <= 1
    assert scores["saliency"][1] < 0.5  # the gradient depends on the learned weights


def test_top_layer_blind(shapes, scores):
    best = max(scores, key=lambda m: scores[m][0])
    worst = min(scores, key=lambda m: scores[m][0])
    assert classroom.check_top_layer_blind(best, shapes)
    label = {"guided_backprop": "Guided Backprop", "grad_cam": "Grad-CAM"}.get(best, best)
    assert classroom.check_top_layer_blind(label, shapes)  # the label works too
    assert not classroom.check_top_layer_blind(worst, shapes)
    assert not classroom.check_top_layer_blind(None, shapes).answered
    bad = classroom.check_top_layer_blind("lime", shapes)
    assert not bad and "one of" in bad.message


def test_trustworthy(shapes, scores):
    falls = [m for m, (_, end) in scores.items() if end < 0.45]
    stays = [m for m, (_, end) in scores.items() if end > 0.55]
    assert falls and stays  # the embedded model has both kinds
    assert classroom.check_trustworthy(falls, shapes)
    assert classroom.check_trustworthy(set(falls), shapes)
    assert not classroom.check_trustworthy(falls + stays[:1], shapes)
    assert not classroom.check_trustworthy(falls[1:], shapes)
    assert not classroom.check_trustworthy("saliency", shapes)
    assert not classroom.check_trustworthy(None, shapes).answered
