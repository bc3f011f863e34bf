"""Amaranth gateware: the inference engine, its memories, the UART link and board top levels."""
