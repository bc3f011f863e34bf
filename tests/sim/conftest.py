import pytest

from model.modelfile import save_model
from model.random_models import random_model


@pytest.fixture
def digits_model(tmp_path):
    """A small random 8-bit model for the digits data set, and the path of its file."""
    model = random_model([64, 12, 10], input_bits=8, seed=6)
    model.metadata["dataset"] = "digits"
    path = tmp_path / "m.bnn"
    save_model(model, path)
    return model, str(path)


@pytest.fixture
def digits_model_file(digits_model):
    return digits_model[1]
