"""The host side: link protocol, streaming inputs to a board and checking its answers."""
