"""Entrypoint wrapper: download the model from MODEL_URL to MODEL_PATH, then exec the image's CMD.

Usage, as an image's entrypoint (chapter 6, the "downloaded" way of packaging a model):

    COPY fetch_model.py /usr/local/bin/fetch_model.py
    ENTRYPOINT ["python", "/usr/local/bin/fetch_model.py"]

`docker run IMAGE` then runs `python fetch_model.py <the CMD>`: the download first, then the CMD in its place.
Environment: MODEL_URL and MODEL_PATH (both needed), MODEL_SHA256 (optional: the file must have this sha256).
Any failure (no download, a wrong sha256, a missing setting) stops the container with a message, before the
service starts.
"""

import hashlib
import os
import sys
import time
import urllib.request

ATTEMPTS = 20  # the model server may still be starting: retry for about 10 s, then give up
PAUSE_S = 0.5  # between two attempts


def download(url: str, attempts: int = ATTEMPTS, pause_s: float = PAUSE_S) -> bytes:
    """The body of `url`, asking up to `attempts` times; exits the program when every attempt failed."""
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read()
        except OSError as exc:  # refused, timed out, or an HTTP error status (HTTPError is an OSError too)
            print(f"fetch_model: attempt {attempt}: {url}: {exc}", flush=True)
            if attempt < attempts:
                time.sleep(pause_s)
    sys.exit(f"fetch_model: could not download the model from {url}")


def checked_sha256(data: bytes, url: str, expected: str | None) -> str:
    """The sha256 of `data`; exits the program when `expected` is given and differs."""
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected.lower():
        sys.exit(f"fetch_model: {url} has sha256 {digest}, expected {expected}")
    return digest


def main(command: list[str], environ=os.environ) -> None:
    """Download, check and save the model, then replace this process with `command`."""
    url, path = environ.get("MODEL_URL"), environ.get("MODEL_PATH")
    if not url or not path:
        sys.exit("fetch_model: set MODEL_URL (where to download the model) and MODEL_PATH (where to save it)")
    if not command:
        sys.exit("fetch_model: no command to run after the download (the image has no CMD?)")
    data = download(url)
    digest = checked_sha256(data, url, environ.get("MODEL_SHA256"))
    with open(path, "wb") as f:
        f.write(data)
    print(f"fetch_model: {len(data)} bytes from {url} -> {path} (sha256 {digest[:12]})", flush=True)
    # exec, not a child process: the CMD takes over this process, stays PID 1 and gets `docker stop`'s SIGTERM.
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
