import json
import struct
import zlib

import numpy as np
import pytest

from model.bits import pack_bits, to_words, unpack_bits, unpack_signs
from model.errors import ModelFileError
from model.modelfile import DENSE_VERSION, load_model, parse_model, save_model

from model.random_models import random_model


def _model(input_bits=8):
    return random_model([13, 9, 5, 3], input_bits=input_bits, seed=7, extreme_thresholds=0.5)


def _file_bytes(model, tmp_path):
    path = tmp_path / "m.bnn"
    save_model(model, path)
    return path.read_bytes()


def _split(data):
    header_len = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[16:16 + header_len]), data[16 + header_len:]


def _join(header, payload, version=DENSE_VERSION):
    text = json.dumps(header).encode()
    return b"BNNMODEL" + struct.pack("<II", version, len(text)) + text + payload


def test_bit_order_is_lsb_first_and_one_means_plus_one():
    bits = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 1, 1]], np.uint8)
    packed = pack_bits(bits)
    assert packed.tolist() == [[0x01, 0x03]]
    assert unpack_signs(packed, 10).tolist() == [[1, -1, -1, -1, -1, -1, -1, -1, 1, 1]]
    assert to_words(packed, 10, 4) == [[0x1, 0x0, 0x3]]
    assert to_words(packed, 10, 64) == [[0x301]]


def test_pack_unpack_round_trip_odd_sizes():
    rng = np.random.default_rng(1)
    for n in (1, 7, 8, 9, 63, 64, 65, 200):
        bits = rng.integers(0, 2, (4, n), dtype=np.uint8)
        np.testing.assert_array_equal(unpack_bits(pack_bits(bits), n), bits)


@pytest.mark.parametrize("input_bits", [8, 1])
def test_round_trip(tmp_path, input_bits):
    model = _model(input_bits)
    model.metadata["dataset"] = "digits"
    path = tmp_path / "m.bnn"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.input == model.input
    assert loaded.metadata == {"dataset": "digits"}
    assert loaded.arch == "13-9-5-3"
    for a, b in zip(model.layers, loaded.layers):
        np.testing.assert_array_equal(a.weights, b.weights)
        if a.thresholds is None:
            assert b.thresholds is None
        else:
            np.testing.assert_array_equal(a.thresholds, b.thresholds)


def _corrupt_header(tmp_path, edit):
    header, payload = _split(_file_bytes(_model(), tmp_path))
    edit(header)
    return _join(header, payload)


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["layers"][1].update(fan_in=8), "layer 1: fan-in 8 does not match"),
    (lambda h: h.update(classes=4), "header says 4 classes"),
    (lambda h: h["input"].update(bits=4), "input bits must be 1 or 8"),
    (lambda h: h["input"].update(shape=[2, 7]), r"input shape \[2, 7\] does not hold 13"),
    (lambda h: h["input"].update(threshold=3), "8-bit input takes no threshold"),
    (lambda h: h["layers"][0].update(fan_out="9"), "must be an integer"),
    (lambda h: h.pop("layers"), "lacks 'layers'"),
    (lambda h: h.update(payload_bytes=1), "declares 1 payload bytes"),
    (lambda h: h.update(payload_crc32=0), "checksum mismatch"),
    (lambda h: h.pop("metadata"), "header lacks 'metadata'"),
    (lambda h: h["input"].pop("threshold"), "input lacks 'threshold'"),
    (lambda h: h.update(version=2), "header has unknown key 'version'"),
    (lambda h: h["input"].update(channels=1), "input has unknown key 'channels'"),
    (lambda h: h["layers"][0].update(kind="dense"), r"layers\[0\] has unknown key 'kind'"),
])
def test_header_errors(tmp_path, edit, message):
    with pytest.raises(ModelFileError, match=message):
        parse_model(_corrupt_header(tmp_path, edit))


def test_threshold_out_of_range(tmp_path):
    header, payload = _split(_file_bytes(_model(), tmp_path))
    payload = bytearray(payload)
    offset = 9 * 2  # after layer 0's weights (9 neurons x 2 bytes)
    payload[offset:offset + 4] = struct.pack("<i", 13 * 255 + 2)
    header["payload_crc32"] = zlib.crc32(payload)
    with pytest.raises(ModelFileError, match=r"layer 0: thresholds must lie in \[-3315, 3316\]"):
        parse_model(_join(header, bytes(payload)))


def test_nonzero_pad_bits_rejected(tmp_path):
    header, payload = _split(_file_bytes(_model(), tmp_path))
    payload = bytearray(payload)
    payload[1] |= 0x80  # fan-in 13: bit 15 of row 0 is padding
    header["payload_crc32"] = zlib.crc32(payload)
    with pytest.raises(ModelFileError, match="pad bits"):
        parse_model(_join(header, bytes(payload)))


def test_file_level_errors(tmp_path):
    data = _file_bytes(_model(), tmp_path)
    header, payload = _split(data)
    cases = [
        (b"", "bad magic"),
        (b"PK\x03\x04" + data[4:], "bad magic"),
        (_join(header, payload, version=3), "version 3 is not supported"),
        (data[:20], r"truncated model file \(header\)"),
        (data[:-3], "truncated model file: payload"),
        (data + b"\0", "1 unexpected bytes"),
        (data[:16] + b"x" + data[17:], "not valid JSON"),
    ]
    for blob, message in cases:
        with pytest.raises(ModelFileError, match=message):
            parse_model(blob)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.bnn")
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)
    bad = tmp_path / "bad.bnn"
    bad.write_bytes(b"hello")
    with pytest.raises(ModelFileError, match=r"bad\.bnn: not a BNN model file"):
        load_model(bad)
