"""One connection to an MQTT 5 broker on asyncio: subscribe, receive in bulk, acknowledge when told to;
publish at QoS 1 with the broker's flow control.

Received messages are never acknowledged by the connection itself: the worker acknowledges them once
their batch is committed, so a crash loses nothing (the broker sends them again). A connection is
used once: after it closes, open a new one (same client id, ``clean_start=False``) to resume the
session.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rapport.mqtt import codec
from rapport.mqtt.codec import Ack, Control, Incoming, ProtocolError
from rapport.settings import Settings


class MqttError(Exception):
    """The broker cannot be reached, refused us, or the connection was lost."""


@dataclass(frozen=True)
class Broker:
    """Where the broker is and how to log in, read from an ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    #: the certificate authorities to trust for TLS (PEM); None: the system's
    ca_file: Path | None = None

    @classmethod
    def configured(cls, settings: Settings) -> Broker:
        """The broker of ``RAPPORT_MQTT_URL``, trusting ``RAPPORT_MQTT_CA_FILE`` for TLS."""
        return cls.from_url(settings.mqtt_url, ca_file=settings.mqtt_ca_file)

    @classmethod
    def from_url(cls, url: str, *, ca_file: Path | None = None) -> Broker:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"not an mqtt:// or mqtts:// URL: {parts.scheme}://{parts.hostname or ''}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            ca_file=ca_file,
        )

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class Connection(asyncio.Protocol):
    """An open MQTT 5 connection. Make one with :func:`open_connection`."""

    def __init__(self, *, keepalive: int) -> None:
        self.keepalive = keepalive
        self.session_present = False
        #: how many unacknowledged QoS 1 messages the broker takes from us at once
        self.send_quota = codec.MAX_RECEIVE
        #: why the connection closed, once it has
        self.close_reason: str | None = None
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._inbox: deque[Incoming] = deque()
        self._wanted = 1
        self._enough = asyncio.Event()
        self._connack: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiting: dict[int, asyncio.Future[Ack]] = {}
        self._next_id = 0
        self._acked: list[tuple[int, int]] = []  # PUBACKs of our own publishes: (packet id, reason)
        self._acked_event = asyncio.Event()
        self._closed = asyncio.Event()
        self._heard = 0.0
        self._pinger: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._heard = asyncio.get_running_loop().time()

    def data_received(self, data: bytes) -> None:
        self._heard = asyncio.get_running_loop().time()
        buffer = self._buffer
        buffer += data
        received = False
        try:
            packets, used = codec.parse(buffer)
            del buffer[:used]
            for packet in packets:
                if type(packet) is Incoming:
                    self._inbox.append(packet)
                    received = True
                else:
                    assert isinstance(packet, Control)
                    self._control(packet)
        except ProtocolError as exc:
            self._fail(f"the broker sent a malformed packet: {exc}", codec.disconnect(0x81))
        if received and len(self._inbox) >= self._wanted:
            self._enough.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_reason is None:
            self.close_reason = f"connection lost: {exc}" if exc else "the broker closed the connection"
        self._transport = None
        if self._pinger is not None:
            self._pinger.cancel()
        error = MqttError(self.close_reason)
        if not self._connack.done():
            self._connack.set_exception(error)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._closed.set()
        self._enough.set()
        self._acked_event.set()

    def _control(self, packet: Control) -> None:
        kind = packet.kind
        if kind == codec.PUBACK:
            ack = codec.read_ack(packet)
            self._acked.append((ack.packet_id, ack.codes[0]))
            self._acked_event.set()
        elif kind == codec.PINGRESP:
            pass
        elif kind == codec.CONNACK:
            if not self._connack.done():
                self._connack.set_result(codec.read_ack(packet))
        elif kind in (codec.SUBACK, codec.UNSUBACK):
            ack = codec.read_ack(packet)
            waiter = self._waiting.pop(ack.packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(ack)
        elif kind == codec.DISCONNECT:
            ack = codec.read_ack(packet)
            said = ack.properties.get(codec.REASON_STRING)
            self.close_reason = f"the broker disconnected: {codec.reason(ack.codes[0])}" + (
                f" ({said})" if said else ""
            )
            self._abort()
        else:
            self._fail(f"unexpected packet type {kind} from the broker", codec.disconnect(0x82))

    # -- state ----------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    @property
    def pending(self) -> int:
        """Messages received and not yet taken by :meth:`receive`."""
        return len(self._inbox)

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _fail(self, why: str, packet: bytes) -> None:
        self.close_reason = why
        self._write(packet)
        self._abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _packet_id(self) -> int:
        for _ in range(codec.MAX_RECEIVE):
            self._next_id = self._next_id % codec.MAX_RECEIVE + 1
            if self._next_id not in self._waiting:
                return self._next_id
        raise MqttError("no free packet id")  # pragma: no cover - needs 65,535 calls in flight

    def _ping(self) -> None:
        if not self.is_open:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._heard > self.keepalive * 1.5:
            self.close_reason = f"the broker did not answer for {self.keepalive * 1.5:.0f} s"
            self._abort()
            return
        self._write(codec.PINGREQ_PACKET)
        self._pinger = loop.call_later(self.keepalive / 2, self._ping)

    # -- receiving --------------------------------------------------------------------------------------

    async def receive(self, limit: int, *, linger: float) -> list[Incoming]:
        """Wait for a message (or for the connection to close), then for up to ``linger`` seconds more
        until ``limit`` have arrived; take and return at most ``limit``. Empty only when closed."""
        inbox = self._inbox
        if not inbox:
            self._wanted = 1
            self._enough.clear()
            if self.is_open:
                await self._enough.wait()
        if inbox and len(inbox) < limit and self.is_open and linger > 0:
            self._wanted = limit
            self._enough.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), linger)
        count = min(limit, len(inbox))
        return [inbox.popleft() for _ in range(count)]

    def ack(self, messages: Iterable[Incoming]) -> None:
        """Acknowledge ``messages`` (received on this connection), in the order they came."""
        ids = [m.packet_id for m in messages if m.packet_id]
        if ids:
            self._write(codec.pubacks(ids))

    async def subscribe(self, filters: list[str], *, qos: int = 1, timeout: float = 10) -> list[int]:
        """Subscribe to ``filters``; the broker's reason code for each (0-2 granted QoS, >= 0x80 refused)."""
        packet_id = self._packet_id()
        packet = codec.subscribe(packet_id, filters, qos=qos)
        return await self._request(packet_id, packet, "SUBSCRIBE", timeout)

    async def unsubscribe(self, filters: list[str], *, timeout: float = 10) -> list[int]:
        """Unsubscribe from ``filters``; the broker's reason code for each (0 removed, 0x11 there was none).
        What the session had queued already stays queued."""
        packet_id = self._packet_id()
        return await self._request(packet_id, codec.unsubscribe(packet_id, filters), "UNSUBSCRIBE", timeout)

    async def _request(self, packet_id: int, packet: bytes, kind: str, timeout: float) -> list[int]:
        """Send a (UN)SUBSCRIBE and wait for the broker's acknowledgement of it; its reason codes."""
        waiter: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiting[packet_id] = waiter
        self._write(packet)
        try:
            ack = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise MqttError(f"the broker did not answer {kind} within {timeout} s") from None
        finally:
            self._waiting.pop(packet_id, None)
        return ack.codes

    # -- publishing -------------------------------------------------------------------------------------

    def send(self, packets: bytes) -> None:
        """Write encoded packets (see :func:`codec.publish`) as they are."""
        self._write(packets)

    async def acknowledged(self) -> list[tuple[int, int]]:
        """PUBACKs for our own publishes since the last call, as (packet id, reason code); waits for at
        least one unless the connection is closed."""
        if not self._acked and self.is_open:
            self._acked_event.clear()
            await self._acked_event.wait()
        acked, self._acked = self._acked, []
        return acked

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size() > 4 * 1024 * 1024:
            while self.is_open and transport.get_write_buffer_size() > 1024 * 1024:
                await asyncio.sleep(0.005)

    # -- closing ----------------------------------------------------------------------------------------

    async def close(self, *, end_session: bool = False, timeout: float = 5) -> None:
        """Disconnect normally (the session stays for its expiry interval, or ends now with
        ``end_session``); wait for the socket to close."""
        if self.is_open:
            self.close_reason = self.close_reason or "closed by us"
            self._write(codec.disconnect(session_expiry=0) if end_session else codec.disconnect())
            assert self._transport is not None
            self._transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout)
        if self._transport is not None:
            self._transport.abort()


async def open_connection(
    broker: Broker,
    *,
    client_id: str,
    clean_start: bool = False,
    session_expiry: int = 0,
    receive_maximum: int = codec.MAX_RECEIVE,
    keepalive: int = 30,
    timeout: float = 10,
) -> Connection:
    """Connect and log in to ``broker``; raise :class:`MqttError` with the reason if that fails."""
    loop = asyncio.get_running_loop()
    try:
        context = ssl.create_default_context(cafile=broker.ca_file) if broker.tls else None
    except (OSError, ValueError) as exc:  # not a PEM file of certificates
        raise MqttError(f"cannot trust the certificate authorities in {broker.ca_file}: {exc}") from None
    try:
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                lambda: Connection(keepalive=keepalive),
                broker.host,
                broker.port,
                ssl=context,
                server_hostname=broker.host if context else None,
            ),
            timeout,
        )
    except (OSError, TimeoutError) as exc:
        raise MqttError(f"cannot reach {broker}: {exc or 'timed out'}") from None
    assert connection._transport is not None
    sock = connection._transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection._write(
        codec.connect(
            client_id,
            clean_start=clean_start,
            keepalive=keepalive,
            session_expiry=session_expiry,
            receive_maximum=receive_maximum,
            username=broker.username,
            password=broker.password,
        )
    )
    try:
        connack = await asyncio.wait_for(connection._connack, timeout)
    except TimeoutError:
        connection._abort()
        raise MqttError(f"{broker} did not answer CONNECT within {timeout} s") from None
    code = connack.codes[0]
    if code >= 0x80:
        said = connack.properties.get(codec.REASON_STRING)
        connection._abort()
        raise MqttError(
            f"{broker} refused the connection: {codec.reason(code)}" + (f" ({said})" if said else "")
        )
    connection.session_present = connack.session_present
    quota = connack.properties.get(codec.RECEIVE_MAXIMUM)
    if isinstance(quota, int):
        connection.send_quota = quota
    server_keepalive = connack.properties.get(codec.SERVER_KEEP_ALIVE)
    if isinstance(server_keepalive, int) and server_keepalive > 0:
        connection.keepalive = server_keepalive
    if connection.keepalive > 0:
        connection._pinger = loop.call_later(connection.keepalive / 2, connection._ping)
    return connection
