# A broker in a stream, for tests of tap.mqtt and tap.app without a socket (MicroPython-safe):
# it reads the packets the client writes and queues the broker's answers. ``on_publish(topic,
# payload)`` returns the messages to deliver in answer, as (topic, payload) pairs; ``retained``
# maps a topic to a message delivered when it is subscribed to. ``log`` records the exchange as
# ("out", bytes) / ("in", bytes), so another runtime can replay it (PlaybackStream).


def _remaining(length):
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def packet(first, body):
    return bytes((first,)) + _remaining(len(body)) + body


def publish_packet(topic, payload, packet_id):
    topic = topic.encode()
    return packet(0x32, len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big") + bytes(payload))


class BrokerStream:
    def __init__(self, on_publish=None, retained=None):
        self.on_publish = on_publish
        self.retained = retained or {}
        self.inbound = bytearray()
        self.pending = bytearray()
        self.log = []
        self.published = []  # (topic, payload) the client sent
        self.next_id = 1
        self.connected = True

    def deliver(self, topic, payload):
        data = publish_packet(topic, payload, self.next_id)
        self.next_id += 1
        self.inbound += data
        self.log.append(("in", data))

    def _answer(self, data):
        self.inbound += data
        self.log.append(("in", data))

    def write(self, data):
        if not self.connected:
            raise OSError("connection lost")
        self.log.append(("out", bytes(data)))
        self.pending += data
        while len(self.pending) >= 2:
            length, shift, i = 0, 0, 1
            while True:
                byte = self.pending[i]
                length |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
            if len(self.pending) < i + length:
                return
            first, body = self.pending[0], bytes(self.pending[i:i + length])
            self.pending = self.pending[i + length:]
            self._client_packet(first, body)

    def _client_packet(self, first, body):
        kind = first & 0xF0
        if kind == 0x10:
            self._answer(b"\x20\x02\x00\x00")
        elif kind == 0x80:
            topic_length = int.from_bytes(body[2:4], "big")
            topic = body[4:4 + topic_length].decode()
            self._answer(packet(0x90, body[:2] + b"\x01"))
            if topic in self.retained:
                self.deliver(topic, self.retained[topic])
        elif kind == 0x30:
            topic_length = int.from_bytes(body[:2], "big")
            topic = body[2:2 + topic_length].decode()
            start = 2 + topic_length
            qos = (first >> 1) & 3
            if qos:
                self._answer(packet(0x40, body[start:start + 2]))
                start += 2
            payload = body[start:]
            self.published.append((topic, payload))
            if self.on_publish is not None:
                for reply_topic, reply in self.on_publish(topic, payload):
                    self.deliver(reply_topic, reply)

    def readinto(self, buffer):
        if not self.inbound:
            return 0
        count = min(len(buffer), len(self.inbound))
        buffer[:count] = self.inbound[:count]
        self.inbound = self.inbound[count:]
        return count

    def readable(self, timeout_ms):
        return bool(self.inbound)


class PlaybackStream:
    """Replays a BrokerStream's log: each inbound block becomes readable once the client has
    written everything logged before it; ``mismatches`` counts writes that differ from the log."""

    def __init__(self, log):
        self.log = log
        self.position = 0
        self.written = bytearray()
        self.inbound = bytearray()
        self.mismatches = 0
        self._release()

    def _release(self):
        while self.position < len(self.log):
            direction, data = self.log[self.position]
            if direction == "in":
                self.inbound += data
            elif len(self.written) >= len(data):
                if bytes(self.written[:len(data)]) != data:
                    self.mismatches += 1
                self.written = self.written[len(data):]
            else:
                return
            self.position += 1

    def write(self, data):
        self.written += data
        self._release()

    def readinto(self, buffer):
        if not self.inbound:
            return 0
        count = min(len(buffer), len(self.inbound))
        buffer[:count] = self.inbound[:count]
        self.inbound = self.inbound[count:]
        return count

    def readable(self, timeout_ms):
        return bool(self.inbound)

    def finished(self):
        return self.position == len(self.log) and not self.written and not self.inbound
