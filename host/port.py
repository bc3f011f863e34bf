"""Opening the port of a board: a serial device or a pyserial URL (``socket://HOST:PORT``, usually
``bnn serve-sim``'s simulated board), the ``HOST:PORT`` form of a TCP address, and the errors of a
port that does not open or a simulated board that serves another client.
"""

import serial

from host.errors import LinkError

_POLL = 0.05                    # seconds a read waits at most before the deadlines are checked
_SOCKET = "socket://"           # a TCP port, usually bnn serve-sim's simulated board
_SERVE_SIM_HINT = ("start the simulated board first (bnn serve-sim ... --listen 127.0.0.1:PORT) and pass the "
                   "address it prints as socket://HOST:PORT")
_ADDRESS_HINT = "pass the address bnn serve-sim prints (listening on HOST:PORT) as socket://HOST:PORT"
_URL_HINT = "give a serial device (/dev/ttyUSB1, COM3) or a pyserial URL (socket://HOST:PORT)"
_DEVICE_HINT = ("list the serial ports (python -m serial.tools.list_ports -v; the iCEBreaker's UART is the "
                "second of its two ports) and close any other program that holds this one (a terminal, another bnn)")
_DIALOUT_HINT = "; on Linux, join the dialout group to open serial ports"


class PortError(LinkError):
    """A port did not open: ``reason`` says why, ``hint`` what to try (both one line)."""

    def __init__(self, url, reason, hint):
        super().__init__(f"could not open {url}: {reason}; {hint}")
        self.reason, self.hint = reason, hint


class BusyError(LinkError):
    """A ``socket://`` port closed the connection before a byte came: ``bnn serve-sim`` does that to
    a client while it serves another one."""


def default_timeout(url):
    """Seconds to wait for a response: a socket:// URL is usually ``bnn serve-sim``, a simulated
    board far slower than real time."""
    return 30.0 if url.startswith(_SOCKET) else 2.0


def split_address(text, *, lowest=0):
    """``(host, port)`` of ``HOST:PORT`` (``[HOST]:PORT`` for an IPv6 address): the one form of a
    TCP address, in ``bnn serve-sim --listen`` and in a ``socket://`` URL.

    Raises ValueError, saying what is wrong, unless the host is not empty (and in brackets if it
    holds a colon) and the port is ASCII digits of a number in ``lowest``..65535.
    """
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ValueError("no :PORT")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not host:
        raise ValueError("no host before :PORT")
    if ":" in host and not bracketed:
        raise ValueError(f"an IPv6 host goes in brackets ([{host}]:{port})")
    if not (port.isascii() and port.isdigit()) or not lowest <= int(port) <= 65535:
        raise ValueError(f"the port {port!r} is not a number in {lowest}..65535")
    return host, int(port)


def open_port(url, *, baud):
    """The pyserial port of ``url`` (a serial device or a pyserial URL), reads returning after
    :data:`_POLL` seconds at most. A ``socket://`` URL must be ``socket://HOST:PORT``
    (:func:`split_address`, a port in 1..65535). Raises :class:`PortError`."""
    if url.startswith(_SOCKET):
        try:
            split_address(url[len(_SOCKET):], lowest=1)
        except ValueError as e:
            raise PortError(url, str(e), _ADDRESS_HINT) from None
    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=_POLL)
    except (serial.SerialException, ValueError) as e:
        raise PortError(url, _reason(e), _open_hint(url, e)) from None


def _reason(error):
    """The words of the error at the bottom of ``error``'s chain: pyserial's own text repeats an
    OSError's (``[Errno 2] could not open port X: [Errno 2] No such file or directory: 'X'``)."""
    while error.__context__ is not None:
        error = error.__context__
    args = error.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1]          # (errno, text): an OSError, a socket or termios error
    return str(error)


def _open_hint(url, error):
    """What to try when ``url`` did not open with ``error``."""
    if url.startswith(_SOCKET):
        return _SERVE_SIM_HINT
    if isinstance(error, ValueError) or "://" in url:
        return _URL_HINT
    while error.__context__ is not None:
        error = error.__context__
    return _DEVICE_HINT + (_DIALOUT_HINT if isinstance(error, PermissionError) else "")

