"""MQTT 5 packets: the few a subscriber and a QoS 1 publisher need, encoded and decoded.

Only what Rapport uses is here: CONNECT/CONNACK, SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK, PUBLISH (QoS 0
and 1), PUBACK, PINGREQ/PINGRESP and DISCONNECT. :func:`parse` reads every complete packet from a buffer
at once, so a burst of thousands of messages costs one pass over the bytes, not one read per packet.

>>> packets, used = parse(publish("rapport/devices/SN-1/telemetry", b"{}", packet_id=7))
>>> packets[0]
Incoming(topic='rapport/devices/SN-1/telemetry', payload=b'{}', packet_id=7)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

#: the largest Receive Maximum MQTT allows
MAX_RECEIVE = 65_535
_REMAINING_LENGTH_LIMIT = 268_435_455

_U16 = struct.Struct("!H")
_PUBACK = struct.Struct("!BBH")
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

# Property identifiers (MQTT 5, section 2.2.2.2) by the type of their value.
_BYTE_PROPS = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
_U16_PROPS = frozenset({0x13, 0x21, 0x22, 0x23})
_U32_PROPS = frozenset({0x02, 0x11, 0x18, 0x27})
_VARINT_PROPS = frozenset({0x0B})
_TEXT_PROPS = frozenset({0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F})
_BINARY_PROPS = frozenset({0x09, 0x16})
_PAIR_PROPS = frozenset({0x26})
SESSION_EXPIRY, RECEIVE_MAXIMUM, SERVER_KEEP_ALIVE, REASON_STRING, MAXIMUM_QOS = 0x11, 0x21, 0x13, 0x1F, 0x24

#: reason codes worth a word in a log line (MQTT 5, section 2.4)
REASONS = {
    0x00: "success",
    0x04: "disconnect with will message",
    0x10: "no matching subscribers",
    0x11: "no subscription existed",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x93: "receive maximum exceeded",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def reason(code: int) -> str:
    """A reason code as words, e.g. ``0x87 not authorized``."""
    return f"0x{code:02X} {REASONS.get(code, 'unknown reason')}"


class ProtocolError(Exception):
    """The other side sent bytes that are not MQTT 5."""


class Incoming(NamedTuple):
    """A PUBLISH as received: its topic, its payload and its packet id (0 for QoS 0: nothing to ack)."""

    topic: str
    payload: bytes
    packet_id: int


@dataclass(frozen=True, slots=True)
class Control:
    """Any other packet: its type, the flags of its first byte, and its body after the fixed header."""

    kind: int
    flags: int
    body: bytes


@dataclass(slots=True)
class Ack:
    """A CONNACK, SUBACK, UNSUBACK, PUBACK or DISCONNECT read into its parts."""

    packet_id: int = 0
    codes: list[int] = field(default_factory=list)
    properties: dict[int, object] = field(default_factory=dict)
    session_present: bool = False


# --------------------------------------------------------------------------- encoding


def varint(value: int) -> bytes:
    """A Variable Byte Integer (MQTT 5, section 1.5.5)."""
    if not 0 <= value <= _REMAINING_LENGTH_LIMIT:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _text(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    if len(data) > 0xFFFF:
        raise ValueError("an MQTT string is at most 65,535 bytes long")
    return _U16.pack(len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def _properties(values: dict[int, int]) -> bytes:
    out = bytearray()
    for key, value in values.items():
        out.append(key)
        if key in _U16_PROPS:
            out += _U16.pack(value)
        elif key in _U32_PROPS:
            out += struct.pack("!I", value)
        else:  # pragma: no cover - only integer properties are sent
            raise ValueError(f"property 0x{key:02X} is not sent by this client")
    return varint(len(out)) + bytes(out)


def connect(
    client_id: str,
    *,
    clean_start: bool,
    keepalive: int,
    session_expiry: int = 0,
    receive_maximum: int = MAX_RECEIVE,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """A CONNECT packet (no will). ``session_expiry`` seconds keep the session while disconnected."""
    flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    props: dict[int, int] = {RECEIVE_MAXIMUM: receive_maximum}
    if session_expiry:
        props[SESSION_EXPIRY] = session_expiry
    body = _text("MQTT") + bytes((5, flags)) + _U16.pack(keepalive) + _properties(props) + _text(client_id)
    if username is not None:
        body += _text(username)
    if password is not None:
        body += _text(password)
    return _packet(CONNECT << 4, body)


def subscribe(packet_id: int, filters: list[str], *, qos: int = 1) -> bytes:
    """A SUBSCRIBE packet for ``filters``, each at most at ``qos``."""
    body = _U16.pack(packet_id) + b"\x00" + b"".join(_text(f) + bytes((qos,)) for f in filters)
    return _packet(SUBSCRIBE << 4 | 0x02, body)


def unsubscribe(packet_id: int, filters: list[str]) -> bytes:
    """An UNSUBSCRIBE packet for ``filters``."""
    body = _U16.pack(packet_id) + b"\x00" + b"".join(_text(f) for f in filters)
    return _packet(UNSUBSCRIBE << 4 | 0x02, body)


def publish(topic: str, payload: bytes, *, packet_id: int = 0, dup: bool = False) -> bytes:
    """A PUBLISH packet: QoS 1 with a packet id, QoS 0 without."""
    qos = 1 if packet_id else 0
    first = PUBLISH << 4 | (0x08 if dup else 0) | qos << 1
    header = _text(topic) + (_U16.pack(packet_id) if packet_id else b"") + b"\x00"
    return bytes((first,)) + varint(len(header) + len(payload)) + header + payload


def pubacks(packet_ids: list[int]) -> bytes:
    """PUBACKs (success) for ``packet_ids``, in that order, as one write."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, packet_id) for packet_id in packet_ids])


def disconnect(code: int = 0, *, session_expiry: int | None = None) -> bytes:
    """A DISCONNECT; the normal one (0) keeps a session that has an expiry interval, unless
    ``session_expiry`` shortens it (0: the session ends now)."""
    if session_expiry is not None:
        return _packet(DISCONNECT << 4, bytes((code,)) + _properties({SESSION_EXPIRY: session_expiry}))
    return DISCONNECT_PACKET if code == 0 else _packet(DISCONNECT << 4, bytes((code,)) + b"\x00")


# --------------------------------------------------------------------------- decoding


def parse(buffer: bytes | bytearray) -> tuple[list[Incoming | Control], int]:
    """Every complete packet at the start of ``buffer``, and how many bytes they took."""
    packets: list[Incoming | Control] = []
    size = len(buffer)
    pos = 0
    while size - pos >= 2:
        first = buffer[pos]
        length = 0
        shift = 0
        i = pos + 1
        while True:
            if i >= size:
                return packets, pos
            byte = buffer[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("remaining length longer than four bytes")
        end = i + length
        if end > size:
            break
        if first >> 4 == PUBLISH:
            qos = (first >> 1) & 0x03
            if qos > 1:
                raise ProtocolError(f"PUBLISH at QoS {qos}, but the subscription asked for at most 1")
            topic_end = i + 2 + (buffer[i] << 8 | buffer[i + 1])
            topic = bytes(buffer[i + 2 : topic_end]).decode("utf-8", "replace")
            j = topic_end
            packet_id = 0
            if qos:
                packet_id = buffer[j] << 8 | buffer[j + 1]
                j += 2
            props, j = _varint_at(buffer, j)
            j += props
            if j > end:
                raise ProtocolError("PUBLISH shorter than its own header")
            packets.append(Incoming(topic, bytes(buffer[j:end]), packet_id))
        else:
            packets.append(Control(first >> 4, first & 0x0F, bytes(buffer[i:end])))
        pos = end
    return packets, pos


def _varint_at(buffer: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(buffer):
            raise ProtocolError("truncated variable byte integer")
        byte = buffer[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer longer than four bytes")


def _read_properties(body: bytes, pos: int) -> tuple[dict[int, object], int]:
    length, pos = _varint_at(body, pos)
    end = pos + length
    if end > len(body):
        raise ProtocolError("properties run past the end of the packet")
    props: dict[int, object] = {}
    while pos < end:
        key, pos = _varint_at(body, pos)
        if key in _BYTE_PROPS:
            props[key] = body[pos]
            pos += 1
        elif key in _U16_PROPS:
            props[key] = _U16.unpack_from(body, pos)[0]
            pos += 2
        elif key in _U32_PROPS:
            props[key] = struct.unpack_from("!I", body, pos)[0]
            pos += 4
        elif key in _VARINT_PROPS:
            props[key], pos = _varint_at(body, pos)
        elif key in _TEXT_PROPS or key in _BINARY_PROPS:
            size = _U16.unpack_from(body, pos)[0]
            raw = body[pos + 2 : pos + 2 + size]
            props[key] = raw.decode("utf-8", "replace") if key in _TEXT_PROPS else raw
            pos += 2 + size
        elif key in _PAIR_PROPS:
            for _ in range(2):
                pos += 2 + _U16.unpack_from(body, pos)[0]
        else:
            raise ProtocolError(f"unknown property 0x{key:02X}")
    if pos != end:
        raise ProtocolError("a property runs past the end of the properties")
    return props, end


def read_ack(packet: Control) -> Ack:
    """The parts of a CONNACK, SUBACK, UNSUBACK, PUBACK or DISCONNECT."""
    body = packet.body
    try:
        if packet.kind == CONNACK:
            props, _ = _read_properties(body, 2)
            return Ack(codes=[body[1]], properties=props, session_present=bool(body[0] & 0x01))
        if packet.kind in (SUBACK, UNSUBACK):
            props, pos = _read_properties(body, 2)
            return Ack(packet_id=_U16.unpack_from(body, 0)[0], codes=list(body[pos:]), properties=props)
        if packet.kind == PUBACK:
            packet_id = _U16.unpack_from(body, 0)[0]
            if len(body) == 2:
                return Ack(packet_id=packet_id, codes=[0])
            props = _read_properties(body, 3)[0] if len(body) > 3 else {}
            return Ack(packet_id=packet_id, codes=[body[2]], properties=props)
        if packet.kind == DISCONNECT:
            if not body:
                return Ack(codes=[0])
            props = _read_properties(body, 1)[0] if len(body) > 1 else {}
            return Ack(codes=[body[0]], properties=props)
    except (IndexError, struct.error) as exc:
        raise ProtocolError(f"packet type {packet.kind} is truncated") from exc
    raise ProtocolError(f"packet type {packet.kind} is not an acknowledgement")
