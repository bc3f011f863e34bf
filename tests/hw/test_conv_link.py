"""A conv engine on the serial link: its identity says so, the host lays models out for it (conv and
fully connected ones, as windows), loads them over the line and gets the golden model's classes; an
engine for fully connected networks refuses a conv model in one line."""

import pytest

from bnn.cmd_load import board_summary
from host.board import compile_for_board
from host.link import Link
from host.payloads import input_frame
from host.stream import ensure_model
from hw.link import LinkCore
from layout.compiler import compile_model
from layout.images import model_id
from layout.params import CAPACITY_KEYS, CompileError
from model.datasets import load_dataset
from model.layers import Conv, Dense, MaxPool
from model.random_models import random_conv_model, random_model
from sim.serve import serving_in_background

from tests.hw.link_support import CLOCK_HZ, BAUD, FOLDING, build_link_board, golden_classes


def _conv_model(specs, seed):
    return random_conv_model((8, 8), specs, input_bits=8, seed=seed)


BUILT = _conv_model([Conv(4, 3), MaxPool(), Dense(10)], seed=1)          # the bitstream's model
OTHER_CONV = _conv_model([Conv(3, 3), MaxPool(), Dense(10)], seed=2)     # 3 channels: one pad channel stored
DENSE = random_model([64, 4, 10], input_bits=8, seed=3)


@pytest.fixture(scope="module")
def conv_board(tmp_path_factory):
    """A LinkCore built for :data:`BUILT`, sized for the other two models too."""
    needs = [compile_model(m, **FOLDING, conv=True).params for m in (BUILT, OTHER_CONV, DENSE)]
    capacity = {key: max(getattr(p, key) for p in needs) for key in CAPACITY_KEYS}
    return build_link_board(BUILT, tmp_path_factory.mktemp("cxxrtl-cache"), capacity=capacity)


def _streamed(link, model, images):
    answers = dict(link.infer(input_frame(model, image) for image in images))
    return bytes(answers[k] for k in range(len(images)))


@pytest.mark.needs_cxx
def test_a_conv_board_runs_conv_and_dense_models_loaded_over_the_line(conv_board):
    images = load_dataset("digits").test_images[:12]
    with conv_board.simulator() as simulator, \
            serving_in_background(simulator, idle_cycles=conv_board.simulated.idle_cycles) as (server, _):
        with Link.open(f"socket://{server.address_text}", baud=BAUD, timeout=30) as link:
            identity = link.identify()
            assert identity == conv_board.identity and identity.conv == 1
            rows = conv_board.compiled.params.gather_rows
            assert rows == 3   # the 3 window rows of 3 pixels in one slice
            assert f"with convolutions (slices from up to {rows} window rows)" in board_summary("board", identity)
            assert _streamed(link, BUILT, images) == golden_classes(BUILT, images)
            for model in (OTHER_CONV, DENSE, BUILT):
                identity, compiled, loaded = ensure_model(link, model)
                assert loaded is not None and identity.model_id == model_id(compiled)
                assert compiled.params == conv_board.compiled.params
                assert _streamed(link, model, images) == golden_classes(model, images)


def test_a_board_for_fully_connected_networks_refuses_a_conv_model():
    dense_board = LinkCore(compile_model(DENSE, **FOLDING), clock_hz=CLOCK_HZ, baud=BAUD)
    assert dense_board.identity.conv == 0
    with pytest.raises(CompileError, match=r"^8x8-c4k3-p-10 has convolutions or pools, but the engine runs "
                                           r"fully connected networks only$"):
        compile_for_board(BUILT, dense_board.identity)

