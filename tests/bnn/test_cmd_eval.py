import json

import numpy as np
import pytest

from bnn.cli import main
from model.datasets import load_dataset
from model.golden import infer
from model.modelfile import save_model

from model.random_models import random_model


def _digits_model(tmp_path, **metadata):
    model = random_model([64, 20, 10], seed=4)
    model.metadata.update(metadata)
    path = tmp_path / "m.bnn"
    save_model(model, path)
    return model, path


def test_eval_json_matches_golden(tmp_path, capsys):
    model, path = _digits_model(tmp_path, dataset="digits")
    assert main(["eval", "--model", str(path), "--json", "--count", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = load_dataset("digits")
    expected = np.mean(infer(model, data.test_images[:100]).classes == data.test_labels[:100])
    assert report["images"] == 100 and report["accuracy"] == expected
    assert report["dataset"] == "digits" and report["arch"] == "64-20-10"


def test_eval_human_summary(tmp_path, capsys):
    _, path = _digits_model(tmp_path, dataset="digits")
    assert main(["eval", "--model", str(path)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_eval_errors_are_one_line(tmp_path, capsys):
    _, no_dataset = _digits_model(tmp_path)
    cases = [
        (["eval", "--model", str(tmp_path / "nope.bnn")], "no such model file"),
        (["eval", "--model", str(no_dataset)], "does not record its data set; pass --dataset"),
        (["eval", "--model", str(no_dataset), "--dataset", "mnist"], "needs --data DIR"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("bnn eval: error:")


def test_eval_rejects_a_model_of_another_size(tmp_path, capsys):
    model = random_model([30, 5, 3])
    model.metadata["dataset"] = "digits"
    save_model(model, tmp_path / "small.bnn")
    assert main(["eval", "--model", str(tmp_path / "small.bnn")]) == 1
    assert "has 64 inputs per image but the model takes 30" in capsys.readouterr().err


def test_eval_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--dataset", "--data", "--split", "--count", "--json"):
        assert option in text
