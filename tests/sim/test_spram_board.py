"""A simulated iCEBreaker whose weights live in SPRAM: it starts with no model, the host loads one over
the serial line, and the answers are the golden model's."""

import numpy as np
import pytest

from host.errors import LinkError
from host.link import Link
from host.payloads import input_frame
from host.stream import ensure_model
from hw.boards import BOARDS
from model.golden import infer
from model.random_models import random_images, random_model
from sim.board import simulated_board
from sim.cxxrtl import StreamSimulator
from sim.serve import serving_in_background


@pytest.mark.parametrize("input_bits", [1, 8])
@pytest.mark.needs_cxx
def test_a_board_with_spram_weights_runs_a_model_loaded_over_the_line(tmp_path, monkeypatch, input_bits):
    monkeypatch.setenv("BNN_CACHE_DIR", str(tmp_path / "cache"))
    model = random_model([70, 24, 10], input_bits=input_bits, seed=input_bits, input_threshold=100)
    simulated = simulated_board(model, BOARDS["icebreaker"], pe=2, simd=16, weights="spram")
    assert simulated.weights_in_spram and simulated.core.identity.weights_in_spram
    images = random_images(12, 70, seed=5)
    with StreamSimulator(simulated.compile()) as simulator, \
            serving_in_background(simulator, idle_cycles=simulated.idle_cycles,
                                  quiet_cycles=simulated.quiet_cycles) as (server, _):
        with Link.open(f"socket://{server.address_text}", baud=simulated.baud, timeout=30) as link:
            identity = link.identify()
            assert not identity.model_loaded and identity.model_id == bytes(16)
            with pytest.raises(LinkError, match="--model"):   # NO_MODEL, and no reload offered
                list(link.infer([input_frame(model, images[0])]))
            identity, _, loaded = ensure_model(link, model)
            assert loaded is not None and identity.model_loaded
            answers = dict(link.infer([input_frame(model, image) for image in images]))
    assert [answers[i] for i in range(len(images))] == infer(model, images).classes.tolist()
    np.testing.assert_array_equal(sorted(answers), np.arange(len(images)))
