import dataclasses
import json
import socket
import time

import numpy as np
import pytest

from bnn.cli import main
from layout.protocol import LoadTarget, Memory
from model.datasets import load_dataset
from model.golden import infer
from model.modelfile import save_model
from model.random_models import random_model

from .fake_board import FakeBoard, Faults, GarbageBoard, board_identity, serve, serve_busy


@pytest.fixture
def model_file(model8, tmp_path):
    path = tmp_path / "m.bnn"
    save_model(model8, path)
    return str(path)


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_stream_loads_the_model_then_matches_the_golden_model(model8, model_file, capsys):
    fake = FakeBoard(board_identity(model8), [model8], latency=0.001)
    with serve(fake) as url:
        argv = ["stream", "--port", url, "--model", model_file, "--count", "40", "--timeout", "1", "--json"]
        assert main(argv) == 0
        first = _json(capsys)
        assert main(argv + ["--frames-per-request", "3"]) == 0
        second = _json(capsys)
    data = load_dataset("digits")
    expected = np.mean(infer(model8, data.test_images[:40]).classes == data.test_labels[:40])
    assert first["loaded"]["bytes"] > 0 and second["loaded"] is None    # the second run finds it loaded
    for report in (first, second):
        assert report["frames"] == report["answered"] == 40 and report["accuracy"] == expected
        assert report["mismatches"] == 0 and report["failed"] == 0
        assert report["counters"]["delta"]["frames"] == 40
        assert report["latency_ms"]["p50"] > 0 and 0 < report["link_fraction"]
        assert report["board"]["model_loaded"]
    assert second["frames_per_request"] == 3


def test_stream_summary_and_load(model8, model_file, capsys):
    fake = FakeBoard(board_identity(model8), [model8])
    with serve(fake) as url:
        assert main(["load", "--port", url, "--model", model_file, "--timeout", "1", "--json"]) == 0
        report = _json(capsys)
        assert report["bytes"] > 0 and report["board"]["model_id"] == report["model_id"]
        assert main(["stream", "--port", url, "--model", model_file, "--count", "10", "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "engine P x S = 4 x 32, 8-bit input, 36.00 MHz, 3000000 baud" in out
    assert "0 mismatches with the golden model, 0 failed frames" in out and "latency p50" in out
    assert "loaded" not in out


def test_failed_frames_exit_1(model8, model_file, capsys):
    fake = FakeBoard(board_identity(model8), [model8], loaded=model8,
                     faults=Faults({n: "flip" for n in (2, 3, 4)}))   # the INFER requests
    with serve(fake) as url:
        assert main(["stream", "--port", url, "--model", model_file, "--count", "3", "--timeout", "0.1",
                     "--retries", "0", "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["failed"] == 3 and report["mismatches"] == 0
    assert "3 failed frames" in captured.err


def _free_port():
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_errors_are_one_line(model8, model_file, tmp_path, capsys):
    wide = random_model([64, 300, 10], input_bits=8)
    wide.metadata["dataset"] = "digits"
    save_model(wide, tmp_path / "wide.bnn")
    binary = random_model([64, 12, 10], input_bits=1, input_threshold=8)
    binary.metadata["dataset"] = "digits"
    save_model(binary, tmp_path / "binary.bnn")
    refused = f"socket://127.0.0.1:{_free_port()}"
    with serve(FakeBoard(board_identity(model8), silent=True)) as silent, \
            serve(FakeBoard(board_identity(model8, spare=1), [model8])) as small:
        cases = [
            ("stream", ["--port", "foo://x", "--model", model_file], "could not open foo://x: invalid URL"),
            ("stream", ["--port", refused, "--model", model_file], f"could not open {refused}: "),
            ("stream", ["--port", silent, "--model", model_file, "--timeout", "0.2"],
             f"no answer from {silent} within 0.2 s: is the board / bnn serve-sim running?"),
            ("load", ["--port", small, "--model", str(tmp_path / "wide.bnn"), "--timeout", "1"],
             "the model needs"),
            ("stream", ["--port", small, "--model", str(tmp_path / "binary.bnn"), "--timeout", "1"],
             "takes 1-bit input but the board's engine was built for 8-bit input"),
            ("load", ["--port", small, "--model", str(tmp_path / "nope.bnn")], "no such model file"),
        ]
        for command, argv, message in cases:
            assert main([command] + argv) == 1, argv
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1 and err.startswith(f"bnn {command}: error:"), err


@pytest.mark.parametrize("argv", [
    ["stream", "--port", "socket://127.0.0.1:1"],                                    # --model missing
    ["stream", "--port", "x", "--model", "m.bnn", "--frames-per-request", "17"],
    ["load", "--port", "x", "--model", "m.bnn", "--timeout", "0"],
    ["load", "--model", "m.bnn"],                                                     # --port missing
])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("bnn ")


def test_untrusted_ports_and_boards_are_one_line(model8, model_file, tmp_path, capsys):
    """Issue 20: a bad port, a board whose identity is out of range, a busy simulated board."""
    zero_bit = board_identity(model8)
    memories = list(zero_bit.memories)
    memories[LoadTarget.WEIGHTS] = Memory(memories[LoadTarget.WEIGHTS].depth, 0)
    zero_bit = dataclasses.replace(zero_bit, memories=tuple(memories))
    with serve(FakeBoard(zero_bit)) as broken, serve_busy() as busy:
        cases = [
            ("stream", ["--port", "socket://127.0.0.1:99999"],
             "could not open socket://127.0.0.1:99999: the port '99999' is not a number in 1..65535; pass the "
             "address bnn serve-sim prints (listening on HOST:PORT) as socket://HOST:PORT"),
            ("stream", ["--port", "socket://127.0.0.1"], "could not open socket://127.0.0.1: no :PORT; pass the"),
            ("load", ["--port", str(tmp_path / "ttyUSB9")],
             f"could not open {tmp_path / 'ttyUSB9'}: No such file or directory; list the serial ports"),
            ("stream", ["--port", broken, "--timeout", "1"],
             f"the identity of {broken} says a 0-bit WEIGHTS word (its engine has 128-bit ones): not a board "
             f"this host can use"),
            ("load", ["--port", broken, "--timeout", "1"], f"the identity of {broken} says a 0-bit WEIGHTS word"),
            ("stream", ["--port", busy], f"the simulated board at {busy} is serving another client"),
        ]
        for command, argv, message in cases:
            assert main([command, "--model", model_file] + argv) == 1, argv
            err = capsys.readouterr().err
            assert err.startswith(f"bnn {command}: error: {message}") and err.count("\n") == 1, err
            assert "Errno" not in err and "debug|info" not in err and "NoneType" not in err


def test_a_peer_answering_garbage_is_reported_at_once_then_given_up_on(model8, model_file, capsys):
    with serve(GarbageBoard(board_identity(model8))) as url:
        start = time.monotonic()
        assert main(["stream", "--port", url, "--model", model_file, "--timeout", "0.5"]) == 1
        assert time.monotonic() - start < 5
    err = capsys.readouterr().err.splitlines()
    assert err == [f"bnn stream: no valid answer from {url} yet (heard 20 bytes that are not a frame); retrying, "
                   f"up to ~1 s more",
                   f"bnn stream: error: IDENTIFY to {url} failed after 2 attempts: heard 40 bytes and not one frame "
                   f"(not a bnn serve-sim?)"]
