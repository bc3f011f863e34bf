"""The serial link's gateware (:mod:`hw.link`): a LinkCore behind its serial line, UART bit timing
included, simulated with CXXRTL, spoken to with :mod:`layout.protocol`; then end to end through
:mod:`sim.serve` and the host's :class:`host.link.Link` over real pyserial sockets.

One design is built per model (module-scoped fixtures); every test starts its own simulator of it,
from power-up.
"""

import random
import time

import pytest
import serial

from host.board import compile_for_board
from host.link import Link
from host.payloads import input_frame, load_requests
from hw.framing import CRC16
from layout.images import model_id
from layout.protocol import (COUNTERS, LOAD_HEADER_BYTES, MAX_INFER_FRAMES, MAX_LOAD_DATA, MAX_PENDING_REQUESTS,
                             MODEL_ID_BYTES, Command,
                             FrameDecoder, Identity, LoadTarget, Status, crc16, decode_counters, encode_frame)
from model.random_models import random_images, random_model
from sim.serve import serving_in_background

from tests.hw.link_support import (BoardLine, build_link_board, golden_classes, infer_payload, infer_request,
                                    load_payloads, request)

INPUT_SIZE = 20
BUILT_FRAME_BYTES = 24      # the 8-bit engine's largest frame: whole input words of S = 8 pixels
BIT_INPUT_SIZE = 21         # a 1-bit model whose input is not whole bytes


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cxxrtl-cache")


@pytest.fixture(scope="module")
def board8(cache):
    """A LinkCore for a small 8-bit model, built once."""
    return build_link_board(random_model([INPUT_SIZE, 12, 10], input_bits=8, seed=1), cache)


@pytest.fixture(scope="module")
def board1(cache):
    """A LinkCore for a small 1-bit model, built once."""
    return build_link_board(random_model([BIT_INPUT_SIZE, 12, 10], input_bits=1, seed=2), cache)


@pytest.fixture
def line(board8):
    with board8.simulator() as simulator:
        yield BoardLine(simulator, board8)


@pytest.fixture
def second_model(board8):
    """Another model of the 8-bit board's shape, laid out for the board by the host."""
    model = random_model([INPUT_SIZE, 12, 10], input_bits=8, seed=11)
    return model, compile_for_board(model, board8.identity)


def images(count, seed, size=INPUT_SIZE):
    return random_images(count, size, seed=seed)


def counters(line, seq):
    status, payload = line.call(Command.STATUS, seq)
    assert status == Status.OK
    return decode_counters(payload)


# -- the CRC as logic

def test_the_gateware_crc_is_the_host_crc(simulate):
    dut = CRC16.create()
    rng = random.Random(3)
    messages = [b"123456789", b"", bytes([0]), bytes([0xFF]), bytes(range(256))] + [
        rng.randbytes(rng.randrange(1, 40)) for _ in range(30)]

    async def bench(ctx):
        for message in messages:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.valid, 1)
            for byte in message:
                ctx.set(dut.data, byte)
                await ctx.tick()
            ctx.set(dut.valid, 0)
            assert ctx.get(dut.crc) == crc16(message), message

    simulate(dut, bench, cycles=10_000)


# -- requests and responses, on the serial line directly

@pytest.mark.needs_cxx
def test_identify_answers_the_identity(line, board8):
    frames = line.exchange(request(Command.IDENTIFY, 42), 1)
    assert bytes(line.received) == encode_frame(Status.OK, 42, board8.identity.encode())
    identity = Identity.decode(frames[0].payload)
    assert identity == board8.identity and identity.model_id == model_id(board8.compiled)
    assert identity.timeout_cycles == 2000 and identity.model_loaded
    assert identity.input_words * identity.simd == BUILT_FRAME_BYTES


@pytest.mark.needs_cxx
def test_infer_answers_the_golden_classes(line, board8):
    model = board8.model
    one, several, most = images(1, 1), images(5, 2), images(MAX_INFER_FRAMES, 3)
    assert line.call(Command.INFER, 0, infer_payload(model, one)) == (
        Status.OK, golden_classes(model, one))
    # requests back to back: answered in order, none lost
    data = infer_request(model, several, 1) + infer_request(model, most, 2) + infer_request(model, one, 3)
    frames = line.exchange(data, 3)
    assert [(f.code, f.seq, f.payload) for f in frames] == [
        (Status.OK, 1, golden_classes(model, several)), (Status.OK, 2, golden_classes(model, most)),
        (Status.OK, 3, golden_classes(model, one))]
    assert counters(line, 4)["frames"] == 1 + 5 + MAX_INFER_FRAMES + 1


def _flip_last(data):
    return _flip(data, 8 * len(data) - 1)


def _flip(data, bit):
    corrupt = bytearray(data)
    corrupt[bit // 8] ^= 1 << bit % 8
    return bytes(corrupt)


# (name, the faulty bytes given the model, the status and seq expected (None: no response), the
# counter that counts it, by how much)
FAULTS = [
    ("bad CRC", lambda m: _flip(infer_request(m, images(2, 5), 7), 8 * 9 + 3), (Status.BAD_CRC, 7),
     "bad_crc", 1),
    ("bad CRC in the CRC", lambda m: _flip_last(infer_request(m, images(1, 5), 7)), (Status.BAD_CRC, 7),
     "bad_crc", 1),
    ("unknown command", lambda m: request(0x77, 7, b"\x01\x02"), (Status.UNKNOWN_COMMAND, 7),
     "unknown_command", 1),
    ("INFER not whole frames", lambda m: request(Command.INFER, 7, bytes(INPUT_SIZE + 3)), (Status.BAD_LENGTH, 7),
     "bad_length", 1),
    ("INFER of no frame", lambda m: request(Command.INFER, 7), (Status.BAD_LENGTH, 7), "bad_length", 1),
    ("IDENTIFY with a payload", lambda m: request(Command.IDENTIFY, 7, b"\x00"), (Status.BAD_LENGTH, 7),
     "bad_length", 1),
    ("STATUS with a payload", lambda m: request(Command.STATUS, 7, b"\x10\x20"), (Status.BAD_LENGTH, 7),
     "bad_length", 1),
    ("INFER above the limit", lambda m: request(Command.INFER, 7, bytes(MAX_INFER_FRAMES * BUILT_FRAME_BYTES + 1)),
     (Status.BAD_LENGTH, 7), "bad_length", 1),
    ("LOAD above the limit", lambda m: request(Command.LOAD, 7, bytes(LOAD_HEADER_BYTES + MAX_LOAD_DATA + 1)),
     (Status.BAD_LENGTH, 7), "bad_length", 1),
    ("garbage", lambda m: bytes(range(0x10, 0x60)), None, "skipped_bytes", 0x50),
    ("garbage with a false SYNC", lambda m: b"\x00\x11\xa5\x05\x09\xff\xff\x00\x00", (Status.BAD_LENGTH, 9),
     "bad_length", 1),
]


@pytest.mark.parametrize("make, expected, counter, increment", [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
@pytest.mark.needs_cxx
def test_a_fault_gets_its_error_and_the_next_request_its_answer(line, board8, make, expected, counter, increment):
    model = board8.model
    first, last = images(3, 8), images(2, 9)
    before = counters(line, 1)
    data = infer_request(model, first, 2) + make(model) + infer_request(model, last, 3)
    frames = line.exchange(data, 3 if expected else 2)
    answers = [(f.code, f.seq) for f in frames]
    assert frames[0].payload == golden_classes(model, first) and frames[-1].payload == golden_classes(model, last)
    assert answers == [(Status.OK, 2), *([expected] if expected else []), (Status.OK, 3)]
    if expected:
        assert frames[1].payload == b""
    after = counters(line, 4)
    changed = {name: after[name] - before[name] for name, _ in COUNTERS if after[name] != before[name]}
    # the frames counter counts what the engine computed, a request that failed its CRC included
    changed.pop("frames")
    if counter != "skipped_bytes":
        changed.pop("skipped_bytes", None)  # a payload skipped after an early BAD_LENGTH
    assert changed == {counter: increment}


def test_the_independent_hosts_padded_frame_bytes_are_the_frames_below():
    # the bytes of the report, for the digits model (64-byte frames): an INFER one byte too long, then one frame
    assert request(Command.INFER, 1, bytes(65)) == bytes.fromhex("a5050141 00") + bytes(65) + bytes.fromhex("8924")
    assert request(Command.INFER, 2, bytes(64)) == bytes.fromhex("a5050240 00") + bytes(64) + bytes.fromhex("e6d5")


@pytest.mark.parametrize("cut", ["bad length", "bad crc", "timeout"])
@pytest.mark.needs_cxx
def test_a_frame_cut_short_costs_the_next_request_no_byte(line, board8, cut):
    """The independent host's sequence on this board's frames: an INFER one byte too long (a second frame
    cut short), then at once a one-frame INFER and another request; the cut frame is discarded, not
    padded and computed, so the line never waits and no byte overruns."""
    model = board8.model
    first, second = images(1, 30), images(1, 31)
    frames = [input_frame(model, image) for image in (*first, *second)]
    if cut == "bad length":
        faulty = request(Command.INFER, 1, frames[0] + b"\x00")
    elif cut == "bad crc":
        faulty = _flip_last(request(Command.INFER, 1, frames[0] + frames[1][:3]))
    else:   # stops inside its second frame; the next request comes after the board's timeout
        faulty = request(Command.INFER, 1, frames[0] + frames[1])[:5 + INPUT_SIZE + 3]
    expected = {"bad length": Status.BAD_LENGTH, "bad crc": Status.BAD_CRC, "timeout": Status.TIMEOUT}[cut]
    before = counters(line, 9)
    if cut == "timeout":
        assert [(f.code, f.seq) for f in line.exchange(faulty, 1)] == [(expected, 1)]
        faulty = b""
    answers = line.exchange(faulty + infer_request(model, second, 2) + request(Command.STATUS, 3), 2 + bool(faulty))
    assert [(f.code, f.seq) for f in answers] == [*([(expected, 1)] if faulty else []), (Status.OK, 2), (Status.OK, 3)]
    assert answers[-2].payload == golden_classes(model, second)
    after = decode_counters(answers[-1].payload)
    assert after["overruns"] == before["overruns"] and after["framing_errors"] == 0
    # only whole frames are computed: the first request's one and the second's
    assert after["frames"] - before["frames"] == 2


@pytest.fixture
def small_model(line, board8):
    """A model with 8 inputs loaded onto the 8-bit board (built for frames of up to 24 bytes)."""
    model = random_model([8, 12, 10], input_bits=8, seed=13)
    line.load(compile_for_board(model, board8.identity))
    return model


@pytest.mark.needs_cxx
def test_more_than_max_infer_frames_of_a_smaller_model_is_bad_length(line, small_model):
    frames = images(MAX_INFER_FRAMES + 1, 21, size=8)
    assert line.call(Command.INFER, 1, infer_payload(small_model, frames)) == (Status.BAD_LENGTH, b"")


@pytest.mark.needs_cxx
def test_an_infer_of_many_small_frames_does_not_wedge_the_board(line, small_model):
    frames = images(32, 22, size=8)
    assert [(f.code, f.seq) for f in line.exchange(infer_request(small_model, frames, 1), 1)] == [
        (Status.BAD_LENGTH, 1)]
    assert line.call(Command.INFER, 2, infer_payload(small_model, frames[:2])) == (
        Status.OK, golden_classes(small_model, frames[:2]))


@pytest.mark.parametrize("keep", [1, 2, 3, 5, 6, 5 + INPUT_SIZE + 1, 5 + 2 * INPUT_SIZE, 5 + 2 * INPUT_SIZE + 1])
@pytest.mark.needs_cxx
def test_a_request_cut_off_times_out_and_the_next_is_answered(line, board8, keep):
    model = board8.model
    first, last = images(1, 10), images(2, 11)
    cut = infer_request(model, images(2, 12), 8)[:keep]
    frames = line.exchange(infer_request(model, first, 7) + cut, 2)
    assert (frames[0].code, frames[0].seq, frames[0].payload) == (Status.OK, 7, golden_classes(model, first))
    assert frames[1].code == Status.TIMEOUT and frames[1].payload == b""
    if keep > 2:          # the seq byte came
        assert frames[1].seq == 8
    assert line.call(Command.INFER, 9, infer_payload(model, last)) == (
        Status.OK, golden_classes(model, last))
    assert counters(line, 10)["timeouts"] == 1


@pytest.mark.needs_cxx
def test_requests_back_to_back_each_get_their_response(line, board8):
    count = MAX_PENDING_REQUESTS   # the rule docs/protocol.md gives a host: the board queues that many
    frames = line.exchange(b"".join(request(Command.IDENTIFY, seq) for seq in range(count)), count)
    assert [(f.code, f.seq) for f in frames] == [(Status.OK, seq) for seq in range(count)]


@pytest.mark.needs_cxx
def test_status_counts_and_reset_zeroes(line, board8):
    model = board8.model
    line.exchange(infer_request(model, images(4, 13), 0) + _flip(request(Command.STATUS, 1), 20)
                  + b"\x00\x01\x02", 2)
    values = counters(line, 2)
    assert (values["frames"], values["bad_crc"], values["skipped_bytes"]) == (4, 1, 3)
    assert values["framing_errors"] == values["overruns"] == 0
    assert line.call(Command.RESET, 3) == (Status.OK, b"")
    assert counters(line, 4) == {name: 0 for name, _ in COUNTERS}
    # the model stays
    assert line.call(Command.INFER, 5, infer_payload(model, images(1, 14)))[0] == Status.OK


@pytest.mark.needs_cxx
def test_a_second_model_loaded_without_rebuilding(line, board8, second_model):
    model2, compiled2 = second_model
    frames = images(MAX_INFER_FRAMES, 15)
    assert golden_classes(model2, frames) != golden_classes(board8.model, frames)   # they can be told apart
    line.load(compiled2)
    status, payload = line.call(Command.IDENTIFY, 100)
    identity = Identity.decode(payload)
    assert status == Status.OK and identity.model_loaded and identity.model_id == model_id(compiled2)
    assert line.call(Command.INFER, 101, infer_payload(model2, frames)) == (
        Status.OK, golden_classes(model2, frames))
    # and back to the first
    line.load(board8.compiled, 102)
    assert line.call(Command.INFER, 200, infer_payload(board8.model, frames)) == (
        Status.OK, golden_classes(board8.model, frames))


@pytest.mark.needs_cxx
def test_an_interrupted_load_leaves_no_model(line, board8, second_model):
    model2, compiled2 = second_model
    payloads = load_payloads(compiled2, board8.identity)
    assert line.call(Command.LOAD, 0, payloads[0]) == (Status.OK, b"")
    assert line.exchange(_flip(request(Command.LOAD, 1, payloads[1]), 8 * 12), 1)[0].code == Status.BAD_CRC
    assert not Identity.decode(line.call(Command.IDENTIFY, 2)[1]).model_loaded
    assert line.call(Command.INFER, 3, bytes(INPUT_SIZE)) == (Status.NO_MODEL, b"")
    # a whole load brings a model back
    line.load(compiled2, 4)
    frames = images(3, 16)
    assert line.call(Command.INFER, 50, infer_payload(model2, frames)) == (
        Status.OK, golden_classes(model2, frames))


@pytest.mark.needs_cxx
def test_the_model_id_is_zeros_while_no_model_is_loaded(line, board8, second_model):
    _, compiled2 = second_model
    assert line.call(Command.LOAD, 0, load_payloads(compiled2, board8.identity)[0]) == (Status.OK, b"")
    identity = Identity.decode(line.call(Command.IDENTIFY, 1)[1])
    assert not identity.model_loaded
    assert identity.model_id == bytes(MODEL_ID_BYTES)


def _load_with_one_chunk_corrupted(line, compiled, victim, into):
    """LOAD ``compiled`` as :meth:`host.link.Link.load` does when one request is corrupted on the
    line: the ``victim`` target's first request arrives with its target byte changed to ``into`` (so
    its CRC fails) and is answered BAD_CRC; the load then starts again from its first request, and
    every request goes through."""
    seq = 0
    payloads = load_payloads(compiled, line.board.identity)
    for payload in payloads:
        if payload[0] == victim:
            corrupt = bytearray(request(Command.LOAD, seq, payload))
            corrupt[5] = into
            assert [(f.code, f.seq) for f in line.exchange(corrupt, 1)] == [(Status.BAD_CRC, seq)]
            seq += 1
            break
        assert line.call(Command.LOAD, seq, payload) == (Status.OK, b"")
        seq += 1
    return line.load(compiled, seq)


@pytest.mark.needs_cxx
def test_a_load_request_corrupted_on_the_line_leaves_no_wrong_model(line, second_model):
    model2, compiled2 = second_model
    seq = _load_with_one_chunk_corrupted(line, compiled2, LoadTarget.STARTS, LoadTarget.WEIGHTS)
    frames = images(MAX_INFER_FRAMES, 23)
    status, classes = line.call(Command.INFER, seq, infer_payload(model2, frames))
    assert status == Status.NO_MODEL or classes == golden_classes(model2, frames)


@pytest.mark.needs_cxx
def test_a_load_request_corrupted_into_the_descriptors_does_not_wedge_the_board(line, second_model):
    model2, compiled2 = second_model
    seq = _load_with_one_chunk_corrupted(line, compiled2, LoadTarget.NETWORK, LoadTarget.DESCRIPTORS)
    line.exchange(infer_request(model2, images(MAX_INFER_FRAMES, 24), seq), 1)
    assert line.call(Command.STATUS, seq + 1)[0] == Status.OK


@pytest.mark.needs_cxx
def test_load_while_frames_are_in_flight_is_busy_and_reset_always_goes_ahead(line, board8, second_model):
    _, compiled2 = second_model
    model = board8.model
    frames = images(MAX_INFER_FRAMES, 17)
    payload = load_payloads(compiled2, board8.identity)[0]
    data = (infer_request(model, frames, 1) + request(Command.LOAD, 2, payload)
            + infer_request(model, frames, 3) + request(Command.RESET, 4))
    answers = line.exchange(data, 4)
    assert [(f.code, f.seq) for f in answers] == [(Status.OK, 1), (Status.BUSY, 2), (answers[2].code, 3),
                                                  (Status.OK, 4)]
    assert answers[0].payload == golden_classes(model, frames)
    # the RESET stopped the engine: the INFER before it was answered in full, or ABORTED, never in part
    assert (answers[2].code, answers[2].payload) in [(Status.OK, golden_classes(model, frames)), (Status.ABORTED, b"")]
    identity = Identity.decode(line.call(Command.IDENTIFY, 5)[1])
    assert identity.model_loaded and identity.model_id == model_id(board8.compiled)
    assert line.call(Command.INFER, 6, infer_payload(model, frames[:2])) == (Status.OK, golden_classes(model, frames[:2]))


@pytest.mark.needs_cxx
def test_a_status_answers_the_counters_when_it_was_accepted(line, board8):
    """The independent host's report: a STATUS followed at once by a RESET answered frames from before
    the reset and the other counters from after it."""
    model = board8.model
    line.exchange(infer_request(model, images(3, 40), 1) + _flip_last(request(Command.IDENTIFY, 2)), 2)
    status, reset = line.exchange(request(Command.STATUS, 3) + request(Command.RESET, 4), 2)
    assert (status.code, reset.code) == (Status.OK, Status.OK)
    values = decode_counters(status.payload)
    assert (values["frames"], values["bad_crc"]) == (3, 1)
    assert counters(line, 5) == {name: 0 for name, _ in COUNTERS}
    # two STATUS back to back: the second is accepted once the first's snapshot is sent, and each is whole
    first, second = line.exchange(request(Command.STATUS, 6) + request(Command.STATUS, 7), 2)
    assert decode_counters(first.payload) == decode_counters(second.payload) == {name: 0 for name, _ in COUNTERS}


@pytest.mark.needs_cxx
def test_an_identify_answers_the_model_it_was_accepted_with(line, board8, second_model):
    """The report: an IDENTIFY followed at once by a LOAD of the model id answered model_loaded 0 with a
    non-zero id, or half of each id. A LOAD waits (BUSY) until the IDENTIFY is answered."""
    _, compiled2 = second_model
    new_id = bytes([LoadTarget.MODEL_ID, 0, 0]) + model_id(compiled2)
    identify, load = line.exchange(request(Command.IDENTIFY, 1) + request(Command.LOAD, 2, new_id), 2)
    identity = Identity.decode(identify.payload)
    assert identity.model_loaded and identity.model_id == model_id(board8.compiled)
    assert load.code == Status.BUSY
    assert Identity.decode(line.call(Command.IDENTIFY, 3)[1]).model_id == model_id(board8.compiled)


def _adversarial_images(identity, kind, seed):
    """Memory contents no model produces: ``{LoadTarget: [word, ...]}`` for every memory but MODEL_ID."""
    rng = random.Random(seed)
    memories = identity.memories
    images = {t: [rng.getrandbits(memories[t].width) for _ in range(memories[t].depth)]
              for t in LoadTarget if t != LoadTarget.MODEL_ID}
    if kind == "zero descriptors":
        images[LoadTarget.DESCRIPTORS] = [0] * memories[LoadTarget.DESCRIPTORS].depth
    elif kind == "zero network row":
        images[LoadTarget.NETWORK] = [0]
    elif kind == "all ones":
        images = {t: [(1 << memories[t].width) - 1] * memories[t].depth for t in images}
    return images


@pytest.mark.parametrize("kind, seed", [("zero descriptors", 1), ("zero network row", 2), ("all ones", 3),
                                        ("random", 4), ("random", 5), ("random", 6)])
@pytest.mark.needs_cxx
def test_no_memory_contents_lock_the_board_up(line, board8, kind, seed):
    """The report's lock-up: whatever a LOAD writes, every request is answered (an INFER the engine cannot
    finish is stopped by the watchdog and answered ABORTED), a RESET always goes ahead, and the real model
    loads and answers again afterwards."""
    identity = board8.identity
    contents = _adversarial_images(identity, kind, seed)
    contents[LoadTarget.MODEL_ID] = [int.from_bytes(bytes(range(MODEL_ID_BYTES)), "little")]
    seq = 0
    for payload in load_requests(contents, identity.memories):
        assert line.call(Command.LOAD, seq, payload)[0] == Status.OK
        seq += 1
    frames = images(2, seed)
    data = (infer_request(board8.model, frames, seq) + request(Command.RESET, seq + 1)
            + request(Command.STATUS, seq + 2) + infer_request(board8.model, frames, seq + 3))
    answers = line.exchange(data, 4)
    assert [f.seq for f in answers] == [seq, seq + 1, seq + 2, seq + 3]
    assert [f.code for f in answers][1:3] == [Status.OK, Status.OK]
    for infer in (answers[0], answers[3]):
        assert infer.code in (Status.OK, Status.ABORTED, Status.BAD_LENGTH)
    line.load(board8.compiled, seq + 4)
    assert line.call(Command.INFER, 1, infer_payload(board8.model, frames)) == (
        Status.OK, golden_classes(board8.model, frames))


@pytest.mark.needs_cxx
def test_load_outside_its_memory_is_refused(line, board8):
    depth = board8.identity.memories[LoadTarget.STARTS].depth
    outside = bytes([LoadTarget.STARTS]) + depth.to_bytes(2, "little") + bytes(4)
    assert line.call(Command.LOAD, 0, outside) == (Status.BAD_ADDRESS, b"")
    assert line.call(Command.LOAD, 1, bytes([len(LoadTarget), 0, 0, 1])) == (Status.BAD_ADDRESS, b"")
    # a word cut short
    assert line.call(Command.LOAD, 2, bytes([LoadTarget.STARTS, 0, 0, 1])) == (Status.BAD_LENGTH, b"")
    # addresses past every built memory (the board keeps only the bits its memories need): refused, never
    # wrapped onto address 0 or 1 (the model stays whole and answers)
    width = board8.identity.memories[LoadTarget.STARTS].width
    for address in (0x8000, 0x0100, 0xff01, 1 << (max(m.depth for m in board8.identity.memories).bit_length())):
        far = bytes([LoadTarget.STARTS]) + address.to_bytes(2, "little") + bytes(-(-width // 8))
        assert line.call(Command.LOAD, 3, far) == (Status.BAD_ADDRESS, b""), hex(address)


@pytest.mark.needs_cxx
def test_a_load_to_an_unknown_target_above_7_is_refused(line):
    whole_word = bytes([8 + LoadTarget.STARTS, 0, 0]) + bytes(4)
    assert line.call(Command.LOAD, 1, whole_word) == (Status.BAD_ADDRESS, b"")


@pytest.mark.parametrize("threshold", [0, 1, 128, 256])
@pytest.mark.needs_cxx
def test_a_1_bit_model_takes_packed_frames(board1, threshold):
    model = random_model([BIT_INPUT_SIZE, 12, 10], input_bits=1, seed=20 + threshold, input_threshold=threshold)
    frames = images(MAX_INFER_FRAMES, 18, size=BIT_INPUT_SIZE)
    with board1.simulator() as simulator:
        line = BoardLine(simulator, board1)
        line.load(compile_for_board(model, board1.identity))
        payload = infer_payload(model, frames)
        assert len(payload) == MAX_INFER_FRAMES * 3
        assert line.call(Command.INFER, 200, payload) == (Status.OK, golden_classes(model, frames))
        # and the model the bitstream holds, loaded back
        line.load(board1.compiled, 201)
        assert line.call(Command.INFER, 250, infer_payload(board1.model, frames)) == (
            Status.OK, golden_classes(board1.model, frames))


# -- end to end: sim.serve, pyserial and the host's Link

def _socket_link(server, timeout):
    port = serial.serial_for_url(f"socket://127.0.0.1:{server.address[1]}", timeout=0.05)
    return port, Link(port, timeout=timeout, retries=3, name="the simulated board")


def _raw_response(port, timeout=5.0):
    """The next frame the board sends, read past the Link."""
    decoder, deadline = FrameDecoder(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = decoder.feed(port.read(max(1, port.in_waiting)))
        if frames:
            assert len(frames) == 1 and decoder.skipped == 0
            return frames[0]
    raise AssertionError("no response")


def _streamed(link, model, frames, **options):
    answers = dict(link.infer((input_frame(model, image) for image in frames), **options))
    return bytes(answers[k] for k in range(len(frames)))


@pytest.mark.needs_cxx
def test_end_to_end_through_a_socket(board8, second_model):
    model2, compiled2 = second_model
    model3 = random_model([INPUT_SIZE, 12, 10], input_bits=8, seed=12)
    stream = images(48, 19)
    with board8.simulator() as simulator, \
            serving_in_background(simulator, idle_cycles=board8.simulated.idle_cycles) as (server, _):
        port, link = _socket_link(server, timeout=5.0)
        with link:
            identity = link.identify()
            assert identity == board8.identity
            loaded = link.load(compiled2, identity)
            assert loaded.model_id == model_id(compiled2)
            assert _streamed(link, model2, stream) == golden_classes(model2, stream)
            compiled3 = compile_for_board(model3, identity)
            assert link.load(compiled3, identity).model_id == model_id(compiled3)
            assert _streamed(link, model3, stream, frames_per_request=4) == golden_classes(model3, stream)

            # faults written straight onto the line between requests
            good = infer_request(model3, stream[:2], 0xF0)
            faults = [
                (b"\x00\x13\x37" * 20, None),
                (good[:9], (Status.TIMEOUT, 0xF0)),
                (_flip(good, 8 * 12 + 5), (Status.BAD_CRC, 0xF0)),
                (_flip_last(good), (Status.BAD_CRC, 0xF0)),
                (request(Command.INFER, 0xF1, bytes(7)), (Status.BAD_LENGTH, 0xF1)),
                (request(0x42, 0xF2), (Status.UNKNOWN_COMMAND, 0xF2)),
            ]
            before = link.status()
            for k, (fault, expected) in enumerate(faults):
                port.write(fault)
                if expected:
                    response = _raw_response(port)
                    assert (response.code, response.seq) == expected
                frames = stream[4 * k:4 * k + 3]
                assert _streamed(link, model3, frames) == golden_classes(model3, frames)
            after = link.status()
            assert link.stats.failed == link.stats.retries == link.stats.ignored == 0
        delta = {name: after[name] - before[name] for name in ("bad_crc", "bad_length", "unknown_command",
                                                                "timeouts", "skipped_bytes")}
        assert delta == {"bad_crc": 2, "bad_length": 1, "unknown_command": 1, "timeouts": 1, "skipped_bytes": 60}


@pytest.mark.needs_cxx
def test_the_link_core_settles_in_one_evaluation_per_cycle(board8):
    # a register bit that is always 0 or 1 becomes a constant driving part of its wire; CXXRTL then
    # evaluates the whole design twice a cycle (the link ran at half speed until such bits were gone)
    generated = (board8.library.library.parent / "top.cpp").read_text()
    assert "#define BNN_ONE_DELTA 1" in generated
