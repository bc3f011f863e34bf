"""Property test of the golden model: on random small models and images it agrees with a reference
written as plain loops over the semantics of docs/model-format.md, sharing no code with it."""

from hypothesis import given, settings
from hypothesis import strategies as st

from model.golden import infer

from .strategies import binary_models, images_for


def _weight(layer, j, i):
    """``w_ji`` in {-1,+1}: bit ``i % 8`` of byte ``i // 8`` of row ``j``, 1 meaning +1."""
    return 1 if (int(layer.weights[j, i // 8]) >> (i % 8)) & 1 else -1


def reference(model, image):
    """``(hidden activations per layer as lists of -1/+1, class scores, class)`` of one image."""
    if model.input.bits == 8:
        x = [int(p) for p in image]
    else:
        x = [1 if int(p) >= model.input.threshold else -1 for p in image]
    hidden = []
    for layer in model.layers:
        y = [sum(x[i] * _weight(layer, j, i) for i in range(layer.fan_in)) for j in range(layer.fan_out)]
        if layer.thresholds is None:
            best = 0
            for c in range(1, len(y)):
                if y[c] > y[best]:   # ties keep the lowest index
                    best = c
            return hidden, y, best
        x = [1 if y[j] >= int(layer.thresholds[j]) else -1 for j in range(layer.fan_out)]
        hidden.append(x)
    raise AssertionError("a valid model ends with a layer without thresholds")


def _unpacked(packed_row, n):
    return [1 if (int(packed_row[i // 8]) >> (i % 8)) & 1 else -1 for i in range(n)]


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_golden_model_agrees_with_plain_loops(data):
    model = data.draw(binary_models(max_layers=3, max_width=70))
    images = data.draw(images_for(model))
    result = infer(model, images)
    for b, image in enumerate(images):
        hidden, scores, predicted = reference(model, image)
        assert result.scores[b].tolist() == scores
        assert int(result.classes[b]) == predicted
        for k, activations in enumerate(hidden):
            assert _unpacked(result.activations[k][b], model.layers[k].fan_out) == activations, f"layer {k}"
