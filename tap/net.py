"""A TCP connection to the broker as the MQTT client's stream (tap.mqtt): plain TCP with
TCP_NODELAY (PROTOCOL.md §1). The same code on a board (after Wi-Fi is up) and on the unix port."""

import select
import socket


class SocketStream:
    def __init__(self, sock):
        self.sock = sock
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._send = getattr(sock, "sendall", None) or sock.write
        self._readinto = getattr(sock, "recv_into", None) or sock.readinto

    def readinto(self, buffer):
        return self._readinto(buffer)

    def write(self, data):
        self._send(data)

    def readable(self, timeout_ms):
        return bool(self._poller.poll(max(0, int(timeout_ms))))

    def close(self):
        self.sock.close()


def connect(host, port):
    address = socket.getaddrinfo(host, port)[0][-1]
    sock = socket.socket()
    sock.connect(address)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # a port without the option: Nagle only delays, it does not lose anything
    return SocketStream(sock)
