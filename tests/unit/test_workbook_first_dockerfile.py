"""Chapter 2's helpers: reading `docker history`, `docker port`, and polling (no engine needed)."""

from __future__ import annotations

import pytest

from workbook.first_dockerfile import human_size, instruction_of, layer_rows, parse_port, wait_for


@pytest.mark.parametrize(
    ("created_by", "instruction"),
    [
        ("/bin/sh -c #(nop)  ENV PYTHONUNBUFFERED=1", "ENV PYTHONUNBUFFERED=1"),
        ("/bin/sh -c #(nop) WORKDIR /app", "WORKDIR /app"),
        ('/bin/sh -c #(nop)  CMD ["python" "app.py"]', 'CMD ["python" "app.py"]'),
        ("/bin/sh -c pip install --no-cache-dir -r req.txt", "RUN pip install --no-cache-dir -r req.txt"),
        ("RUN /bin/sh -c pip install -r requirements.txt # buildkit", "RUN pip install -r requirements.txt"),
        ("COPY app/ . # buildkit", "COPY app/ ."),
    ],
)
def test_instruction_of_recovers_the_dockerfile_line(created_by, instruction):
    assert instruction_of(created_by) == instruction


def test_layer_rows_count_the_layers_each_instruction_adds():
    history = [  # oldest first, as image_layers passes it
        ("sha256:base", 193_000_000, ""),
        ("sha256:env", 0, "/bin/sh -c #(nop)  ENV A=1"),
        ("sha256:workdir", 0, "/bin/sh -c #(nop) WORKDIR /app"),
        ("sha256:pip", 275_000_000, "/bin/sh -c pip install flask"),
        ("sha256:cmd", 0, '/bin/sh -c #(nop)  CMD ["python" "app.py"]'),
    ]
    counts = {"sha256:base": 1, "sha256:env": 1, "sha256:workdir": 2, "sha256:pip": 3, "sha256:cmd": 3}
    rows = layer_rows(history, counts, base=("sha256:base", "python:3.11-slim"))
    assert [(r.instruction.split()[0], r.layers) for r in rows] == [
        ("FROM", 1),
        ("ENV", 0),
        ("WORKDIR", 1),
        ("RUN", 1),
        ("CMD", 0),
    ]
    assert rows[0].size == 193_000_000


def test_layer_rows_say_unknown_where_the_history_has_no_image_ids():
    history = [("<missing>", 5, "ADD rootfs.tar /"), ("<missing>", 0, 'CMD ["bash"]'), ("sha256:top", 10, "RUN x")]
    rows = layer_rows(history, {"sha256:top": 3})
    assert [r.layers for r in rows] == [None, None, None]


def test_human_size_uses_decimal_units_like_docker():
    assert human_size(0) == "0 B"
    assert human_size(4350) == "4.3 kB"
    assert human_size(275_300_000) == "275.3 MB"
    assert human_size(2_500_000_000) == "2.5 GB"


def test_parse_port_takes_the_ipv4_line():
    assert parse_port("127.0.0.1:32768\n") == "127.0.0.1:32768"
    assert parse_port("[::1]:32768\n127.0.0.1:32769") == "127.0.0.1:32769"
    with pytest.raises(ValueError, match="no IPv4 address"):
        parse_port("Error: No public port '5000/tcp' published for c")


def test_wait_for_returns_once_the_check_passes_and_times_out_with_the_hint():
    calls = iter([ConnectionError("refused"), False, True])

    def check():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_for(check, timeout=5, what="the service", interval=0.01) < 5
    with pytest.raises(TimeoutError, match="Hint: read the logs"):
        wait_for(lambda: False, timeout=0.05, what="the service", hint="read the logs", interval=0.01)
