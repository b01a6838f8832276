"""The embedded broker writes each message whole before a consumer can see it."""

from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from paywave import broker


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("queue", "processed", "control"):
        (tmp_path / name).mkdir()
    return tmp_path


def connection(folder: Path) -> Connection:
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    return Connection("filesystem://", transport=broker.Transport, transport_options=options)


def test_no_message_file_is_visible_before_it_is_whole(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_while_writing: list[list[str]] = []
    encode = broker.str_to_bytes

    def writing(text: Any) -> bytes:  # the moment kombu's own would have a `.msg` open
        seen_while_writing.append(sorted(p.name for p in (folder / "queue").glob("*.msg")))
        return encode(text)

    monkeypatch.setattr(broker, "str_to_bytes", writing)
    with connection(folder) as conn, conn.SimpleQueue("payments") as queue:
        queue.put({"payment_id": "p-1", "note": "x" * 100_000})
        received = queue.get(timeout=1)
        received.ack()

    assert seen_while_writing == [[]]
    assert received.payload == {"payment_id": "p-1", "note": "x" * 100_000}
    assert not list((folder / "queue").glob("*.part"))


def test_every_filesystem_url_gets_it() -> None:
    import config.celery_app  # noqa: F401  (where it is registered)

    assert isinstance(Connection("filesystem://").transport, broker.Transport)
