"""The network guard: offline is a property we keep, not hope for.

With ``FTLAB_OFFLINE=1`` in the environment, importing ftlab blocks every socket
connection outside loopback and sets the Hugging Face offline switches. The tests set it
for every notebook kernel they start; ``ftlab run`` sets it unless ``--allow-network``.
"""

from __future__ import annotations

import ipaddress
import os
import socket

__all__ = ["OFFLINE_ENV", "NetworkBlockedError", "enable", "enable_from_env", "is_enabled"]


OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "WANDB_MODE": "offline",
    "DO_NOT_TRACK": "1",
}


class NetworkBlockedError(OSError):
    """Raised when code tries to reach a non-loopback address while ftlab is offline."""


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_create_connection = socket.create_connection


def _check(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise NetworkBlockedError(
            f"ftlab is offline: a connection to {host!r} was blocked. "
            "Unset FTLAB_OFFLINE (or pass --allow-network to `ftlab run`) to use the network."
        )


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(self, address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def enable() -> None:
    """Block non-loopback connections in this process and switch the HF libraries offline."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def is_enabled() -> bool:
    return socket.socket.connect is _guarded_connect  # type: ignore[comparison-overlap]


def enable_from_env() -> None:
    if os.environ.get("FTLAB_OFFLINE", "").lower() in ("1", "true", "yes"):
        enable()
