"""Test support for folding tests: the trained float network against the folded golden model."""

import numpy as np

from model.golden import infer
from model.student import evaluate_binary


def assert_same_everywhere(net, model, images):
    """The float network in evaluation mode and the golden model agree on every activation (max-pools
    included), every score and every class."""
    float_run = evaluate_binary(net, images)
    golden = infer(model, images)
    assert len(golden.activations) == len(float_run.activations) == len(model.layers) - 1
    for k, (folded, trained) in enumerate(zip(golden.activations, float_run.activations)):
        assert np.array_equal(folded, trained), f"layer {k}"
    assert np.array_equal(golden.scores, float_run.scores)
    assert np.array_equal(golden.classes, float_run.classes)
    assert np.array_equal(golden.classes, np.argmax(float_run.logits, axis=1))
