"""systemd's readiness protocol (sd_notify): tell the service manager when we are ready or stopping.

With `Type=notify` systemd waits for READY=1 before starting what depends on the resolver, so
nothing asks it a question before every socket is bound. Without NOTIFY_SOCKET this does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send one state line ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET; True if it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket name
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("cannot notify the service manager at %s: %s", address, error)
        return False
    return True
