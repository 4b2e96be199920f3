"""Job records: digests are stable and order-free; unreadable records mean "redo"."""
from __future__ import annotations

from dataclasses import dataclass

from pegasus.utils.records import digest, file_digest, read_record, write_record


@dataclass
class _Settings:
    size: int
    name: str


def test_digests_depend_on_content_not_key_order():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert digest([_Settings(4, "x")]) == digest([{"size": 4, "name": "x"}])
    assert len(digest("x", length=32)) == 32


def test_file_digest_follows_the_bytes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    first = file_digest(path)
    path.write_bytes(b"abd" * 1000)
    assert file_digest(path) != first


def test_records_round_trip_and_bad_ones_read_as_none(tmp_path):
    path = tmp_path / "sub" / "record.json"
    assert read_record(path) is None
    write_record(path, {"digest": "d", "kept": 3})
    assert read_record(path) == {"digest": "d", "kept": 3}
    path.write_text("{not json")
    assert read_record(path) is None
    path.write_text("[1, 2]")
    assert read_record(path) is None
