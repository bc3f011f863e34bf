"""Training: gradients of the custom layers, estimators, clipping, determinism, `bnn train`."""

import json

import numpy as np
import pytest

from bnn.cli import main
from model import train
from model.arch import parse_arch
from model.datasets import load_dataset
from model.errors import TrainingError
from model.layers import Dense
from model.modelfile import load_model
from model.ops import (BN_EPS, GRADS, batchnorm_backward, batchnorm_forward, binary_weights, classification_loss,
                       sign_activation, sign_gradient)
from model.pipeline import TrainRequest, train_and_save
from model.student import (binary_loss_and_grads, clip_weights, evaluate_binary, init_binary_network,
                           recalibrate_batchnorm)
from model.teacher import init_teacher, teacher_logits, teacher_loss_and_grads


def dense_network(sizes, *args, **kwargs):
    """A fresh fully connected :class:`model.student.BinaryNetwork` of layer sizes ``sizes`` (input size first)."""
    return init_binary_network((sizes[0],), tuple(map(Dense, sizes[1:])), *args, **kwargs)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _numeric_gradient(f, x, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to the float64 array ``x`` (in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = f()
        x[i] = saved - eps
        down = f()
        x[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


# --- gradient checks ------------------------------------------------------------------------------

def test_batchnorm_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    a = rng.normal(3, 2, (7, 5))
    gamma, beta = rng.normal(1, 0.5, 5), rng.normal(0, 0.5, 5)
    upstream = rng.normal(size=(7, 5))

    def loss():
        return (batchnorm_forward(a, gamma, beta)[0] * upstream).sum()

    _, _, _, cache = batchnorm_forward(a, gamma, beta)
    da, dgamma, dbeta = batchnorm_backward(upstream, cache)
    np.testing.assert_allclose(da, _numeric_gradient(loss, a), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dgamma, _numeric_gradient(loss, gamma), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dbeta, _numeric_gradient(loss, beta), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("distilled", [False, True])
def test_classification_loss_gradient_matches_finite_differences(distilled):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (6, 4))
    labels = rng.integers(0, 4, 6)
    teacher = rng.normal(0, 3, (6, 4)) if distilled else None
    distillation = train.Distillation(temperature=3.0, weight=0.6)
    _, grad = classification_loss(logits, labels, teacher, distillation)
    numeric = _numeric_gradient(lambda: classification_loss(logits, labels, teacher, distillation)[0], logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_distillation_term_vanishes_when_student_equals_teacher():
    logits = np.random.default_rng(2).normal(size=(5, 3))
    labels = np.zeros(5, np.int64)
    only_kd = train.Distillation(temperature=2.0, weight=1.0)
    loss, grad = classification_loss(logits, labels, logits.copy(), only_kd)
    assert abs(loss) < 1e-12 and np.abs(grad).max() < 1e-12


def test_teacher_gradients_match_finite_differences(digits):
    rng = np.random.default_rng(3)
    teacher = init_teacher((64, 6, 5, 10), digits.max_value, rng)
    teacher.params = {k: v.astype(np.float64) for k, v in teacher.params.items()}
    pixels, labels = digits.train_images[:8], digits.train_labels[:8]
    _, _, grads = teacher_loss_and_grads(teacher, pixels, labels)
    for name in ("w0", "b0", "w1", "b2"):
        numeric = _numeric_gradient(lambda: teacher_loss_and_grads(teacher, pixels, labels)[0],
                                    teacher.params[name])
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-4, atol=1e-7, err_msg=name)


def test_output_scale_gradient_matches_finite_differences(digits):
    rng = np.random.default_rng(4)
    net = dense_network((64, 16, 10), 8, digits.max_value, "ste", rng)
    pixels, labels = digits.train_images[:32], digits.train_labels[:32]
    _, _, grads = binary_loss_and_grads(net, pixels, labels)
    net.params["log_alpha"] = net.params["log_alpha"].astype(np.float64)
    numeric = _numeric_gradient(lambda: binary_loss_and_grads(net, pixels, labels)[0], net.params["log_alpha"])
    np.testing.assert_allclose(grads["log_alpha"], numeric, rtol=1e-3)


def test_binary_gradients_have_the_parameter_shapes(digits):
    net = dense_network((64, 16, 12, 10), 1, digits.max_value, "approxsign", np.random.default_rng(5))
    _, logits, grads = binary_loss_and_grads(net, digits.train_images[:20], digits.train_labels[:20])
    assert logits.shape == (20, 10)
    assert grads.keys() == net.params.keys()
    for name, g in grads.items():
        assert g.shape == net.params[name].shape, name
        assert np.all(np.isfinite(g)), name


# --- estimators ------------------------------------------------------------------------------------

def test_sign_forward_maps_zero_to_plus_one():
    assert sign_activation(np.array([-0.5, 0.0, -0.0, 2.0])).tolist() == [-1, 1, 1, 1]
    assert binary_weights(np.array([[-1.0, 0.0, 0.3]])).tolist() == [[-1, 1, 1]]


def test_ste_passes_gradient_only_where_clipped_input_is_small():
    h = np.array([[-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]])
    g = sign_gradient(h, "ste")
    assert g.shape == h.shape
    assert g.tolist() == [[0, 1, 1, 1, 1, 1, 0]]


def test_approxsign_gradient_is_a_triangle():
    h = np.array([[-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 1.5]])
    g = sign_gradient(h, "approxsign")
    assert g.shape == h.shape
    np.testing.assert_allclose(g, [[0, 0, 1, 2, 1.5, 0, 0]])


def test_approxsign_backward_scales_the_upstream_gradient(digits):
    """Both estimators give the same weight-gradient shapes, but different values."""
    results = {}
    for grad in GRADS:
        net = dense_network((64, 16, 10), 8, digits.max_value, grad, np.random.default_rng(6))
        results[grad] = binary_loss_and_grads(net, digits.train_images[:40], digits.train_labels[:40])[2]
    assert results["ste"]["w0"].shape == results["approxsign"]["w0"].shape
    assert not np.allclose(results["ste"]["w0"], results["approxsign"]["w0"])
    np.testing.assert_array_equal(results["ste"]["w1"], results["approxsign"]["w1"])


# --- training --------------------------------------------------------------------------------------

def test_latent_weights_stay_clipped(digits):
    rng = np.random.default_rng(7)
    net = dense_network((64, 16, 10), 8, digits.max_value, "ste", rng)
    data = train.split_validation(digits, 0.1, 7)
    # A large learning rate pushes many weights against the clip.
    train.train_binary(data, net, train.TrainSettings(2, 32, 0.5), rng, progress=False)
    weights = np.concatenate([net.params["w0"].ravel(), net.params["w1"].ravel()])
    assert np.abs(weights).max() <= 1
    assert np.count_nonzero(np.abs(weights) == 1) > 0


def test_clip_weights_clips_to_unit_interval(digits):
    net = dense_network((64, 4, 10), 8, digits.max_value, "ste", np.random.default_rng(8))
    net.params["w0"][0, :3] = [-3.0, 0.5, 7.0]
    clip_weights(net)
    assert net.params["w0"][0, :3].tolist() == [-1.0, 0.5, 1.0]


def test_training_learns_and_keeps_the_best_epoch(digits):
    rng = np.random.default_rng(9)
    net = dense_network((64, 32, 10), 8, digits.max_value, "ste", rng)
    data = train.split_validation(digits, 0.1, 9)
    result = train.train_binary(data, net, train.TrainSettings(5, 64, 1e-2), rng, progress=False)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4, 5]
    best = max(r.val_accuracy for r in result.history)
    assert result.val_accuracy == best > 0.8
    predicted = evaluate_binary(net, data[2]).classes
    assert train.accuracy(predicted, data[3]) == best


@pytest.mark.parametrize("input_bits", [8, 1])
def test_recalibration_sets_the_population_statistics_layer_by_layer(digits, input_bits):
    rng = np.random.default_rng(10)
    net = dense_network((64, 12, 9, 10), input_bits, digits.max_value, "ste", rng)
    net.params["beta0"][:] = rng.normal(size=12).astype(np.float32)
    pixels = digits.train_images[:500]
    recalibrate_batchnorm(net, pixels)
    x = net.encode(pixels).astype(np.float64)
    for k in range(2):
        a = x @ binary_weights(net.params[f"w{k}"]).T / net.layer_scale(k)
        np.testing.assert_allclose(net.stats[f"mean{k}"], a.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(net.stats[f"var{k}"], a.var(axis=0), rtol=1e-9, atol=1e-12)
        h = ((a - a.mean(axis=0)) / np.sqrt(a.var(axis=0) + BN_EPS) * net.params[f"gamma{k}"]
             + net.params[f"beta{k}"])
        x = np.where(h >= 0, 1.0, -1.0)


def test_one_bit_input_threshold_defaults_to_half_the_maximum(digits):
    net = dense_network((4, 4, 10), 1, digits.max_value, "ste", np.random.default_rng(0))
    assert net.input_threshold == 8
    assert net.encode(np.array([[7, 8, 0, 16]], np.uint8)).tolist() == [[-1, 1, -1, 1]]
    assert dense_network((64, 4, 10), 1, 255, "ste", np.random.default_rng(0)).input_threshold == 128


def test_cosine_schedule_decays_from_lr_to_zero():
    assert train.cosine_lr(0.01, 0, 100) == 0.01
    assert train.cosine_lr(0.01, 50, 100) == pytest.approx(0.005)
    assert train.cosine_lr(0.01, 100, 100) == pytest.approx(0)


def test_translate_moves_content_without_losing_it():
    image = np.zeros((1, 25), np.uint8)
    image[0, 12] = 9  # centre of a 5x5 image
    dy, dx = train.random_offsets(50, 1, np.random.default_rng(0))
    shifted = train.translate(np.repeat(image, 50, axis=0), (5, 5), dy, dx)
    assert np.all(shifted.sum(axis=1) == 9)
    rows, cols = np.divmod(np.argmax(shifted, axis=1), 5)
    assert np.array_equal(rows, 2 + dy) and np.array_equal(cols, 2 + dx)
    assert set(dy) == set(dx) == {-1, 0, 1}


def test_translate_fills_uncovered_pixels_with_zero():
    image = np.arange(1, 10, dtype=np.uint8).reshape(1, 9)  # 3x3: 1..9
    moved = train.translate(image, (3, 3), np.array([1]), np.array([-1]))
    assert moved.reshape(3, 3).tolist() == [[0, 0, 0], [2, 3, 0], [5, 6, 0]]


@pytest.mark.parametrize("flip", [False, True])
def test_teacher_table_holds_the_teacher_logits_of_each_augmented_image(digits, flip):
    teacher = init_teacher((64, 8, 10), digits.max_value, np.random.default_rng(0))
    images = digits.train_images[:30]
    settings = train.TrainSettings(1, 30, 1e-3, max_shift=1, flip=flip)
    table = train._teacher_table(teacher, images, digits.shape, settings, chunk=7)
    assert len(table) == (18 if flip else 9)
    augmented, variants = train.augment(images, digits.shape, settings, np.random.default_rng(1))
    expected = teacher_logits(teacher, augmented)
    np.testing.assert_allclose(table[variants, np.arange(30)], expected, rtol=1e-5, atol=1e-6)


def test_mirror_flips_chosen_images_left_to_right():
    images = np.arange(12, dtype=np.uint8).reshape(2, 6)   # two 2 x 3 images
    mirrored = train.mirror(images, (2, 3), np.array([True, False]))
    assert mirrored.tolist() == [[2, 1, 0, 5, 4, 3], [6, 7, 8, 9, 10, 11]]


def test_same_seed_gives_the_same_model_bytes(tmp_path):
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        request = TrainRequest(arch="64-16-10", epochs=2, seed=seed, out=str(tmp_path / f"{name}.bnn"))
        paths.append(train_and_save(request, progress=False).paths["model"])
    a, b, c = (open(p, "rb").read() for p in paths)
    assert a == b
    assert a != c


# --- architecture strings and the command line -----------------------------------------------------

@pytest.mark.parametrize("text", ["", "64", "64-x-10", "64--10", "64-16-1", "64-0-10", "-64-10"])
def test_bad_arch_strings_are_rejected(text):
    with pytest.raises(TrainingError):
        parse_arch(text)


@pytest.mark.parametrize("argv, message", [
    (["--arch", "64-x-10"], "expected layer sizes joined by '-'"),
    (["--arch", "784-256-10"], "starts with 784 inputs but digits images have 64 pixels"),
    (["--arch", "64-256-7"], "ends with 7 outputs but digits has 10 classes"),
    (["--dataset", "cifar"], "unknown data set 'cifar'"),
    (["--dataset", "mnist", "--data", "/nonexistent/idx"], "/nonexistent/idx: no such directory"),
    (["--teacher", "/nonexistent/teacher.npz", "--arch", "64-8-10"], "no such teacher file"),
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--input-threshold", "3"], "applies only to 1-bit input"),
    (["--validation", "0.0001"], "leaves 1347 training and 0 validation images"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    status = main(["train", "--out", str(tmp_path / "m.bnn")] + argv)
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("bnn train: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "m.bnn").exists()


def test_cli_trains_with_a_teacher_and_prints_one_json_object(tmp_path, capsys):
    out = tmp_path / "sub" / "dir" / "tiny.bnn"
    status = main(["train", "--arch", "64-24-16-10", "--epochs", "3", "--teacher", "--teacher-arch", "64-32-10",
                   "--teacher-epochs", "2", "--input-bits", "1", "--grad", "approxsign", "--out", str(out), "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "64-24-16-10" and report["input_bits"] == 1 and report["distillation"]
    assert report["accuracy"]["float"] == report["accuracy"]["folded"]
    assert 0 < report["accuracy"]["teacher"] <= 1
    assert report["mismatches"] == {"classes": 0, "activations": 0, "thresholds": 0}
    assert report["counts"]["train"] + report["counts"]["validation"] == 1347
    assert report["counts"]["test"] == 450
    for kind in ("model", "plot", "teacher"):
        assert (tmp_path / "sub" / "dir").joinpath(report["paths"][kind].rsplit("/", 1)[1]).stat().st_size > 0
    model = load_model(out)
    assert model.metadata["dataset"] == "digits" and model.metadata["arch"] == "64-24-16-10"
    assert model.metadata["class_names"] == [str(d) for d in range(10)]
    assert model.metadata["accuracy"]["test_folded"] == report["accuracy"]["folded"]
    assert model.metadata["teacher"]["arch"] == "64-32-10"

    # The saved teacher distils a second student.
    again = main(["train", "--arch", "64-16-10", "--epochs", "1", "--teacher", report["paths"]["teacher"],
                  "--out", str(tmp_path / "second.bnn"), "--json"])
    second = json.loads(capsys.readouterr().out)
    assert again == 0 and second["accuracy"]["teacher"] == report["accuracy"]["teacher"]
    assert "teacher" not in second["paths"]


def test_cli_prints_a_human_summary(tmp_path, capsys):
    assert main(["train", "--arch", "64-16-10", "--epochs", "1", "--out", str(tmp_path / "m.bnn")]) == 0
    out = capsys.readouterr().out
    assert "test accuracy: float" in out and "folded" in out and str(tmp_path / "m.png") in out


@pytest.mark.parametrize("progress", [True, False])
def test_training_into_a_log_says_how_far_it_is(digits, monkeypatch, capsys, progress):
    """No bars off a terminal, but status lines (at every batch and epoch here: the interval is 0), unless
    progress is off: a long epoch (a big network) is not silent until it ends."""
    monkeypatch.setattr(train, "_STATUS_SECONDS", 0)
    net = dense_network((64, 8, 10), 8, digits.max_value, "ste", np.random.default_rng(2))
    data = train.split_validation(digits, 0.1, 2)
    train.train_binary(data, net, train.TrainSettings(2, 64, 1e-2), np.random.default_rng(2), progress=progress)
    lines = capsys.readouterr().err.splitlines()
    if progress:
        batches = -(-len(data[0]) // 64)
        parts = [line.split(", ") for line in lines]
        assert [p[0] for p in parts] == [f"student: epoch {epoch} of 2" for epoch in (1, 2) for _ in range(batches)]
        assert [p[1].rsplit(" ", 1)[0] if p[1].startswith("training loss") else p[1] for p in parts] == \
            [*(f"batch {b} of {batches}" for b in range(1, batches)), "training loss"] * 2
        assert "validation accuracy" in lines[batches - 1] and lines[-1].endswith(" s in")
        assert lines[0].endswith(" s an epoch)")
    else:
        assert lines == []
