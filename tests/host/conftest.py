"""Fixtures of the host tests: small models."""

import pytest

from model.random_models import random_model


@pytest.fixture
def model8():
    """A small 8-bit digits model."""
    model = random_model([64, 24, 10], input_bits=8, seed=6)
    model.metadata["dataset"] = "digits"
    return model


@pytest.fixture
def model1():
    """A small 1-bit digits model (digits pixels are 0..16: the threshold splits them)."""
    model = random_model([64, 24, 10], input_bits=1, seed=7, input_threshold=8)
    model.metadata["dataset"] = "digits"
    return model
