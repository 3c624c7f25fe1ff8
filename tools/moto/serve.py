"""Runs moto's server on 127.0.0.1 for the project's tests, devstack and demo.

Binds a free port on 127.0.0.1 only (or the --port given), waits until the server answers,
prints one line `READY <port>` on standard output, then serves until its standard input
reaches end of file (the parent exited, crashed or was interrupted: the pipe closes with it)
or it receives SIGINT or SIGTERM. So a moto server never outlives the process that started it.

DynamoDB requests are served one at a time. moto's server handles requests on threads and
does not isolate them: two concurrent conditional writes (or transactions) on one item can
both pass their condition, which DynamoDB never allows (a conditional write is atomic, a
transaction serializable). Admission control's counter relies on exactly that guarantee, so
the local stack must have it too. Other services are served concurrently as before.
"""

import argparse
import signal
import sys
import threading
import time
import urllib.request

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

#: The X-Amz-Target prefix of every DynamoDB API call.
DYNAMODB_TARGET = "DynamoDB_20120810."


class SerializedDynamoDB:
    """WSGI middleware: DynamoDB calls run one at a time, whole (the response included)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


class IsolatedMotoServer(ThreadedMotoServer):
    """moto's threaded server with DynamoDB's isolation (see the module's docstring)."""

    def _server_entry(self) -> None:
        app = SerializedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def wait_until_healthy(port: int, deadline_s: float) -> None:
    url = f"http://127.0.0.1:{port}/moto-api/data.json"
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"moto did not answer on 127.0.0.1:{port} within {deadline_s}s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ignore-stdin", action="store_true",
                        help="serve until a signal, not until stdin closes")
    args = parser.parse_args()

    server = IsolatedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    wait_until_healthy(port, 30.0)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if not args.ignore_stdin:
        def watch_stdin() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"READY {port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
