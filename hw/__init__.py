"""The gateware and what builds it.

The inference engine (:mod:`hw.engine`: input loader, sequencer, processing
elements with their popcount trees, argmax, memories); the serial link that puts the engine behind
a board's serial line (:mod:`hw.link`: UART, protocol receiver and sender, memories loadable at run
time, the UP5K's SPRAM); the boards (:mod:`hw.boards`), their PLLs, the board top level
(:mod:`hw.top`), the plan of a model on a board (:mod:`hw.plan`: whether and how it fits) and
the build from a model to a bitstream (:mod:`hw.build`). What the gateware
builds from (the engine's sizes, a model's memory words, the protocol) is :mod:`layout`'s.
"""
