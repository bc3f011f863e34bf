"""The payloads of the requests that carry a model and images to a board: an image as an INFER frame
(:func:`input_frame`) and a model's memory images as LOAD payloads (:func:`load_requests`)."""

from host.errors import LinkError
from layout.protocol import LOAD_HEADER_BYTES, MAX_LOAD_DATA, LoadTarget, word_bytes
from model.bits import pack_bits

_LOAD_ADDRESS_LIMIT = 1 << 16   # the LOAD address field is 16 bits


def input_frame(model, pixels):
    """The bytes of one image in an INFER payload (:func:`layout.protocol.frame_bytes` of them).

    An 8-bit model takes the pixel bytes. A 1-bit model takes the pixels binarized as the golden
    model does (:func:`model.golden.layer_preactivations`: ``pixels >= threshold``), packed as
    :mod:`model.bits` defines.
    """
    pixels = pixels.reshape(-1)
    if model.input.bits == 8:
        return pixels.astype("u1").tobytes()
    return pack_bits(pixels >= model.input.threshold).tobytes()


def load_requests(images, memories):
    """The LOAD payloads that write ``images`` (``{LoadTarget: [word, ...]}``) into memories of the
    sizes ``memories`` (a :class:`~layout.protocol.Memory` per :class:`LoadTarget`).

    Each payload holds as many whole words as fit :data:`MAX_LOAD_DATA` bytes; MODEL_ID comes last,
    since any other load marks the board as holding no model. Raises :class:`LinkError` if an image
    does not fit its memory.
    """
    requests = []
    order = [t for t in LoadTarget if t != LoadTarget.MODEL_ID] + [LoadTarget.MODEL_ID]
    for target in order:
        words = images.get(target, [])
        memory = memories[target]
        if len(words) > memory.depth:
            raise LinkError(f"the model needs {len(words)} words of {target.name} but the board has {memory.depth}")
        size = word_bytes(memory.width)
        per_request = MAX_LOAD_DATA // size
        if per_request == 0:
            raise LinkError(f"a {target.name} word of {memory.width} bits does not fit a load of "
                            f"{MAX_LOAD_DATA} bytes")
        for address in range(0, len(words), per_request):
            if address >= _LOAD_ADDRESS_LIMIT:
                raise LinkError(f"{target.name} address {address} does not fit the load's 16-bit address")
            data = b"".join(word.to_bytes(size, "little") for word in words[address:address + per_request])
            requests.append(bytes([target]) + address.to_bytes(LOAD_HEADER_BYTES - 1, "little") + data)
    return requests

