"""Just enough RFC 6455 for the Kubernetes exec channel (``v4``/``v5.channel.k8s.io``).

Every message is a binary frame whose first byte names the stream: 0 stdin, 1 stdout, 2 stderr,
3 error (a ``metav1.Status`` JSON once the command ends), 4 resize, and in v5 255 close.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from typing import BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455 mandates SHA-1


def choose_protocol(offered: str) -> str | None:
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    for p in SUBPROTOCOLS:
        if p in wanted:
            return p
    return None


def frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def read_frame(rfile: BinaryIO) -> tuple[int, bytes] | None:
    """Read one (client, masked) frame; None at end of stream."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode = head[0] & 0x0F
    masked = head[1] & 0x80
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if masked else b""
    data = rfile.read(n)
    if masked:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


class ChannelWriter:
    """Writes channel-prefixed binary frames to the upgraded connection."""

    def __init__(self, wfile: BinaryIO, conn: socket.socket) -> None:
        self.wfile = wfile
        self.conn = conn

    def send(self, channel: int, data: bytes) -> None:
        self.wfile.write(frame(OP_BINARY, bytes([channel]) + data))
        self.wfile.flush()

    def close(self, code: int = 1000) -> None:
        try:
            self.wfile.write(frame(OP_CLOSE, struct.pack("!H", code)))
            self.wfile.flush()
        except OSError:
            pass
