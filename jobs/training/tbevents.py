"""A minimal TensorBoard event-file writer for scalars (no tensorflow/tensorboard dependency).

The format is TFRecord: each record is `len (u64) | masked crc32c(len) | Event protobuf | masked crc32c(data)`.
An Event carries wall_time (field 1, double), step (2, int64) and either file_version (3) or a Summary (5)
whose Values have a tag (1) and a simple_value (2, float). That is all TensorBoard's scalar dashboard reads,
and it keeps the container's requirements, and this machine's, free of tensorboard.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def encode_event(step: int, wall_time: float, scalars: dict[str, float] | None = None,
                 file_version: str | None = None) -> bytes:
    event = _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(step)
    if file_version is not None:
        event += _bytes_field(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _bytes_field(1, _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", float(value)))
            for tag, value in scalars.items())
        event += _bytes_field(5, summary)
    return event


def record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


class EventWriter:
    """Appends scalar events to `<logdir>/events.out.tfevents.<time>.<host>`, flushed after each write."""

    def __init__(self, logdir: Path) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.path = logdir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._handle = open(self.path, "ab")
        self._write(encode_event(0, time.time(), file_version="brain.Event:2"))

    def _write(self, event: bytes) -> None:
        self._handle.write(record(event))
        self._handle.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if values:
            self._write(encode_event(step, time.time(), scalars=values))

    def close(self) -> None:
        self._handle.close()


def read_scalars(path: Path) -> list[tuple[int, str, float]]:
    """Parse an event file back (tests and `ftops` tooling); raises ValueError on a corrupt record."""
    out: list[tuple[int, str, float]] = []
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != masked_crc(header):
            raise ValueError(f"bad length checksum at byte {pos}")
        payload = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] != masked_crc(payload):
            raise ValueError(f"bad data checksum at byte {pos}")
        pos += 16 + length
        out.extend(_decode_scalars(payload))
    return out


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, value


def _decode_scalars(event: bytes) -> list[tuple[int, str, float]]:
    step, summary = 0, None
    for field, value in _fields(event):
        if field == 2:
            step = value
        elif field == 5:
            summary = value
    out = []
    for field, value in _fields(summary or b""):
        if field == 1:
            parts = dict(_fields(value))
            out.append((step, parts[1].decode(), struct.unpack("<f", parts[2])[0]))
    return out
