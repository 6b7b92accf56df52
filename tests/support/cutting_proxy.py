"""A TCP proxy on loopback that can cut every connection passing through it (a dropped link)."""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``cut()`` resets every open connection.

    New connections are accepted after a cut, so a client that reconnects gets through.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.cuts = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Reset every open connection (RST, as a dropped link); returns how many."""
        with self._lock:
            victims, self._open = self._open, []
            self.cuts += 1
        for sock in victims:  # no close frame, no FIN: the peers see the link die
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv
            sock.close()  # with linger 0: RST
        return len(victims) // 2

    def close(self) -> None:
        self.listener.close()
        self.cut()
