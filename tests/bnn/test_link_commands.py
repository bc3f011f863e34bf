"""`bnn serve-sim`, `bnn stream` and `bnn load` together, as a user runs them: a simulated iCEBreaker
in a process of its own, the host commands talking to it over TCP with pyserial."""

import json
import signal

import pytest

from bnn.cli import main
from model.modelfile import save_model
from model.random_models import random_model
from tests.support import serve_sim


def _model(tmp_path, name, seed):
    model = random_model([64, 12, 10], input_bits=8, seed=seed)
    model.metadata["dataset"] = "digits"
    path = tmp_path / name
    save_model(model, path)
    return str(path)


def _command_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def served(tmp_path):
    """``bnn serve-sim`` of the first model on a free port; yields ``(url, process)``."""
    first = _model(tmp_path, "first.bnn", seed=6)
    with serve_sim("--board", "icebreaker", "--model", first, "--pe", "2", "--simd", "8",
                   env={"BNN_CACHE_DIR": str(tmp_path / "cache")}) as served_board:
        yield served_board


@pytest.mark.needs_cxx
def test_a_simulated_board_streams_two_models_without_a_rebuild(tmp_path, capsys, served):
    url, process = served
    first, second = str(tmp_path / "first.bnn"), _model(tmp_path, "second.bnn", seed=7)
    for path, load_first in ((first, False), (second, True)):
        if load_first:
            loaded = _command_json(capsys, "load", "--port", url, "--model", path, "--json")
            assert loaded["board"]["model_loaded"] and loaded["retries"] == 0
        report = _command_json(capsys, "stream", "--port", url, "--model", path, "--json")
        evaluated = _command_json(capsys, "eval", "--model", path, "--json")
        assert report["loaded"] is None   # the board held it: the bitstream's model, then the loaded one
        assert report["frames"] == evaluated["images"] == 450
        assert report["mismatches"] == 0 and report["failed"] == 0
        assert report["accuracy"] == evaluated["accuracy"]
        assert report["counters"]["delta"]["frames"] == 450
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 130 and "stopped: 3 clients" in errors   # stream, load, stream
