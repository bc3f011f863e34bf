"""Property tests of the model file: every valid model round-trips exactly, and damaged bytes give a
one-line ModelFileError, never another exception."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.errors import ModelFileError
from model.modelfile import load_model, save_model

from .strategies import binary_models

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_same_model(a, b):
    assert a.input == b.input
    assert a.metadata == b.metadata
    assert len(a.layers) == len(b.layers)
    for k, (x, y) in enumerate(zip(a.layers, b.layers)):
        assert (x.fan_in, x.fan_out) == (y.fan_in, y.fan_out), k
        assert x.weights.dtype == y.weights.dtype and np.array_equal(x.weights, y.weights), k
        if x.thresholds is None:
            assert y.thresholds is None, k
        else:
            assert y.thresholds.dtype == np.int32 and np.array_equal(x.thresholds, y.thresholds), k


@SETTINGS
@given(model=binary_models(with_metadata=True))
def test_every_valid_model_round_trips_exactly(tmp_path, model):
    path = tmp_path / "m.bnn"
    save_model(model, path)
    loaded = load_model(path)
    assert_same_model(model, loaded)
    first = path.read_bytes()
    save_model(loaded, path)
    assert path.read_bytes() == first


@st.composite
def damaged(draw, data):
    """``data`` with some bytes replaced, then perhaps cut short or extended."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    end = draw(st.sampled_from(["keep", "cut", "extend"]))
    if end == "cut":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif end == "extend":
        data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@SETTINGS
@given(model=binary_models(), choice=st.data())
def test_damaged_bytes_give_model_file_error_and_nothing_else(tmp_path, model, choice):
    path = tmp_path / "m.bnn"
    save_model(model, path)
    original = path.read_bytes()
    path.write_bytes(choice.draw(damaged(original)))
    try:
        loaded = load_model(path)
    except ModelFileError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
    else:
        # only a change the format does not see can load (e.g. a space of the JSON header turned
        # into a tab); the payload is checksummed, so the network is the one saved
        for x, y in zip(model.layers, loaded.layers):
            assert np.array_equal(x.weights, y.weights)
