"""Training and folding binary convolutional networks: the architecture syntax, the convolution and
max-pool passes, recalibration, and exact folding (the float network in evaluation mode against the
golden model on every activation)."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from math import prod

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnn.cli import main
from model import student, train
from model.arch import fit_arch, parse_arch
from model.datasets import load_dataset
from model.errors import TrainingError
from model.fold import fold
from model.layers import Conv, Dense, MaxPool, arch_string, pool_quarters, windows, windows_adjoint
from model.modelfile import ConvLayer, MaxPoolLayer, load_model, save_model
from model.ops import BN_EPS, binary_weights, max_pool_backward, max_pool_forward
from model.pipeline import threshold_mismatches
from model.random_models import random_conv_model
from model.student import (_preactivation_sums, binary_loss_and_grads, evaluate_binary, init_binary_network,
                           recalibrate_batchnorm)
from tests.model.fold_support import assert_same_everywhere


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _network(arch, input_bits=8, max_value=16, grad="ste", seed=0, threshold=None):
    """A fresh :class:`model.student.BinaryNetwork` of the ``--arch`` string ``arch`` (input stated)."""
    input_shape, specs = parse_arch(arch)
    return init_binary_network(input_shape, specs, input_bits, max_value, grad, np.random.default_rng(seed),
                                     threshold)


def _trained(digits, arch, input_bits, epochs=3, seed=1):
    net = _network(arch, input_bits, digits.max_value, "approxsign", seed)
    data = train.split_validation(digits, 0.1, seed)
    train.train_binary(data, net, train.TrainSettings(epochs, 64, 1e-2), np.random.default_rng(seed), progress=False)
    return net


def _with_unusual_channels(net, rng):
    """Make some batch-norm scales negative and some zero (with either sign of beta)."""
    for k in net.hidden:
        gamma, beta = net.params[f"gamma{k}"], net.params[f"beta{k}"]
        flipped = rng.choice(len(gamma), len(gamma) // 3, replace=False)
        gamma[flipped] = -np.abs(gamma[flipped])
        gamma[:2] = 0
        beta[:2] = [0.5, -0.5]
    return net


# --- architecture strings ------------------------------------------------------------------------

@pytest.mark.parametrize("text, input_shape, specs", [
    ("64-256-10", (64,), (Dense(256), Dense(10))),
    ("c32k3-p-c64k3-p-256-10", None, (Conv(32, 3), MaxPool(), Conv(64, 3), MaxPool(), Dense(256), Dense(10))),
    ("28x28-c32k3-p-10", (28, 28, 1), (Conv(32, 3), MaxPool(), Dense(10))),
    ("32x32x3-c16k5-p-10", (32, 32, 3), (Conv(16, 5), MaxPool(), Dense(10))),
    ("8x8-c4k3-c4k3-10", (8, 8, 1), (Conv(4, 3), Conv(4, 3), Dense(10))),
])
def test_parse_arch(text, input_shape, specs):
    assert parse_arch(text) == (input_shape, specs)


@pytest.mark.parametrize("text, message", [
    ("c32-p-10", "expected layer sizes joined by '-'"),
    ("c32k3-q-10", "expected layer sizes joined by '-'"),
    ("8x8", "expected layer sizes joined by '-'"),
    ("c32k3-p-0-10", "every layer needs at least one neuron"),
    ("c32k3-p-1", "the output layer needs at least 2 classes"),
])
def test_bad_conv_arch_strings_are_rejected(text, message):
    with pytest.raises(TrainingError, match=message):
        parse_arch(text)


@pytest.mark.parametrize("text, expected", [
    ("c8k3-p-10", ((8, 8, 1), "8x8-c8k3-p-10")),
    ("8x8-c8k3-p-10", ((8, 8, 1), "8x8-c8k3-p-10")),
    ("8x8-256-10", ((64,), "64-256-10")),
])
def test_fit_arch_takes_the_input_from_the_data_set(digits, text, expected):
    input_shape, specs = fit_arch(text, digits, 8)
    assert (input_shape, arch_string(input_shape, specs)) == expected


@pytest.mark.parametrize("text, message", [
    ("28x28-c8k3-p-10", "--arch 28x28-c8k3-p-10: reads 28x28 images but digits images are 8x8"),
    ("c8k3-p-c8k5-10", r"layer 2 \(c8k5\): kernel 5 x 5 is larger than the 3 x 3 map feeding it"),
    ("c8k3-p-p-10", r"layer 2 \(p\): a 2 x 2 max-pool must follow a convolution"),
    ("64-c8k3-10", r"layer 0 \(c8k3\): needs a feature map"),
    ("c8k3-p-12", "ends with 12 outputs but digits has 10 classes"),
    ("c8k3", "must be fully connected"),
])
def test_conv_arch_errors_name_the_problem(digits, text, message):
    with pytest.raises(TrainingError, match=message):
        fit_arch(text, digits, 8)


# --- the convolution and max-pool passes ---------------------------------------------------------

def test_windows_adjoint_is_the_adjoint_of_windows():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 6, 5, 3))
    rows = rng.normal(size=(2 * 4 * 3, 3 * 3 * 3))
    assert np.isclose((windows(maps, 3) * rows).sum(), (maps * windows_adjoint(rows, maps.shape, 3)).sum())


def test_max_pool_of_signs_is_the_sign_of_the_max_pool():
    h = np.random.default_rng(1).normal(size=(3, 7, 5, 4)).astype(np.float32)
    pooled, positions = max_pool_forward(h)
    quarters = [q >= 0 for q in pool_quarters(h)]
    assert pooled.shape == (3, 3, 2, 4) and positions.dtype == np.int8
    assert np.array_equal(pooled >= 0, quarters[0] | quarters[1] | quarters[2] | quarters[3])


def test_max_pool_gradient_goes_to_the_first_largest_value():
    h = np.zeros((1, 3, 3, 1), np.float32)   # the odd last row and column are dropped
    h[0, 1, 0, 0] = h[0, 1, 1, 0] = 2.0       # a tie: positions (1, 0) and (1, 1) of the window
    pooled, positions = max_pool_forward(h)
    assert pooled.ravel().tolist() == [2.0] and positions.ravel().tolist() == [2]
    d = max_pool_backward(np.full((1, 1, 1, 1), 5.0, np.float32), positions, h.shape)
    expected = np.zeros((3, 3))
    expected[1, 0] = 5
    assert np.array_equal(d[0, :, :, 0], expected)


def test_max_pool_backward_is_the_gradient_of_the_forward_pass():
    rng = np.random.default_rng(2)
    h = rng.normal(size=(2, 5, 4, 3))   # distinct values: the gradient is defined everywhere
    upstream = rng.normal(size=(2, 2, 2, 3))
    pooled, positions = max_pool_forward(h)
    d = max_pool_backward(upstream, positions, h.shape)
    eps = 1e-6
    for index in [(0, 0, 0, 0), (1, 3, 2, 1), (0, 4, 3, 2), (1, 1, 1, 0)]:
        moved = h.copy()
        moved[index] += eps
        assert np.isclose((max_pool_forward(moved)[0] * upstream).sum() - (pooled * upstream).sum(),
                          eps * d[index], atol=1e-12)


def test_a_convolution_over_the_whole_image_trains_like_a_fully_connected_layer(digits):
    """A K x K kernel over a K x K image reads the image flattened channels innermost: the fully
    connected layer of the same weights, so loss and gradients are equal."""
    conv = _network("8x8-c12k8-10", seed=3)
    dense = _network("64-12-10", seed=3)
    assert conv.params.keys() == dense.params.keys()
    pixels, labels = digits.train_images[:40], digits.train_labels[:40]
    conv_loss, _, conv_grads = binary_loss_and_grads(conv, pixels, labels)
    dense_loss, _, dense_grads = binary_loss_and_grads(dense, pixels, labels)
    assert conv_loss == dense_loss
    for name in dense_grads:
        np.testing.assert_array_equal(conv_grads[name], dense_grads[name], err_msg=name)


def test_conv_gradients_have_the_parameter_shapes(digits):
    net = _network("8x8-c6k3-p-c5k2-10", grad="approxsign", seed=4)
    _, logits, grads = binary_loss_and_grads(net, digits.train_images[:20], digits.train_labels[:20])
    assert logits.shape == (20, 10)
    assert grads.keys() == net.params.keys() == {"w0", "gamma0", "beta0", "w2", "gamma2", "beta2", "w3", "log_alpha"}
    assert net.params["w0"].shape == (6, 9) and net.params["w2"].shape == (5, 2 * 2 * 6)
    for name, g in grads.items():
        assert g.shape == net.params[name].shape and np.all(np.isfinite(g)), name
        assert np.any(g != 0), name


# 6 channels: the statistics from the pre-activations; 12 (more than the 9 inputs of a window):
# from the windows' sums and Gram matrix
@pytest.mark.parametrize("channels", [6, 12])
@pytest.mark.parametrize("input_bits", [8, 1])
def test_recalibration_of_a_convolution_takes_every_pixel_of_every_map(digits, input_bits, channels):
    net = _network(f"8x8-c{channels}k3-p-c5k2-10", input_bits, digits.max_value, seed=5)
    rng = np.random.default_rng(5)
    net.params["beta0"][:] = rng.normal(size=channels).astype(np.float32)
    pixels = digits.train_images[:300]
    recalibrate_batchnorm(net, pixels)
    x = net.encode(pixels).astype(np.float64)
    a = windows(x, 3) @ binary_weights(net.params["w0"]).T.astype(np.float64) / net.layer_scale(0)
    np.testing.assert_allclose(net.stats["mean0"], a.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.stats["var0"], a.var(axis=0), rtol=1e-9, atol=1e-12)
    fires = net.fires(0, a * net.layer_scale(0)).reshape(300, 6, 6, channels)
    q = pool_quarters(fires)
    x = np.where(q[0] | q[1] | q[2] | q[3], 1.0, -1.0)
    a = windows(x, 2) @ binary_weights(net.params["w2"]).T.astype(np.float64)
    np.testing.assert_allclose(net.stats["mean2"], a.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.stats["var2"], a.var(axis=0), rtol=1e-9, atol=1e-12)


# pixels or +-1 values; rows no longer than the outputs take the Gram matrix, the others the pre-activations
@pytest.mark.parametrize("fan_in, outputs, pixels", [(9, 32, True), (9, 4, True), (20, 20, False), (288, 64, False)])
def test_preactivation_sums_are_exact(fan_in, outputs, pixels):
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, (4000, fan_in)) if pixels else rng.choice([-1, 1], (4000, fan_in))
    w_bin = binary_weights(rng.uniform(-1, 1, (outputs, fan_in)).astype(np.float32))
    z = values @ w_bin.astype(np.int64).T
    sums, sums_sq, kept = _preactivation_sums(values.astype(np.float32), w_bin)
    assert sums.dtype == sums_sq.dtype == np.float64
    assert np.array_equal(sums, z.sum(axis=0)) and np.array_equal(sums_sq, (z * z).sum(axis=0))
    assert kept is None if fan_in <= outputs else np.array_equal(kept, z)


def test_a_small_cnn_learns_digits(digits):
    net = _trained(digits, "8x8-c16k3-p-10", 8, epochs=5)
    assert train.accuracy(evaluate_binary(net, digits.test_images).classes, digits.test_labels) > 0.85


# --- folding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_bits", [8, 1])
@pytest.mark.parametrize("arch", ["8x8-c8k3-p-c6k2-16-10", "8x8-c8k3-c5k3-p-10", "8x8-c4k1-p-c8k3-10"])
def test_folded_conv_network_matches_the_float_network_everywhere(digits, input_bits, arch):
    net = _with_unusual_channels(_trained(digits, arch, input_bits), np.random.default_rng(6))
    model = fold(net, digits.shape)
    assert model.arch == arch and not model.is_dense and model.input.bits == input_bits
    assert [type(layer) for layer in model.layers][:2] in ([ConvLayer, MaxPoolLayer], [ConvLayer, ConvLayer])
    noise = np.random.default_rng(7).integers(0, 256, (200, 64), dtype=np.uint8)
    assert_same_everywhere(net, model, np.concatenate([digits.test_images, noise]))
    assert threshold_mismatches(net) == 0
    for k in net.hidden:
        bound = model.preactivation_bound(k)
        assert model.layers[k].thresholds[:2].tolist() == [-bound, bound + 1]   # the constant channels


@st.composite
def conv_networks(draw):
    """A small random convolutional :class:`model.student.BinaryNetwork` in evaluation mode with arbitrary
    parameters (latent weights, batch-norm scales of either sign or zero) and many channels whose
    threshold falls on, or within rounding of, an integer pre-activation."""
    height, width, channels = draw(st.integers(2, 9)), draw(st.integers(2, 9)), draw(st.sampled_from([1, 1, 3]))
    shape, specs = (height, width, channels), []
    for _ in range(draw(st.integers(1, 2))):
        kernel = draw(st.integers(1, min(shape[:2])))
        specs.append(Conv(draw(st.integers(1, 6)), kernel))
        shape = (shape[0] - kernel + 1, shape[1] - kernel + 1, specs[-1].channels)
        if min(shape[:2]) >= 2 and draw(st.booleans()):
            specs.append(MaxPool())
            shape = (shape[0] // 2, shape[1] // 2, shape[2])
    specs += [Dense(n) for n in draw(st.lists(st.integers(1, 8), max_size=1))] + [Dense(draw(st.integers(2, 5)))]
    input_bits = draw(st.sampled_from([8, 1]))
    max_value = draw(st.sampled_from([16, 255]))
    threshold = draw(st.integers(1, max_value)) if input_bits == 1 else None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net = init_binary_network((height, width, channels), specs, input_bits, max_value, "ste", rng, threshold)
    for k in [*net.hidden, net.output]:
        net.params[f"w{k}"] = rng.uniform(-1, 1, net.params[f"w{k}"].shape).astype(np.float32)
    for k in net.hidden:
        n, fan_in, scale = len(net.params[f"gamma{k}"]), net.fan_in(k), net.layer_scale(k)
        gamma = rng.normal(0, 1, n) * rng.choice([0, 1], n, p=[0.2, 0.8])
        beta = rng.normal(0, 1, n)
        var = rng.exponential(fan_in, n) * rng.choice([0, 1], n, p=[0.1, 0.9])
        offsets = rng.choice([0, 0, 1e-12, -1e-12, 1e-7, -1e-7, 0.5], n)
        c = rng.integers(-fan_in * scale, fan_in * scale + 1, n) + offsets
        mean = np.where(gamma != 0, c / scale + beta * np.sqrt(var + BN_EPS) / np.where(gamma != 0, gamma, 1),
                        rng.normal(0, fan_in, n))
        net.params[f"gamma{k}"], net.params[f"beta{k}"] = gamma.astype(np.float32), beta.astype(np.float32)
        net.stats[f"mean{k}"], net.stats[f"var{k}"] = mean, var
    net.params["log_alpha"] = np.array([rng.normal(0, 2)], np.float32)
    return net


@settings(max_examples=60, deadline=None)
@given(net=conv_networks(), data=st.data())
def test_folding_random_conv_networks_is_exact(net, data):
    shape = net.input_shape if net.input_shape[2] != 1 else net.input_shape[:2]
    model = fold(net, shape)
    assert model.arch == net.arch
    size = prod(net.input_shape)
    pixels = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, net.input_scale, 255]))
    images = np.array(data.draw(st.lists(st.lists(pixels, min_size=size, max_size=size), min_size=1, max_size=6)),
                      np.uint8)
    assert_same_everywhere(net, model, images)
    assert threshold_mismatches(net) == 0


# --- the command line ----------------------------------------------------------------------------

@pytest.mark.parametrize("input_bits", ["8", "1"])
def test_cli_trains_a_cnn_and_the_other_commands_read_it(tmp_path, capsys, input_bits):
    out = tmp_path / "cnn.bnn"
    assert main(["train", "--arch", "c8k3-p-16-10", "--epochs", "2", "--input-bits", input_bits,
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "8x8-c8k3-p-16-10" and report["flip"] is False
    assert report["mismatches"] == {"classes": 0, "activations": 0, "thresholds": 0}
    assert report["accuracy"]["float"] == report["accuracy"]["folded"] > 0.3   # 2 epochs: better than chance
    model = load_model(out)
    assert model.arch == "8x8-c8k3-p-16-10" and model.metadata["arch"] == "8x8-c8k3-p-16-10"
    assert main(["eval", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == report["accuracy"]["folded"]


def test_same_seed_gives_the_same_cnn_bytes(tmp_path):
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.bnn")
        assert main(["train", "--arch", "c4k3-p-10", "--epochs", "2", "--shift", "1", "--out", str(paths[-1])]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["--arch", "c8k3-p-p-10"], "a 2 x 2 max-pool must follow a convolution"),
    (["--arch", "c8k9-10"], "kernel 9 x 9 is larger than the 8 x 8 map feeding it"),
    (["--arch", "c8k3-p-10", "--flip"], "--flip: a mirror image can change the class of a digits image"),
    (["--teacher", "--teacher-arch", "c8k3-10", "--arch", "c8k3-10"], "the teacher is a fully connected network"),
])
def test_cli_conv_errors_are_one_line(tmp_path, capsys, argv, message):
    status = main(["train", "--out", str(tmp_path / "m.bnn")] + argv)
    err = capsys.readouterr().err
    assert status == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "m.bnn").exists()


def test_a_data_set_of_another_image_shape_is_refused_in_one_line(tmp_path, capsys):
    """64 pixels, but 8 x 8 images are not the 4 x 16 maps the model reads."""
    model = random_conv_model((4, 16), [Conv(4, 3), Dense(10)])
    save_model(replace(model, metadata={"dataset": "digits"}), tmp_path / "wide.bnn")
    assert main(["eval", "--model", str(tmp_path / "wide.bnn")]) == 1
    err = capsys.readouterr().err
    assert "data set 'digits' has 8 x 8 x 1 images but the model reads 4 x 16 x 1 maps" in err
    assert err.count("\n") == 1


# --- ghost batches and threads ---------------------------------------------------------------------

@pytest.mark.parametrize("count, parts, sizes", [(64, 2, [32, 32]), (10, 3, [4, 3, 3]), (2, 4, [1, 1]),
                                                 (7, 1, [7])])
def test_ghost_parts_split_a_batch_into_consecutive_near_equal_slices(count, parts, sizes):
    pieces = train.ghost_parts(count, parts)
    assert [p.stop - p.start for p in pieces] == sizes
    assert pieces[0].start == 0 and pieces[-1].stop == count
    assert all(a.stop == b.start for a, b in zip(pieces, pieces[1:]))


def test_a_ghost_batch_step_is_the_size_weighted_mean_of_its_parts(digits):
    """The step of a batch in 3 ghost parts equals the parts' passes (batch norm per part) weighted by size."""
    net = _network("8x8-c6k3-p-12-10", 8, digits.max_value, "approxsign", seed=3)
    pixels, labels = digits.train_images[:23], digits.train_labels[:23]
    loss, logits, grads = train._ghost_step(train._BINARY, net, pixels, labels, None, None, 3, None)
    parts = [binary_loss_and_grads(net, pixels[p], labels[p]) for p in train.ghost_parts(23, 3)]
    weights = [8 / 23, 8 / 23, 7 / 23]
    assert loss == pytest.approx(sum(w * part[0] for w, part in zip(weights, parts)))
    np.testing.assert_array_equal(logits, np.concatenate([part[1] for part in parts]))
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, sum(w * part[2][name] for w, part in zip(weights, parts)), rtol=1e-5,
                                   atol=1e-7)
    # one part is the plain pass: batch statistics over the whole batch
    whole = train._ghost_step(train._BINARY, net, pixels, labels, None, None, 1, None)
    assert whole[0] == binary_loss_and_grads(net, pixels, labels)[0]


def test_ghost_batches_train_the_same_network_on_any_number_of_threads(digits):
    data = train.split_validation(digits, 0.1, 5)
    trained = []
    for threads in (1, 2, 3):
        net = _network("8x8-c8k3-p-16-10", 8, digits.max_value, "approxsign", seed=5)
        settings = train.TrainSettings(2, 48, 1e-2, max_shift=1, ghost_batches=3)
        result = train.train_binary(data, net, settings, np.random.default_rng(5), progress=False, threads=threads)
        trained.append((net, result.history))
    (first, history), *others = trained
    assert history[-1].val_accuracy > 0.15   # learning (chance: 0.1)
    for net, other_history in others:
        assert other_history == history
        for name in first.params:
            np.testing.assert_array_equal(net.params[name], first.params[name])
        for name in first.stats:
            np.testing.assert_array_equal(net.stats[name], first.stats[name])


def test_evaluation_and_recalibration_in_a_thread_pool_match_one_thread(digits):
    net = _trained(digits, "8x8-c8k3-16-10", 8, epochs=1)
    pixels = digits.train_images[:300]
    alone = evaluate_binary(net, pixels)
    with ThreadPoolExecutor(2) as pool:
        pooled = evaluate_binary(net, pixels, pool)
        stats = dict(net.stats)
        recalibrate_batchnorm(net, pixels, pool)
        pooled_stats = dict(net.stats)
    recalibrate_batchnorm(net, pixels)
    np.testing.assert_array_equal(pooled.scores, alone.scores)
    for a, b in zip(pooled.activations, alone.activations, strict=True):
        np.testing.assert_array_equal(a, b)
    assert stats.keys() == pooled_stats.keys()
    for name in net.stats:
        np.testing.assert_array_equal(pooled_stats[name], net.stats[name])


@pytest.mark.parametrize("ghost, message", [(0, "ghost batches must lie in 1..64 (the batch size), not 0"),
                                            (65, "not 65")])
def test_ghost_batches_outside_the_batch_are_refused(ghost, message):
    with pytest.raises(TrainingError, match=re.escape(message)):
        train.TrainSettings(1, 64, 1e-3, ghost_batches=ghost).check()


@pytest.mark.parametrize("argv, message", [(["--ghost-batches", "0"], "ghost batches must lie in 1..64"),
                                           (["--threads", "0"], "--threads must be at least 1, not 0")])
def test_cli_refuses_bad_ghost_batches_and_threads(tmp_path, capsys, argv, message):
    status = main(["train", "--arch", "c4k3-10", "--epochs", "1", "--out", str(tmp_path / "m.bnn")] + argv)
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("bnn train: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "m.bnn").exists()


def test_cli_records_ghost_batches_in_the_model_file(tmp_path, capsys):
    out = tmp_path / "g.bnn"
    assert main(["train", "--arch", "c4k3-p-10", "--epochs", "1", "--ghost-batches", "2", "--threads", "2",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mismatches"] == {"classes": 0, "activations": 0, "thresholds": 0}
    assert load_model(out).metadata["ghost_batches"] == 2


@pytest.mark.parametrize("kept_chunks", [0, 2, None])
def test_recalibration_keeping_preactivations_gives_the_same_statistics(digits, monkeypatch, kept_chunks):
    """Pre-activations kept between recalibration's two passes (all chunks, some, none) change nothing."""
    net = _trained(digits, "8x8-c6k3-p-c12k2-10-10", 8, epochs=1)   # fan-ins 9, 24, 12 > outputs: z kept
    pixels = digits.train_images[:200]
    with monkeypatch.context() as patch:   # the reference: every product computed twice, one chunk
        patch.setattr(student, "_KEPT_PREACTIVATION_BYTES", 0)
        recalibrate_batchnorm(net, pixels)
    expected = dict(net.stats)
    monkeypatch.setattr(student, "_CHUNK_VALUES", 6 * 6 * 9 * 6)   # the first layer's rows of 6 images a chunk
    assert net.images_per_chunk == 6
    if kept_chunks is not None:   # kept_chunks of the first layer's (6 images x 6 x 6 x 6 int16), more of the others
        monkeypatch.setattr(student, "_KEPT_PREACTIVATION_BYTES", kept_chunks * 6 * 6 * 6 * 6 * 2)
    net.stats = {name: np.zeros_like(value) for name, value in expected.items()}
    recalibrate_batchnorm(net, pixels)
    for name, value in expected.items():
        np.testing.assert_array_equal(net.stats[name], value)
