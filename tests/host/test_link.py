import dataclasses
import time

import numpy as np
import pytest

import host.link
from host.board import compile_for_board
from host.errors import LinkError, NoAnswerError
from host.identity import IdentityError
from host.link import Link, counters_delta
from host.payloads import input_frame, load_requests
from host.port import BusyError, PortError, split_address
from layout.compiler import compile_model
from layout.images import memory_images, model_id
from layout.params import CompileError
from layout.protocol import (FRAMES_IN_FLIGHT, LOAD_HEADER_BYTES, MAX_LOAD_DATA, MODEL_ID_BYTES, Command, Frame,
                             FrameDecoder, LoadTarget, Memory, Status, crc16, encode_frame, frame_bytes, word_bytes)
from model.bits import pack_bits
from model.golden import infer
from model.random_models import random_images, random_model

from .fake_board import FakeBoard, Faults, GarbageBoard, board_identity, serve_busy

TIMEOUT = 0.1     # seconds: the fake board answers at once (or after its latency)


def _link(fake, **kwargs):
    return Link(fake, timeout=kwargs.pop("timeout", TIMEOUT), retries=kwargs.pop("retries", 3), **kwargs)


def _stream(link, model, images, **kwargs):
    """The answers of ``link.infer`` in frame order (None: failed), checking each index once."""
    answers = {}
    for index, answer in link.infer((input_frame(model, image) for image in images), **kwargs):
        assert index not in answers
        answers[index] = answer
    assert sorted(answers) == list(range(len(images)))
    return [answers[k] for k in range(len(images))]


# -- the protocol

def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1


def test_frames_round_trip_through_noise():
    frames = [Frame(Command.INFER, 7, bytes(range(40))), Frame(Status.OK, 255, b""), Frame(Status.BUSY, 0, b"\xa5")]
    stream = b"\x00\xa5\x13" + b"".join(encode_frame(f.code, f.seq, f.payload) for f in frames)
    corrupt = bytearray(encode_frame(Command.STATUS, 9, b"xy"))
    corrupt[-1] ^= 0x10
    decoder = FrameDecoder(max_length=64)
    decoded = []
    for k in range(0, len(stream), 5):                  # split across reads
        decoded += decoder.feed(stream[k:k + 5])
    decoded += decoder.feed(bytes(corrupt) + encode_frame(Status.OK, 1, b"z"))
    assert decoded == frames + [Frame(Status.OK, 1, b"z")]
    assert decoder.bad_frames >= 1


def test_input_frame_binarizes_as_the_golden_model(model1, model8):
    pixels = np.array([0, 7, 8, 9, 16] + [3] * 59, dtype=np.uint8)
    frame = input_frame(model1, pixels)
    assert len(frame) == frame_bytes(1, 64) == 8
    assert frame == pack_bits(pixels >= model1.input.threshold).tobytes()
    assert frame[0] == 0b11100
    assert input_frame(model8, pixels) == pixels.tobytes()


# -- identify, status, reset

def test_identify_and_status_decode(model8):
    identity = board_identity(model8)
    fake = FakeBoard(identity, [model8])
    link = _link(fake)
    assert link.identify() == identity
    counters = link.status()
    assert counters["frames"] == 0 and list(counters)[0] == "frames"
    link.reset()
    assert [r[0] for r in fake.requests] == [Command.IDENTIFY, Command.STATUS, Command.RESET]
    delta = counters_delta({"frames": 0xFFFFFFFF, "bad_crc": 3}, {"frames": 2, "bad_crc": 5})
    assert delta == {"frames": 3, "bad_crc": 2}


def test_identify_retries_an_error_and_a_lost_answer(model8):
    fake = FakeBoard(board_identity(model8), faults=Faults({0: "BAD_CRC", 1: "flip", 2: "garbage"}))
    link = _link(fake)
    assert link.identify().pe == 4
    assert link.stats.retries == 2 and link.stats.errors == {"BAD_CRC": 1} and link.stats.timeouts == 1


def test_bad_identity_is_a_link_error(model8):
    fake = FakeBoard(board_identity(model8), faults=Faults({0: "short"}))
    with pytest.raises(LinkError, match="bad identity from the board: an identity is"):
        _link(fake).identify()


def test_silent_board_fails_within_the_timeout(model8):
    link = _link(FakeBoard(board_identity(model8), silent=True), timeout=0.2, name="socket://x")
    start = time.monotonic()
    message = r"no answer from socket://x within 0.2 s: is the board / bnn serve-sim running\?"
    with pytest.raises(NoAnswerError, match=message):
        link.identify()
    assert time.monotonic() - start < 0.5


def test_requests_give_up_after_the_retries(model8):
    fake = FakeBoard(board_identity(model8), faults=Faults(rate=1.0, kinds=("BUSY",)))
    with pytest.raises(LinkError, match="RESET to the board failed after 3 attempts \\(last: BUSY\\)") as failed:
        _link(fake, retries=2).reset()
    assert not isinstance(failed.value, NoAnswerError)       # the board answers: worth asking again


def test_a_board_that_stops_answering_is_told_apart(model8):
    """Once the board has answered, a request whose every attempt goes unanswered raises NoAnswerError
    (bnn check then skips the requests after it); a peer that closes the connection, ConnectionLostError."""
    fake = FakeBoard(board_identity(model8))
    link = _link(fake, timeout=0.1, retries=1)
    link.identify()
    fake.silent = True
    with pytest.raises(NoAnswerError, match=r"^STATUS to the board failed after 2 attempts \(last: no answer\)$"):
        link.status()


# -- loads

def test_load_requests_split_into_whole_words_model_id_last():
    memories = (Memory(400, 100), Memory(10, 24), Memory(4, 40), Memory(1, 32), Memory(1, 128))
    images = {LoadTarget.MODEL_ID: [0x1234], LoadTarget.WEIGHTS: list(range(1, 301)),
              LoadTarget.STARTS: [5, 6, 7], LoadTarget.NETWORK: [9]}
    requests = load_requests(images, memories)
    assert [r[0] for r in requests] == [LoadTarget.WEIGHTS] * 4 + [LoadTarget.STARTS, LoadTarget.NETWORK,
                                                                  LoadTarget.MODEL_ID]
    size = word_bytes(100)
    per_request = MAX_LOAD_DATA // size
    words, next_address = [], 0
    for request in requests[:4]:
        address = int.from_bytes(request[1:LOAD_HEADER_BYTES], "little")
        data = request[LOAD_HEADER_BYTES:]
        assert address == next_address and len(data) % size == 0 and len(data) <= MAX_LOAD_DATA
        words += [int.from_bytes(data[k:k + size], "little") for k in range(0, len(data), size)]
        next_address += len(data) // size
    assert words == images[LoadTarget.WEIGHTS]
    assert len(requests[0]) - LOAD_HEADER_BYTES == per_request * size
    assert requests[-1] == bytes([LoadTarget.MODEL_ID, 0, 0]) + (0x1234).to_bytes(MODEL_ID_BYTES, "little")
    with pytest.raises(LinkError, match="needs 401 words of WEIGHTS but the board has 400"):
        load_requests({LoadTarget.WEIGHTS: [0] * 401}, memories)


def test_load_writes_the_images_and_the_board_reports_the_model(model8):
    identity = board_identity(model8)
    fake = FakeBoard(identity, [model8], faults=Faults({2: "BUSY", 3: "truncate"}))
    link = _link(fake)
    compiled = compile_for_board(model8, identity)
    progress = []
    loaded = link.load(compiled, identity, progress=lambda done, total: progress.append((done, total)))
    assert loaded.model_loaded and loaded.model_id == model_id(compiled)
    for target, words in memory_images(compiled).items():
        assert fake.memories[target][:len(words)] == words
    assert fake.loads[-1][0] == LoadTarget.MODEL_ID
    assert progress[-1][0] == progress[-1][1]
    answers = _stream(link, model8, random_images(5, 64, seed=2))
    assert answers == list(infer(model8, random_images(5, 64, seed=2)).classes)


def _load_plan(model, identity):
    compiled = compile_for_board(model, identity)
    return compiled, load_requests(memory_images(compiled), identity.memories)


def test_a_failed_load_request_restarts_the_whole_load(model8):
    identity = board_identity(model8)
    compiled, requests = _load_plan(model8, identity)
    victim = next(k for k, r in enumerate(requests) if r[0] == LoadTarget.STARTS)
    assert victim > 0 and len(requests[victim]) - LOAD_HEADER_BYTES >= word_bytes(identity.memories[0].width)
    # the first STARTS request reaches the board as a load of the weights (and is answered BAD_CRC),
    # then the request after it gets no answer
    fake = FakeBoard(identity, [model8], faults=Faults({victim: "retarget", victim + 1 + victim + 1: "drop"}))
    link = _link(fake)
    progress = []
    loaded = link.load(compiled, identity, progress=lambda done, total: progress.append(done))
    assert loaded.model_loaded and loaded.model_id == model_id(compiled)
    # sent: up to the victim, from the first up to the one dropped, then the whole load, then IDENTIFY
    sent = [payload for command, _, payload in fake.requests if command == Command.LOAD]
    assert sent == requests[:victim + 1] + requests[:victim + 2] + requests
    assert fake.requests[-1][0] == Command.IDENTIFY
    # the weights the corrupted request overwrote were written again
    for target, words in memory_images(compiled).items():
        assert fake.memories[target][:len(words)] == words
    stats = link.stats
    assert stats.load_restarts == 2 and stats.retries == 2 and stats.errors == {"BAD_CRC": 1}
    assert stats.timeouts == 1 and stats.as_dict()["load_restarts"] == 2
    assert progress.count(len(requests[0]) - LOAD_HEADER_BYTES) == 3 and progress[-1] == sum(
        len(r) - LOAD_HEADER_BYTES for r in requests)
    images = random_images(5, 64, seed=2)
    assert _stream(link, model8, images) == list(infer(model8, images).classes)


def test_a_load_gives_up_after_retries_restarts(model8):
    identity = board_identity(model8)
    compiled, requests = _load_plan(model8, identity)
    last = len(requests) - 1          # the MODEL_ID request fails every time
    fake = FakeBoard(identity, [model8], faults=Faults({last + k * len(requests): "BUSY" for k in range(3)}))
    with pytest.raises(LinkError, match=r"loading a model into the board failed after 3 attempts \(last: LOAD "
                                        r"of MODEL_ID at address 0: BUSY\)"):
        _link(fake, retries=2).load(compiled, identity)
    assert [payload for _, _, payload in fake.requests] == requests * 3
    assert not fake.model_loaded


def test_compile_for_board_refuses_what_does_not_fit(model8, model1):
    identity = board_identity(model8, spare=1)
    with pytest.raises(CompileError, match="takes 1-bit input but the board's engine was built for 8-bit"):
        compile_for_board(model1, identity)
    wider = random_model([64, 200, 10], input_bits=8)
    with pytest.raises(CompileError, match="the model needs .* but the engine has"):
        compile_for_board(wider, identity)


# -- infer

@pytest.mark.parametrize("frames_per_request", [1, 2, 3])
def test_pipelining_keeps_the_window(model8, frames_per_request):
    images = random_images(40, 64, seed=3)
    fake = FakeBoard(board_identity(model8), [model8], loaded=model8, latency=0.002)
    link = _link(fake)
    answers = _stream(link, model8, images, frames_per_request=frames_per_request)
    assert answers == list(infer(model8, images).classes)
    assert fake.max_in_flight == max(FRAMES_IN_FLIGHT, frames_per_request)
    assert link.stats.retries == 0 and len(link.stats.latencies) == 40


def test_one_bit_model_answers_match_the_golden_model(model1):
    images = random_images(30, 64, seed=4) // 16     # digits-like pixels 0..15 around the threshold
    fake = FakeBoard(board_identity(model1), [model1], loaded=model1)
    assert _stream(_link(fake), model1, images) == list(infer(model1, images).classes)


@pytest.mark.parametrize("frames_per_request", [1, 2])
def test_retries_recover_from_faults_with_no_wrong_answer(model8, frames_per_request):
    images = random_images(150, 64, seed=5)
    kinds = ("drop", "truncate", "flip", "garbage", "delay", "short", "BAD_CRC", "BUSY", "TIMEOUT")
    fake = FakeBoard(board_identity(model8), [model8], loaded=model8,
                     faults=Faults(rate=0.25, kinds=kinds, delay=0.15, seed=1))
    link = _link(fake, retries=8)
    answers = _stream(link, model8, images, frames_per_request=frames_per_request)
    assert answers == list(infer(model8, images).classes)
    stats = link.stats
    assert stats.retries > 10 and stats.timeouts and stats.ignored and stats.malformed
    assert {"BAD_CRC", "BUSY", "TIMEOUT"} <= set(stats.errors) and stats.failed == 0
    # Two requests in flight: a request's answer lost is found out when the next one is answered.
    assert stats.lost > 0 if frames_per_request == 1 else stats.lost == 0


def test_frames_are_reported_failed_never_guessed(model8):
    images = random_images(6, 64, seed=6)
    plan = {n: "flip" for n in range(2, 40)}       # from the third request on, every answer is corrupt
    fake = FakeBoard(board_identity(model8), [model8], loaded=model8, faults=Faults(plan))
    link = _link(fake, retries=1, timeout=0.05)
    answers = _stream(link, model8, images)
    expected = list(infer(model8, images).classes)
    assert answers[:2] == expected[:2] and answers[2:] == [None] * 4
    assert link.stats.failed == 4


def test_no_model_is_a_link_error_or_a_reload(model8):
    identity = board_identity(model8)
    images = random_images(8, 64, seed=7)
    fake = FakeBoard(identity, [model8])
    link = _link(fake)
    with pytest.raises(LinkError, match="holds no model: pass --model FILE"):
        _stream(link, model8, images)
    compiled = compile_for_board(model8, identity)
    answers = _stream(link, model8, images, reload=lambda: link.load(compiled, identity))
    assert answers == list(infer(model8, images).classes) and link.stats.reloads == 1


class _LosesItsModel(Faults):
    """Answers NO_MODEL to the INFER requests ``lost`` (counted from 0 among the INFER requests)."""

    def __init__(self, fake, lost):
        super().__init__()
        self.fake, self.lost, self.infers = fake, set(lost), 0

    def pick(self, number):
        if self.fake.requests[number][0] != Command.INFER:
            return None
        self.infers += 1
        return "NO_MODEL" if self.infers - 1 in self.lost else None


def test_only_reloads_in_a_row_count_toward_the_limit(model8):
    identity = board_identity(model8)
    compiled = compile_for_board(model8, identity)
    images = random_images(12, 64, seed=8)
    fake = FakeBoard(identity, [model8], loaded=model8)
    # the model is lost 4 times, more than retries = 1, but a frame is answered after every reload
    fake.faults = _LosesItsModel(fake, {0, 3, 6, 9})
    link = _link(fake, retries=1)
    answers = _stream(link, model8, images, reload=lambda: link.load(compiled, identity))
    assert answers == list(infer(model8, images).classes)
    assert link.stats.reloads == 4 and link.stats.failed == 0
    # the count starts again at each answer, over the link's life
    fake.faults = _LosesItsModel(fake, {0})
    answers = _stream(link, model8, images[:2], reload=lambda: link.load(compiled, identity))
    assert answers == list(infer(model8, images[:2]).classes) and link.stats.reloads == 5
    # twice in a row, nothing answered after the first reload: more than retries = 1
    fake.faults = _LosesItsModel(fake, {0, 1, 2})
    with pytest.raises(LinkError, match=r"the board lost its model 2 times in a row"):
        _stream(link, model8, images[:1], reload=lambda: link.load(compiled, identity))
    assert link.stats.reloads == 7


def test_a_board_that_keeps_losing_its_model_is_a_link_error(model8):
    identity = board_identity(model8)
    fake = FakeBoard(identity, [model8], loaded=model8)
    fake.faults = _LosesItsModel(fake, range(100))
    link = _link(fake, retries=2)
    reloads = []
    with pytest.raises(LinkError, match=r"the board lost its model 3 times in a row \(no frame answered"):
        _stream(link, model8, random_images(4, 64, seed=9), reload=lambda: reloads.append(1))
    assert len(reloads) == 2 and link.stats.reloads == 3


def test_open_errors_are_link_errors():
    with pytest.raises(LinkError, match="could not open socket://127.0.0.1:1: .*refused"):
        Link.open("socket://127.0.0.1:1", baud=115200, timeout=0.1)
    with pytest.raises(LinkError, match="could not open foo://x: invalid URL"):
        Link.open("foo://x", baud=115200)


def test_compile_for_board_lays_out_as_the_gateware_was_built(model8, model1):
    hw_link = pytest.importorskip("hw.link")
    for model in (model8, model1):
        built = compile_model(model, pe=4, simd=32, tree_stages=1)
        identity = hw_link.board_identity(built, clock_hz=36_000_000, baud=3_000_000, timeout_cycles=36_000,
                                          weights_in_spram=False, model_loaded=True)
        compiled = compile_for_board(model, identity)
        assert compiled == built and model_id(compiled) == identity.model_id
        requests = load_requests(memory_images(compiled), identity.memories)
        assert requests[-1] == bytes([LoadTarget.MODEL_ID, 0, 0]) + identity.model_id


# -- untrusted input (issue 20): ports, identities, peers

def test_addresses_are_host_colon_port():
    assert split_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert split_address("[::1]:5000") == ("::1", 5000)
    assert split_address("localhost:65535", lowest=1) == ("localhost", 65535)


@pytest.mark.parametrize("url, reason", [
    ("socket://127.0.0.1:99999", "the port '99999' is not a number in 1..65535"),
    ("socket://127.0.0.1:0", "the port '0' is not a number in 1..65535"),
    ("socket://127.0.0.1:\u00b2", "the port '\u00b2' is not a number in 1..65535"),   # a digit to str.isdigit
    ("socket://127.0.0.1:5000?logging=debug", "the port '5000?logging=debug' is not a number in 1..65535"),
    ("socket://127.0.0.1", "no :PORT"),
    ("socket://", "no :PORT"),
    ("socket://:5000", "no host before :PORT"),
    ("socket://::1:5000", "an IPv6 host goes in brackets ([::1]:5000)"),
])
def test_a_socket_url_is_checked_before_pyserial_reads_it(url, reason):
    with pytest.raises(PortError) as error:
        Link.open(url, baud=115200)
    assert str(error.value) == (f"could not open {url}: {reason}; pass the address bnn serve-sim prints "
                                f"(listening on HOST:PORT) as socket://HOST:PORT")
    assert error.value.reason == reason


def test_an_open_error_says_why_once_and_what_to_try(tmp_path):
    device = tmp_path / "ttyUSB9"
    with pytest.raises(PortError) as error:
        Link.open(str(device), baud=115200)
    assert str(error.value).startswith(f"could not open {device}: No such file or directory; list the serial "
                                       f"ports (python -m serial.tools.list_ports -v")
    assert "Errno" not in str(error.value)
    with pytest.raises(PortError, match=r"^could not open socket://127.0.0.1:1: Connection refused; start the "
                                        r"simulated board first \(bnn serve-sim"):
        Link.open("socket://127.0.0.1:1", baud=115200)


def _memory(identity, target, **sizes):
    memories = list(identity.memories)
    memories[target] = dataclasses.replace(memories[target], **sizes)
    return tuple(memories)


# (the fields to change, or a function of the identity giving them; the claim the host refuses)
BAD_IDENTITIES = [
    ({"clock_hz": 0}, "clock_hz 0"),
    ({"baud": 0}, "baud 0"),
    ({"timeout_cycles": 0}, "timeout_cycles 0"),
    ({"weights_in_spram": 2}, "weights_in_spram 2 (0 or 1)"),
    ({"conv": 2}, "conv 2 (0 or 1)"),
    ({"input_bits": 4}, "input_bits 4 (1 or 8)"),
    ({"gather_rows": 2}, "gather_rows 2 in an engine without conv (1)"),
    ({"conv": 1, "simd": 48}, "simd 48 in a conv engine (a power of two)"),
    ({"pe": 0}, "an engine that cannot be built (pe must be a positive integer, not 0)"),
    ({"simd": 0}, "an engine that cannot be built (simd must be a positive integer, not 0)"),
    ({"pe": 3}, "an engine that cannot be built (simd (32) must be a multiple of pe (3))"),
    ({"pe": 64, "simd": 128}, "an engine that cannot be built (P x S = 64 x 128 = 8192 lanes; at most 4096)"),
    ({"pixels_per_beat": 0}, "an engine that cannot be built (pixels_per_beat must be a positive integer, not 0)"),
    ({"pixels_per_beat": 3}, "an engine that cannot be built (pixels_per_beat (3) must divide simd (32))"),
    ({"tree_stages": 17}, "an engine that cannot be built (tree_stages must be an integer in 0..16, not 17)"),
    *[({name: 0}, f"an engine that cannot be built (capacity {name} must be an integer in 1..1048576, not 0)")
      for name in ("acc_width", "start_width", "score_width", "input_words", "act_words", "max_layers", "score_count")],
    (lambda i: {"memories": _memory(i, LoadTarget.WEIGHTS, depth=0)},
     "an engine that cannot be built (capacity weight_depth must be an integer in 1..1048576, not 0)"),
    (lambda i: {"memories": _memory(i, LoadTarget.STARTS, depth=0)},
     "an engine that cannot be built (capacity start_depth must be an integer in 1..1048576, not 0)"),
    (lambda i: {"memories": _memory(i, LoadTarget.WEIGHTS, width=0)}, "a 0-bit WEIGHTS word (its engine has 128-bit ones)"),
    (lambda i: {"memories": _memory(i, LoadTarget.STARTS, width=0)}, "a 0-bit STARTS word (its engine has 64-bit ones)"),
    (lambda i: {"memories": _memory(i, LoadTarget.DESCRIPTORS, width=0)}, "a 0-bit DESCRIPTORS word (its engine has"),
    (lambda i: {"memories": _memory(i, LoadTarget.NETWORK, width=0)}, "a 0-bit NETWORK word (its engine has"),
    (lambda i: {"memories": _memory(i, LoadTarget.MODEL_ID, width=64)}, "a 64-bit MODEL_ID word (its engine has 128-bit ones)"),
    (lambda i: {"memories": _memory(i, LoadTarget.DESCRIPTORS, depth=3)}, "3 DESCRIPTORS words (its engine has 4)"),
    (lambda i: {"memories": _memory(i, LoadTarget.NETWORK, depth=2)}, "2 NETWORK words (its engine has 1)"),
    (lambda i: {"memories": _memory(i, LoadTarget.MODEL_ID, depth=2)}, "2 MODEL_ID words (its engine has 1)"),
]


@pytest.mark.parametrize("change, claim", BAD_IDENTITIES)
def test_an_identity_out_of_range_is_refused_naming_the_field(model8, change, claim):
    identity = board_identity(model8)
    assert identity.max_layers == 4 and identity.memories[LoadTarget.WEIGHTS].width == 128
    bad = dataclasses.replace(identity, **(change(identity) if callable(change) else change))
    with pytest.raises(IdentityError) as error:
        _link(FakeBoard(bad)).identify()
    message = str(error.value)
    assert message.startswith(f"the identity of the board says {claim}")
    assert message.endswith(": not a board this host can use") and "\n" not in message


def test_a_peer_that_sends_no_frame_is_told_of_and_given_up_on_after_one_retry(model8, monkeypatch, caplog):
    monkeypatch.setattr(host.link, "_SAY_AFTER", 0.2)
    fake = GarbageBoard(board_identity(model8))
    link = _link(fake, timeout=0.5, retries=3, name="socket://x")
    start = time.monotonic()
    with caplog.at_level("INFO", logger="bnn"), \
            pytest.raises(LinkError, match=r"^IDENTIFY to socket://x failed after 2 attempts: heard 40 bytes and "
                                           r"not one frame \(not a bnn serve-sim\?\)$"):
        link.identify()
    assert time.monotonic() - start < 1.5 and len(fake.requests) == 2
    assert [record.getMessage() for record in caplog.records] == [
        "no valid answer from socket://x yet (heard 20 bytes that are not a frame); waiting, up to ~1 s more",
        "no valid answer from socket://x yet (heard 20 bytes that are not a frame); retrying, up to ~1 s more"]


def test_a_peer_that_answered_a_frame_keeps_its_retries(model8, caplog):
    fake = FakeBoard(board_identity(model8), faults=Faults({1: "truncate", 2: "truncate", 3: "truncate"}))
    link = _link(fake, retries=3)
    link.identify()
    with caplog.at_level("INFO", logger="bnn"):
        link.status()
    assert link.stats.retries == 3 and caplog.records == []


def test_a_socket_closed_before_any_byte_is_a_simulated_board_serving_another_client():
    with serve_busy() as url, Link.open(url, baud=115200, timeout=1) as link:
        with pytest.raises(BusyError, match=rf"^the simulated board at {url} is serving another client \(it closed "
                                            rf"this connection before answering"):
            link.identify()
