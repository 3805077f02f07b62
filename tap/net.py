"""A connection to the broker as the MQTT client's stream (tap.mqtt): TCP with TCP_NODELAY
(PROTOCOL.md §1), in TLS when the bundle names the park's CA (``broker.tls_ca``, the PEM that
``fieldpos provision --tls-ca`` put there, as for a Pi terminal). The broker's certificate must
chain to that CA and name the host the tap dials: the tap trusts no other CA (it carries none), so
a broker of another CA is refused at the handshake, before the tap sends its login. The same code
on a board (after Wi-Fi is up) and on the unix port, whose ``ssl`` is MicroPython's over mbedTLS.
"""

import binascii
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


class TlsError(OSError):
    """The park's CA in the bundle is not a certificate."""


def certificate_der(pem):
    """The first certificate of a PEM text as DER (MicroPython's ssl takes DER)."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = pem.find(begin)
    stop = pem.find(end, start + 1)
    if start < 0 or stop < 0:
        raise TlsError("the bundle's tls_ca holds no PEM certificate")
    try:
        return binascii.a2b_base64("".join(pem[start + len(begin):stop].split()))
    except ValueError:
        raise TlsError("the bundle's tls_ca certificate is not base64")


def _tls(sock, host, ca_pem):
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=certificate_der(ca_pem))
    return context.wrap_socket(sock, server_hostname=host)  # the handshake: OSError or ValueError on a bad one


def connect(host, port, tls_ca=None):
    """A stream to the broker; in TLS checked against ``tls_ca`` (the park CA's PEM) if given."""
    address = socket.getaddrinfo(host, port)[0][-1]
    sock = socket.socket()
    sock.connect(address)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # a port without the option: Nagle only delays, it does not lose anything
    if tls_ca:
        try:
            sock = _tls(sock, host, tls_ca)
        except Exception:
            sock.close()
            raise
    return SocketStream(sock)
