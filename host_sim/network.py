"""A TCP forwarder between a terminal and the broker that a test can cut and restore, like a
station's Wi-Fi dropping out: established connections are reset and new ones refused."""

import socket
import threading

from transport.mosquitto_process import free_port


class CuttableLink:
    def __init__(self, target_port: int, *, host: str = "127.0.0.1"):
        self.host, self.target_port = host, target_port
        self.port = free_port(host)
        self._server = socket.create_server((host, self.port))
        self._is_cut = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="cuttable-link", daemon=True).start()

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until ``restore``."""
        self._is_cut.set()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            # shutdown() wakes the pump thread blocked in recv() on it; close() alone would not.
            for end in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):
                try:
                    end()
                except OSError:
                    pass

    def restore(self) -> None:
        self._is_cut.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._is_cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # the timeout was for connecting; an idle MQTT link is normal
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets |= {client, upstream}
            if self._is_cut.is_set():  # cut while this connection was being set up
                self.cut()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown() first: the other direction's thread is blocked in recv() on one of these,
            # and a plain close() would leave the connection half alive until that call returns.
            for sock in (source, sink):
                for end in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):
                    try:
                        end()
                    except OSError:
                        pass
