"""`bnn train`'s defaults depend on the data set: the short command trains the best recipe measured."""

import dataclasses

import numpy as np
import pytest

from bnn.cli import build_parser
from bnn.cmd_train import request_from_args
from model.datasets import DATASETS, Dataset
from model.errors import TrainingError
from model.pipeline import CONV_RECIPES, MIRROR_SAFE, RECIPES

# The Fashion-MNIST recipe as the README spelled it before the defaults followed the data set.
FASHION_RECIPE = ["--dataset", "fashion-mnist", "--arch", "784-256-256-256-10", "--input-bits", "8",
                  "--batch-size", "64", "--lr", "3e-3", "--grad", "approxsign", "--epochs", "60", "--teacher",
                  "--teacher-arch", "784-1024-1024-10", "--teacher-epochs", "15", "--teacher-shift", "1",
                  "--temperature", "1", "--distill-weight", "0.5"]
DIGITS_RECIPE = ["--dataset", "digits", "--arch", "64-256-256-10", "--input-bits", "8", "--batch-size", "64",
                 "--lr", "1e-2", "--grad", "ste", "--epochs", "50", "--teacher-arch", "64-1024-1024-10",
                 "--teacher-epochs", "15", "--teacher-shift", "0"]


def _images(name, side, classes):
    """A stand-in for a data set with its name, image shape and classes (no files read)."""
    empty = np.zeros((0, side * side), np.uint8)
    return Dataset(name, empty, np.zeros(0, np.int64), empty, np.zeros(0, np.int64), (side, side),
                   tuple(map(str, range(classes))), 16 if name == "digits" else 255)


DATA = {"digits": _images("digits", 8, 10), "fashion-mnist": _images("fashion-mnist", 28, 10),
        "mnist": _images("mnist", 28, 10)}


def _resolved(argv):
    request = request_from_args(build_parser().parse_args(["train", *argv]))
    return request.for_dataset(DATA[request.dataset])


def test_every_data_set_has_a_recipe():
    assert set(RECIPES) == set(DATASETS)


@pytest.mark.parametrize("short, recipe", [
    (["--dataset", "fashion-mnist", "--teacher"], FASHION_RECIPE),
    (["--dataset", "mnist", "--teacher"], [*FASHION_RECIPE[2:], "--dataset", "mnist"]),
    (["--dataset", "digits"], DIGITS_RECIPE),
    ([], DIGITS_RECIPE),
])
def test_the_short_command_is_the_recipe(short, recipe):
    assert _resolved(short) == _resolved(recipe)


def test_a_flag_given_always_wins():
    request = _resolved(["--dataset", "fashion-mnist", "--teacher", "--arch", "784-64-10", "--epochs", "3",
                         "--lr", "0.1", "--grad", "ste", "--teacher-shift", "0", "--teacher-arch", "784-32-10"])
    names = ("arch", "epochs", "lr", "grad", "teacher_shift", "teacher_arch")
    chosen = {name: getattr(request, name) for name in names}
    assert chosen == {"arch": "784-64-10", "epochs": 3, "lr": 0.1, "grad": "ste", "teacher_shift": 0,
                      "teacher_arch": "784-32-10"}
    assert request.out == "runs/fashion-mnist-784-64-10-8b.bnn"


def test_a_resolved_request_has_no_default_left_open():
    request = _resolved(["--dataset", "fashion-mnist"])
    open_fields = {f.name for f in dataclasses.fields(request) if getattr(request, f.name) is None}
    assert open_fields == {"data", "input_threshold"}   # the data set's own folder; 8-bit input has none


def test_help_states_the_defaults_per_data_set(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ["digits <inputs>-256-256-<classes>; fashion-mnist, mnist <inputs>-256-256-256-<classes>",
                     "digits 50; fashion-mnist, mnist 60", "digits 0.01; fashion-mnist, mnist 0.003",
                     "digits ste; fashion-mnist, mnist approxsign", "digits 0; fashion-mnist, mnist 1",
                     "conv nets: digits, fashion-mnist, mnist off", "c32k3-p-c64k3-p-256-10"]:
        assert expected in text


def test_a_convolutional_arch_takes_the_conv_recipe():
    request = _resolved(["--dataset", "fashion-mnist", "--arch", "c32k3-p-c64k3-p-256-10"])
    recipe = CONV_RECIPES["fashion-mnist"]
    chosen = {name: getattr(request, name) for name in ("epochs", "lr", "grad", "shift", "flip", "teacher_shift")}
    assert chosen == {name: getattr(recipe, name) for name in chosen}
    assert request.arch == "28x28-c32k3-p-c64k3-p-256-10"
    assert request.out == "runs/fashion-mnist-28x28-c32k3-p-c64k3-p-256-10-8b.bnn"
    assert _resolved(["--dataset", "fashion-mnist", "--arch", "c8k3-p-10", "--flip"]).flip is True


def test_flips_are_asked_for_and_only_for_data_sets_that_mirror_images_keep():
    assert set(CONV_RECIPES) == set(DATASETS)
    assert not any(recipe.flip for recipe in (*RECIPES.values(), *CONV_RECIPES.values()))   # none helped so far
    assert list(MIRROR_SAFE) == ["fashion-mnist"]
    assert _resolved(["--dataset", "fashion-mnist", "--flip"]).flip is True
    for name in ("digits", "mnist"):
        with pytest.raises(TrainingError, match=f"--flip: a mirror image can change the class of a {name} image"):
            _resolved(["--dataset", name, "--flip"])
