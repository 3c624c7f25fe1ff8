"""Runs moto's server on 127.0.0.1 for the project's tests, devstack and demo.

Binds a free port on 127.0.0.1 only (or the --port given), waits until the server answers,
prints one line `READY <port>` on standard output, then serves until its standard input
reaches end of file (the parent exited, crashed or was interrupted: the pipe closes with it)
or it receives SIGINT or SIGTERM. So a moto server never outlives the process that started it.
"""

import argparse
import signal
import sys
import threading
import time
import urllib.request

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


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

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
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
