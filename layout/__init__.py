"""How a model is laid out for the engine and on the serial line: the one definition that the
compiler, the gateware (:mod:`hw`), the host (:mod:`host`) and the simulator share.

- :mod:`layout.params`: the engine's built sizes and the per-layer descriptors;
- :mod:`layout.compiler`: a model file's network as the engine's memory words;
- :mod:`layout.rows`: the bit layouts of the engine's table rows (descriptors, the network row);
- :mod:`layout.protocol`: the serial protocol's frames, codes and payloads;
- :mod:`layout.images`: the words a LOAD writes to each memory, and the model id.

Nothing here builds gateware: :mod:`hw` and :mod:`host` import this package, never each other.
"""
