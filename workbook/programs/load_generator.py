"""Send GET requests to URL until SIGTERM (or MAX_S), from THREADS loops at once; then print them all as JSON.

Usage: python load_generator.py URL MAX_S PAUSE_S [THREADS]. Each loop sends one request after the other,
like one user. Each request records when it started (epoch seconds), the HTTP status (0: no answer at all),
how long it took, and the X-App-Version and X-Served-By response headers.
"""

import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request


def one_request(url: str, timeout: float = 10) -> dict:
    """Send one GET and describe it: t, status, ms, and version and served_by (answered) or error."""
    t0 = time.time()
    row = {"t": round(t0, 3)}
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
            row.update(
                status=answer.status,
                version=answer.headers.get("X-App-Version"),
                served_by=answer.headers.get("X-Served-By"),
            )
    except urllib.error.HTTPError as err:
        row.update(status=err.code, error=f"HTTP {err.code}")
    except Exception as err:  # refused, reset, timed out: the client got no answer
        row.update(status=0, error=f"{type(err).__name__}: {err}")
    row["ms"] = round(1000 * (time.time() - t0), 1)
    return row


def user(url: str, pause: float, deadline: float, stop: threading.Event, samples: list[dict]) -> None:
    """One user: a request, a pause, the next request, until `stop` is set or the deadline (epoch s) passed."""
    while not stop.is_set() and time.time() < deadline:
        samples.append(one_request(url))
        time.sleep(pause)


def send_load(url: str, max_s: float, pause: float, threads: int, stop: threading.Event) -> list[dict]:
    """`threads` users at once, for at most `max_s` seconds or until `stop` is set; every request, oldest first."""
    samples: list[dict] = []
    deadline = time.time() + max_s
    users = [threading.Thread(target=user, args=(url, pause, deadline, stop, samples)) for _ in range(threads)]
    for thread in users:
        thread.start()
    while any(thread.is_alive() for thread in users):
        time.sleep(0.05)  # the main thread stays free to receive SIGTERM
    return sorted(samples, key=lambda row: row["t"])


def main(argv: list[str]) -> None:
    url, max_s, pause = argv[0], float(argv[1]), float(argv[2])
    threads = int(argv[3]) if len(argv) > 3 else 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())  # finish the requests in flight, then report
    samples = send_load(url, max_s, pause, threads, stop)
    print(json.dumps({"url": url, "threads": threads, "samples": samples}))


if __name__ == "__main__":
    main(sys.argv[1:])
