"""The host side of the serial link: empty until the framed protocol exists (issue 8)."""
