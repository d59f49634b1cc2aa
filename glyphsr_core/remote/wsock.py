"""A minimal websocket client (RFC 6455) on the standard library, enough to follow a ComfyUI prompt.

ComfyUI announces progress and the end of a prompt on `/ws`; this reads its text and binary frames,
answers pings and reports a closed or dropped connection, so `queue` needs no extra package. It
sends nothing but pongs and a close frame (masked, as the RFC asks of clients).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import urllib.parse

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketClosed(ConnectionError):
    """The server closed the websocket or the connection dropped."""


class WebSocket:
    """One client connection: `recv()` returns the next message (str or bytes); `settimeout(s)`
    bounds each wait (a timeout raises TimeoutError and loses nothing: partial frames stay buffered)."""

    def __init__(self, url: str, timeout: float = 30.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "http"):
            raise ValueError(f"websocket URL must be ws:// (wss:// is not supported): {url}")
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        self._parts: list[bytes] = []
        self._opcode = 0
        try:
            self._handshake(host, port, path)
        except BaseException:
            self._sock.close()
            raise

    def _handshake(self, host: str, port: int, path: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise WebSocketClosed(f"websocket handshake refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise WebSocketClosed("websocket handshake answered with a wrong Sec-WebSocket-Accept")

    def settimeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def _fill(self) -> None:
        try:
            data = self._sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no websocket message within the timeout") from None
        except OSError as exc:
            raise WebSocketClosed(f"websocket connection lost: {exc}") from None
        if not data:
            raise WebSocketClosed("websocket connection closed by the server")
        self._buf += data

    def _frame(self) -> tuple[bool, int, bytes] | None:
        """(fin, opcode, payload) of the first complete frame in the buffer, consumed; None if incomplete."""
        buf = self._buf
        if len(buf) < 2:
            return None
        fin, opcode, masked, length, pos = buf[0] & 0x80, buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F, 2
        if length in (126, 127):
            size = 2 if length == 126 else 8
            if len(buf) < pos + size:
                return None
            length = struct.unpack(">H" if size == 2 else ">Q", buf[pos:pos + size])[0]
            pos += size
        mask = b""
        if masked:
            mask, pos = buf[pos:pos + 4], pos + 4
        if len(buf) < pos + length:
            return None
        payload = buf[pos:pos + length]
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._buf = buf[pos + length:]
        return bool(fin), opcode, payload

    def recv(self) -> str | bytes:
        """The next text (str) or binary (bytes) message; pings are answered on the way."""
        while True:
            frame = self._frame()
            if frame is None:
                self._fill()
                continue
            fin, opcode, payload = frame
            if opcode == _CLOSE:
                self._send(_CLOSE, payload[:2])
                raise WebSocketClosed("websocket closed by the server")
            if opcode == _PING:
                self._send(_PONG, payload)
                continue
            if opcode == _PONG:
                continue
            if opcode:  # first frame of a message (continuations carry opcode 0)
                self._opcode, self._parts = opcode, []
            self._parts.append(payload)
            if fin:
                data = b"".join(self._parts)
                return data.decode("utf-8") if self._opcode == _TEXT else data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode, 0x80 | len(payload)])  # control frames: payload < 126 bytes
        try:
            self._sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        except OSError:
            pass  # the connection is going away anyway

    def close(self) -> None:
        self._send(_CLOSE, struct.pack(">H", 1000))
        self._sock.close()
