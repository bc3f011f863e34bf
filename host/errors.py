"""The error of the host side of the serial link: every failure to talk to a board (:mod:`host.port`,
:mod:`host.identity`, :mod:`host.payloads`, :mod:`host.link`) is a :class:`LinkError`."""

from model.errors import BnnError


class LinkError(BnnError):
    """The link to a board failed: no port, no answer, a malformed answer, or a board without a model."""


class NoAnswerError(LinkError):
    """The board stopped answering: a request's last attempt went unanswered, or the port never sent
    a byte. No further request is worth its timeout."""


class ConnectionLostError(LinkError):
    """The port went away under the link: a read or a write failed."""
