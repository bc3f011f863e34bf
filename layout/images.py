"""What a LOAD of a compiled model writes to each of a board's memories, and the model's id.

The load targets' word widths come from :mod:`layout.rows`; the words from :mod:`layout.compiler`.
:mod:`hw.link` builds the memories these images fill; :mod:`host.link` sends them.
"""

import hashlib

from .protocol import MODEL_ID_BYTES, LoadTarget, Memory, word_bytes
from .rows import descriptor_rows, loadable_widths, network_row

MODEL_ID_BITS = 8 * MODEL_ID_BYTES


def link_memories(params):
    """``{LoadTarget: layout.protocol.Memory}``: the load targets of an engine of ``params``."""
    depths = {LoadTarget.WEIGHTS: params.weight_depth, LoadTarget.STARTS: params.start_depth,
              LoadTarget.DESCRIPTORS: params.max_layers, LoadTarget.NETWORK: 1}
    memories = {t: Memory(depths[t], width) for t, width in loadable_widths(params).items()}
    memories[LoadTarget.MODEL_ID] = Memory(1, MODEL_ID_BITS)
    return memories


def memory_images(compiled):
    """``{LoadTarget: [word, ...]}``: what a LOAD of ``compiled`` writes to each target, from
    address 0 (the MODEL_ID word is :func:`model_id`, as a little-endian integer)."""
    params, image = compiled.params, compiled.image
    images = {LoadTarget.WEIGHTS: list(image.weight_words), LoadTarget.STARTS: list(image.start_words),
              LoadTarget.DESCRIPTORS: descriptor_rows(params, image.descriptors),
              LoadTarget.NETWORK: [network_row(params, image)]}
    digest = hashlib.sha256()
    for target, words in images.items():
        size = word_bytes(link_memories(params)[target].width)
        digest.update(bytes([target]) + len(words).to_bytes(4, "little"))
        digest.update(b"".join(w.to_bytes(size, "little") for w in words))
    images[LoadTarget.MODEL_ID] = [int.from_bytes(digest.digest()[:MODEL_ID_BYTES], "little")]
    return images


def model_id(compiled):
    """The id of ``compiled`` on a board: a digest of everything a LOAD writes."""
    return memory_images(compiled)[LoadTarget.MODEL_ID][0].to_bytes(MODEL_ID_BYTES, "little")
