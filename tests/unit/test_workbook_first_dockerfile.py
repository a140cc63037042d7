"""Chapter 2's helpers: steps paired with layers, `docker port`, and polling (no engine needed)."""

from __future__ import annotations

import pytest

from workbook.first_dockerfile import human_size, instruction_of, layer_rows, parse_port, wait_for
from workbook.layers import Step


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


def test_layer_rows_fold_the_base_image_and_count_the_layers_each_instruction_adds():
    steps = [  # oldest first, as workbook.layers.image_steps returns them
        Step("ADD rootfs.tar /", True, 193_000_000),
        Step('CMD ["bash"]', False, 0),
        Step("ENV A=1", False, 0),
        Step("WORKDIR /app", True, 1536),
        Step("RUN pip install flask", True, 275_000_000),
        Step('CMD ["python" "app.py"]', False, 0),
    ]
    rows = layer_rows(steps, base=(2, "python:3.11-slim"))
    assert [(r.instruction.split()[0], r.layers, r.size) for r in rows] == [
        ("FROM", 1, 193_000_000),
        ("ENV", 0, 0),
        ("WORKDIR", 1, 1536),
        ("RUN", 1, 275_000_000),
        ("CMD", 0, 0),
    ]
    assert rows[0].instruction == "FROM python:3.11-slim"
    assert len(layer_rows(steps)) == 6


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
