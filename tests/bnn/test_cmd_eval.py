import json
import struct

import numpy as np
import pytest

from bnn.cli import main
from model.datasets import load_dataset
from model.golden import infer
from model.modelfile import save_model

from model.layers import Conv, Dense, MaxPool
from model.random_models import random_conv_model, random_model


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


def _idx(array, magic):
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def test_a_multi_channel_image_model_reads_idx_images_of_n_h_w_c(tmp_path, capsys):
    """docs/model-format.md, "Images from a data set": IDX images of N x H x W x C feed a model whose
    first convolution reads C channels, in eval and on the simulated engine alike."""
    rng = np.random.default_rng(0)
    test_images = rng.integers(0, 256, (6, 6, 5, 3), dtype=np.uint8)
    for stem, images in (("train", rng.integers(0, 256, (9, 6, 5, 3))), ("t10k", test_images)):
        (tmp_path / f"{stem}-images-idx3-ubyte").write_bytes(_idx(images, 0x804))
        (tmp_path / f"{stem}-labels-idx1-ubyte").write_bytes(_idx(np.arange(len(images)) % 3, 0x801))
    model = random_conv_model((6, 5, 3), [Conv(4, 3), MaxPool(), Dense(3)], seed=2)
    save_model(model, tmp_path / "m.bnn")
    data = ["--model", str(tmp_path / "m.bnn"), "--dataset", "mnist", "--data", str(tmp_path), "--json"]
    assert main(["eval", *data]) == 0
    expected = np.mean(infer(model, test_images.reshape(6, -1)).classes == np.arange(6) % 3)
    assert json.loads(capsys.readouterr().out)["accuracy"] == expected
    assert main(["sim", *data, "--pe", "2", "--simd", "8", "--backend", "amaranth"]) == 0
    assert json.loads(capsys.readouterr().out)["mismatches"] == 0
    # a one-channel data set does not feed it
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(test_images[..., 0], 0x803))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(test_images[..., 0], 0x803))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(np.arange(6) % 3, 0x801))
    assert main(["eval", *data]) == 1
    assert "has 6 x 5 x 1 images but the model reads 6 x 5 x 3 maps" in capsys.readouterr().err
