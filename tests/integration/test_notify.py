"""Local wake-ups between processes of one host."""

from __future__ import annotations

import os
import select
import socket
from pathlib import Path

from taskwheel.stores.sqlite.notifier import LocalNotifier


def test_a_notification_reaches_every_listener_of_the_same_database(tmp_path: Path) -> None:
    database = str(tmp_path / "a.db")
    first, second = LocalNotifier(database).listen(), LocalNotifier(database).listen()
    assert first is not None
    assert second is not None
    elsewhere = LocalNotifier(str(tmp_path / "b.db")).listen()
    assert elsewhere is not None
    LocalNotifier(database).notify("default", "jobs")
    for listener in (first, second):
        assert select.select([listener.fileno()], [], [], 2)[0]
        assert listener.read() == [("default", "jobs")]
    assert elsewhere.read() == []
    for listener in (first, second, elsewhere):
        listener.close()


def test_a_dead_listeners_socket_is_removed_and_the_last_one_out_removes_the_directory(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "a.db")
    notifier = LocalNotifier(database)
    live = notifier.listen()
    assert live is not None
    # A socket file left by a process that died: nobody reads it any more.
    orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    orphan_path = str(notifier.directory / "orphan.sock")
    orphan.bind(orphan_path)
    orphan.close()
    notifier.notify("default", "jobs")
    assert not os.path.exists(orphan_path)
    assert live.read() == [("default", "jobs")]
    live.close()
    assert not notifier.directory.exists()
    # A notifier with no listeners sends to nobody, and a new listener recreates the directory.
    notifier.notify("default", "jobs")
    again = notifier.listen()
    assert again is not None
    again.close()
