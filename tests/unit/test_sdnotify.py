"""systemd notify protocol: what a real listening socket receives."""

from __future__ import annotations

import os
import secrets
import socket

import pytest

from appliance.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


def test_messages_reach_the_socket_and_the_variables_leave_the_environment(listener):
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid()), "OTHER": "1"}
    notifier = Notifier(env)
    assert env == {"OTHER": "1"}, "children must not inherit the right to notify"
    assert notifier.enabled and notifier.watchdog_interval == 2.0

    assert notifier.ready("serving")
    assert sock.recv(1024) == b"READY=1\nSTATUS=serving"
    notifier.status("3 tenant workers")
    assert sock.recv(1024) == b"STATUS=3 tenant workers"
    notifier.watchdog()
    assert sock.recv(1024) == b"WATCHDOG=1"
    notifier.stopping()
    assert sock.recv(1024) == b"STOPPING=1\nSTATUS=stopping"
    notifier.close()


def test_abstract_socket_address():
    name = "tandem-test-" + secrets.token_hex(4)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(1024) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready() is False and notifier.watchdog() is False and notifier.stopping() is False


def test_watchdog_meant_for_another_process_is_ignored(listener):
    _, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None and notifier.watchdog() is False


def test_a_vanished_listener_is_reported_once_and_never_raises(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False
    assert notifier.status("x") is False
    warnings = [r for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(warnings) == 1
