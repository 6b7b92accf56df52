"""A tiny app for Slipway's tests: answers "hello python" on port 8000."""

import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello python\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        print("request:", self.command, self.path, flush=True)


if __name__ == "__main__":
    # PID 1 gets no default SIGTERM action: without a handler each stop waits 10 s
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening on 8000", flush=True)
    HTTPServer(("0.0.0.0", 8000), Hello).serve_forever()
