"""A minimal MQTT 3.1.1 client for the tap: what it needs and nothing more.

CONNECT with a persistent session (clean_session 0), login and a retained last will; SUBSCRIBE at
QoS 1; PUBLISH at QoS 0 or 1 (waiting for the PUBACK); incoming PUBLISH at QoS 0 or 1 (acknowledged
after the handler ran, so a message the tap did not take is delivered again); PINGREQ; DISCONNECT.
The connection is any object with ``readinto(buffer)``, ``write(data)`` and ``readable(timeout_ms)`` — a
socket (tap.net) on a board, a scripted byte stream in a test — so the client chooses no I/O.

Written here rather than vendored from micropython-lib's umqtt.simple: that one has no persistent
session handling beyond a flag, drops the packet id of a PUBACK it did not expect and cannot be
given a stream to test against.
"""

import gc

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    0x10, 0x20, 0x30, 0x40, 0x82, 0x90, 0xC0, 0xD0, 0xE0)
MAX_PACKET_BYTES = 64 * 1024  # above the largest fieldpos broadcast (60 KiB) plus the topic


class MqttError(Exception):
    pass


def _string(data):
    if type(data) is str:
        data = data.encode()
    return len(data).to_bytes(2, "big") + data


def _remaining_length(length):
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


class MqttClient:
    def __init__(self, stream, client_id, username=None, password=None, keepalive_s=60):
        self.stream = stream
        self.client_id = client_id
        self.username = username
        self.password = password
        self.keepalive_s = keepalive_s
        self.on_message = None  # (topic str, payload bytes) -> None
        self._packet_id = 0

    # ------------------------------------------------------------ wire
    def _read_exact(self, count):
        # One buffer per packet, filled in place: in a small heap, growing a bytes object piece by
        # piece needs room for two copies at once.
        if count > 64:
            gc.collect()
        data = bytearray(count)
        view = memoryview(data)
        got = 0
        while got < count:
            n = self.stream.readinto(view[got:])
            if not n:
                raise MqttError("connection closed")
            got += n
        return data

    def _send(self, packet_type, body):
        self.stream.write(bytes((packet_type,)) + _remaining_length(len(body)) + body)

    def _next_id(self):
        self._packet_id = self._packet_id % 65535 + 1
        return self._packet_id

    def read_packet(self):
        """(first byte, body) of the next packet from the broker."""
        first = self._read_exact(1)[0]
        length = 0
        shift = 0
        while True:
            byte = self._read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MqttError("malformed remaining length")
        if length > MAX_PACKET_BYTES:
            raise MqttError("packet of " + str(length) + " bytes")
        return first, self._read_exact(length) if length else b""

    # ------------------------------------------------------------ session
    def connect(self, will_topic=None, will_payload=b"", will_retain=True):
        """Log in with a persistent session; True when the broker still held one."""
        flags = 0x00  # clean_session 0: the broker keeps our subscriptions and QoS 1 messages
        payload = _string(self.client_id)
        if will_topic:
            flags |= 0x04 | 0x08 | (0x20 if will_retain else 0)  # will at QoS 1
            payload += _string(will_topic) + _string(will_payload)
        if self.username is not None:
            flags |= 0x80
            payload += _string(self.username)
        if self.password is not None:
            flags |= 0x40
            payload += _string(self.password)
        header = _string("MQTT") + bytes((4, flags)) + self.keepalive_s.to_bytes(2, "big")
        self._send(CONNECT, header + payload)
        first, body = self.read_packet()
        if first != CONNACK or len(body) != 2:
            raise MqttError("expected CONNACK")
        if body[1] != 0:
            raise MqttError("connection refused, code " + str(body[1]))
        return bool(body[0] & 1)

    def subscribe(self, topic):
        packet_id = self._next_id()
        self._send(SUBSCRIBE, packet_id.to_bytes(2, "big") + _string(topic) + b"\x01")
        while True:
            first, body = self.read_packet()
            if first == SUBACK and body[:2] == packet_id.to_bytes(2, "big"):
                if body[2:3] == b"\x80":
                    raise MqttError("subscription to " + topic + " refused")
                return
            self._handle(first, body)

    def publish(self, topic, payload, qos=1, retain=False):
        """Send one message; at QoS 1, return once the broker acknowledged it (messages that
        arrive meanwhile go to on_message)."""
        body = _string(topic)
        packet_id = None
        if qos:
            packet_id = self._next_id()
            body += packet_id.to_bytes(2, "big")
        self._send(PUBLISH | (qos << 1) | (1 if retain else 0), body + payload)
        while packet_id is not None:
            first, reply = self.read_packet()
            if first == PUBACK and reply[:2] == packet_id.to_bytes(2, "big"):
                return
            self._handle(first, reply)

    def ping(self):
        self._send(PINGREQ, b"")

    def wait(self, timeout_ms=None):
        """Handle the next packet from the broker (a message goes to on_message); None when none
        came within ``timeout_ms`` (the stream's ``readable(timeout_ms)`` says)."""
        if timeout_ms is not None and not self.stream.readable(timeout_ms):
            return None
        first, body = self.read_packet()
        self._handle(first, body)
        return first & 0xF0

    def disconnect(self):
        self._send(DISCONNECT, b"")

    def _handle(self, first, body):
        kind = first & 0xF0
        if kind == PUBLISH:
            qos = (first >> 1) & 3
            topic_length = int.from_bytes(body[:2], "big")
            topic = bytes(body[2:2 + topic_length]).decode()
            start = 2 + topic_length
            packet_id = None
            if qos:
                packet_id = body[start:start + 2]
                start += 2
            if self.on_message is not None:
                self.on_message(topic, memoryview(body)[start:])
            if qos == 1:
                self._send(PUBACK, packet_id)
            elif qos == 2:
                raise MqttError("QoS 2 is not used by fieldpos")
        # PINGRESP, a late PUBACK or SUBACK: nothing to do
