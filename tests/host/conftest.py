"""Fixtures of the host tests: the stand-in for the gateware's memory images, and small models."""

import pytest

import host.board
from model.random_models import random_model

from . import fake_board


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    """Load the stand-in memory images of :mod:`tests.host.fake_board` instead of :mod:`hw.link`'s."""
    monkeypatch.setattr(host.board, "memory_images", fake_board.memory_images)
    monkeypatch.setattr(host.board, "model_id", fake_board.model_id)


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
