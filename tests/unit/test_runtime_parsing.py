"""Why a service never answered, read from recorded /proc/net/tcp and /proc/net/tcp6 text."""

from __future__ import annotations

from grader.checks.on_service import diagnose_not_listening, listening_sockets

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
HEADER6 = (
    "  sl  local_address                         remote_address                        st tx_queue "
    "rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)

# 127.0.0.1:5000 listening, 0.0.0.0:8080 listening, and an established connection from port 5000.
TCP = HEADER + (
    "   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001        0 41331 1 "
    "0000000000000000 100 0 0 10 0\n"
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001        0 41332 1 "
    "0000000000000000 100 0 0 10 0\n"
    "   2: 0100007F:1388 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000 10001        0 41340 1 "
    "0000000000000000 20 4 30 10 -1\n"
)
# ::1:6000 listening.
TCP6 = HEADER6 + (
    "   0: 00000000000000000000000001000000:1770 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000 10001        0 41350 1 0000000000000000 100 0 0 10 0\n"
)


def test_listening_sockets_reads_tcp_and_tcp6():
    assert listening_sockets(TCP + TCP6) == [("loopback", 5000), ("all", 8080), ("loopback", 6000)]


def test_established_and_header_lines_are_not_listening():
    established_only = HEADER + TCP.splitlines(keepends=True)[3]
    assert " 01 " in established_only
    assert listening_sockets(established_only) == []
    assert listening_sockets(HEADER + HEADER6) == []
    assert listening_sockets("") == []


def test_all_interfaces_in_tcp6_and_another_address():
    text = (
        HEADER6
        + (
            "   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 "
            "00:00000000 00000000 0        0 1 1 0000000000000000 100 0 0 10 0\n"
        )
        + HEADER
        + (
            "   0: 0200000A:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0        0 2 1 "
            "0000000000000000 100 0 0 10 0\n"
        )
    )
    assert listening_sockets(text) == [("all", 5000), ("0200000A", 5000)]


def test_loopback_bound_service_is_told_to_bind_all_interfaces():
    message, hint = diagnose_not_listening(listening_sockets(TCP + TCP6), 5000)
    assert "127.0.0.1:5000" in message
    assert "0.0.0.0" in hint
    assert "port=5000" in hint


def test_ipv6_loopback_counts_as_loopback():
    message, hint = diagnose_not_listening(listening_sockets(TCP6), 6000)
    assert "127.0.0.1:6000" in message
    assert "0.0.0.0" in hint


def test_service_on_another_port_is_named():
    sockets = listening_sockets(TCP + TCP6)
    message, hint = diagnose_not_listening(sockets, 7000)
    assert "8080" in message
    assert "not on 7000" in message
    assert "port 7000" in hint


def test_nothing_listening_says_so():
    message, hint = diagnose_not_listening(listening_sockets(HEADER + HEADER6), 5000)
    assert "nothing" in message
    assert "listens" in message
    assert "CMD" in hint


def test_listening_on_the_right_port_but_silent_is_not_called_another_port():
    message, hint = diagnose_not_listening([("all", 5000)], 5000)
    assert "listens on port 5000 but did not answer" in message
    assert "not on 5000" not in message


def test_dockers_embedded_dns_listener_is_not_the_app():
    dns = HEADER + (
        "   0: 0B00007F:9A45 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41331 1 "
        "0000000000000000 100 0 0 10 0\n"
    )
    assert listening_sockets(dns) == []
    message, _ = diagnose_not_listening(listening_sockets(dns), 5000)
    assert "nothing in the container listens" in message
