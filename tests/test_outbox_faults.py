"""The outbox under crashes and disk faults (SPEC 5: nothing is lost).

Kills are real (SIGKILL in a child process at each step of a job's writes, a replay and a
migration); full and read-only disks are real where the machine allows a tmpfs mount (else those
tests are skipped, saying so).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.embedded import JsonRecordStore, LocalObjectStore
from storage.outbox import Outbox
from tests.conftest import ROOT
from worker.actions import Worker
from worker.runtime import open_stores

# A child that adds RECORDS records and as many objects to an outbox, then replays them into a
# JSON store and an objects folder ("the remote stores"), killing itself (SIGKILL) at a step.
# It runs from the repository root (cwd), which puts the project's packages on its import path.
CHILD = """
import json, os, signal, sys
from pathlib import Path
from storage.embedded import JsonRecordStore, LocalObjectStore
from storage.outbox import Outbox

root, step, at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
count = 0

def tick(name):
    global count
    if name == step:
        count += 1
        if count == at:
            os.kill(os.getpid(), signal.SIGKILL)

class Remote(JsonRecordStore):
    def put_analysis(self, record):
        tick("before-write")
        super().put_analysis(record)
        tick("after-write")

outbox = Outbox(root / "outbox")
if sys.argv[4] == "add":
    for n in range(int(sys.argv[5])):
        outbox.add_record({"analysis_id": f"r{n}", "n": n})
        outbox.add_object(f"annotated/r{n}.jpg", bytes([n]) * 100, "image/jpeg")
        tick("after-add")
records, objects = Remote(root / "remote"), LocalObjectStore(root / "remote-objects")
while outbox.pending():
    written, failed = outbox.replay(records, objects, limit=3)
    tick("after-replay-batch")
print(json.dumps({"pending": outbox.pending(), "dead": outbox.dead_entries()}))
"""
RECORDS = 6


def child(root: Path, step: str, at: int, *add: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(root), step, str(at), *(add or ("replay",))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def remote_state(root: Path) -> tuple[list[int], list[bytes]]:
    records = JsonRecordStore(root / "remote")
    objects = LocalObjectStore(root / "remote-objects")
    found = [records.get_analysis(f"r{n}") for n in range(RECORDS)]
    return (
        [r["n"] for r in found if r is not None],
        [objects.get(f"annotated/r{n}.jpg") for n in range(RECORDS)],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "at"),
    [
        ("after-add", 1),  # a job's writes: killed after its first entries were committed
        ("after-add", 4),
        ("before-write", 1),  # a replay: killed before a store write,
        ("after-write", 2),  # between a store write and marking it done,
        ("after-write", 6),
        ("after-replay-batch", 1),  # and between batches
        ("after-replay-batch", 3),
    ],
)
def test_a_kill_at_any_step_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, step: str, at: int
) -> None:
    killed = child(tmp_path, step, at, "add", str(RECORDS))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    added = RECORDS if step != "after-add" else at  # entries committed before the kill

    restarted = child(tmp_path, "none", 0)

    assert restarted.returncode == 0, restarted.stderr[-2000:]
    report = json.loads(restarted.stdout.strip().splitlines()[-1])
    assert report == {"pending": 0, "dead": []}
    if added == RECORDS:
        numbers, blobs = remote_state(tmp_path)
        assert numbers == list(range(RECORDS))  # each record once, none lost
        assert blobs == [bytes([n]) * 100 for n in range(RECORDS)]
    else:
        records = JsonRecordStore(tmp_path / "remote")
        assert [records.get_analysis(f"r{n}") is not None for n in range(RECORDS)] == [
            n < added for n in range(RECORDS)
        ]


def legacy_outbox(folder: Path, lines: list[bytes], replayed: str = "0") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entries.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "replayed").write_text(replayed)


def record_line(n: int) -> bytes:
    return json.dumps({"kind": "record", "record": {"analysis_id": f"r{n}", "n": n}}).encode()


@pytest.mark.slow
def test_a_kill_during_the_migration_does_not_take_the_old_outbox_twice(tmp_path: Path) -> None:
    legacy_outbox(tmp_path / "outbox", [record_line(n) for n in range(3)])
    script = (
        "import os, signal, pathlib\n"
        "real = pathlib.Path.unlink\n"
        "def unlink(self, missing_ok=False):\n"
        "    if self.name == 'entries.jsonl':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(self, missing_ok=missing_ok)\n"
        "pathlib.Path.unlink = unlink\n"
        "from storage.outbox import Outbox\n"
        f"Outbox(pathlib.Path({str(tmp_path / 'outbox')!r}))\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "outbox" / "entries.jsonl").exists()  # killed before the clean-up

    outbox = Outbox(tmp_path / "outbox")

    assert outbox.pending() == 3
    assert not (tmp_path / "outbox" / "entries.jsonl").exists()


@pytest.mark.parametrize(
    ("lines", "replayed", "taken", "reason"),
    [
        ([record_line(1), b"\xff\xfe not utf-8", record_line(2)], "0", 2, "UnicodeDecodeError"),
        # a crash during the old clear left the marker past the file: replay all, lose none
        ([record_line(1), record_line(2)], "99", 2, None),
        (
            [
                b'{"kind": "object", "key": "k.jpg", "blob": "../../../etc/passwd", "content_type": "x"}'
            ],
            "0",
            0,
            "its blob name is not a sha256",
        ),
        ([b'{"kind": "shell", "command": "rm -rf /"}'], "0", 0, "unknown kind 'shell'"),
        (
            [b'{"kind": "object", "key": "k.jpg", "blob": "' + b"a" * 64 + b'"}'],
            "0",
            0,
            "FileNotFoundError",
        ),
    ],
)
def test_an_old_outbox_is_taken_over_and_what_is_hostile_set_aside(
    tmp_path: Path, lines: list[bytes], replayed: str, taken: int, reason: str | None
) -> None:
    legacy_outbox(tmp_path / "outbox", lines, replayed)
    outbox = Outbox(tmp_path / "outbox")
    assert outbox.pending() == taken
    dead = outbox.dead_entries()
    assert [reason in entry["reason"] for entry in dead] == ([True] if reason else [])
    records = JsonRecordStore(tmp_path / "remote")
    objects = LocalObjectStore(tmp_path / "objects")
    assert outbox.replay(records, objects) == (taken, None)
    assert not objects.exists("k.jpg")  # nothing read from outside the outbox was written


@pytest.mark.parametrize("damage", ["garbage", "folder"])
def test_a_damaged_outbox_is_moved_aside_and_the_worker_starts(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "outbox"
    folder.mkdir()
    if damage == "garbage":
        (folder / "outbox.sqlite3").write_bytes(b"this is not a database" * 100)
    else:
        (folder / "outbox.sqlite3").mkdir()
    (folder / "entries.jsonl").mkdir()  # and a folder where the old outbox file was

    outbox = Outbox(folder)

    outbox.add_record({"analysis_id": "r1"})
    assert outbox.pending() == 1
    aside = sorted(path.name for path in folder.iterdir() if ".damaged-" in path.name)
    assert [name.split(".damaged-")[0] for name in aside] == ["entries.jsonl", "outbox.sqlite3"]


# --- full and read-only disks (a real tmpfs) -----------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: big enough for the worker's data folder, small enough to fill."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the disk-fault tests did not run")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def analyze(app: Worker, desk_b64: str, job_id: str) -> dict[str, Any]:
    job = {"image": desk_b64, "options": {"imgsz": 320, "cache": False}}
    return app.handle({"id": job_id, "input": job})


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_a_full_disk_answers_with_persisted_false_and_loses_nothing(
    small_disk: Path, make_settings, demo_models, desk_b64: str
) -> None:
    settings = make_settings(data_dir=small_disk / "data")
    app = Worker(settings, demo_models, open_stores(settings))
    assert analyze(app, desk_b64, "before")["persisted"]["record"] is True

    filler = fill(small_disk)
    during = analyze(app, desk_b64, "during")
    assert "error" not in during, during
    assert during["persisted"]["record"] is False and during["persisted"]["objects"] is False
    assert app.outbox.pending() >= 2  # the record and the annotated image, held in memory

    filler.unlink()  # space is back
    after = analyze(app, desk_b64, "after")  # replays the outbox first

    assert after["persisted"]["record"] is True
    assert_kept(app, during)


@pytest.mark.slow
def test_a_read_only_data_dir_starts_answers_and_loses_nothing_once_writable(
    small_disk: Path, make_settings, demo_models, desk_b64: str
) -> None:
    """Read-only from the start (the kernel refuses to remount a disk read-only while the worker
    holds files open for writing, so this is the read-only case a worker can meet)."""
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    settings = make_settings(data_dir=small_disk / "data")
    app = Worker(settings, demo_models, open_stores(settings))

    during = analyze(app, desk_b64, "during")
    assert "error" not in during, during
    assert during["persisted"]["record"] is False and during["persisted"]["objects"] is False
    assert app.handle({"id": "h", "input": {"action": "health"}})["status"] == "degraded"

    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    after = analyze(app, desk_b64, "after")

    assert after["persisted"]["record"] is True
    assert_kept(app, during)


def assert_kept(app: Worker, during: dict[str, Any]) -> None:
    """What the outage held back is in the stores now, once, and the outbox is empty."""
    assert app.outbox.pending() == 0
    kept = app.stores.records.get_analysis("during")
    assert kept is not None and kept["image"]["sha256"] == during["image"]["sha256"]
    assert app.stores.objects.exists(during["artifacts"]["annotated_key"])
    assert app.outbox.dead_entries() == []


# --- a soak ------------------------------------------------------------------------------------


def open_files() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_hundreds_of_jobs_grow_neither_memory_nor_open_files(app: Worker, desk_b64: str) -> None:
    jobs = [
        {"image": desk_b64, "options": {"imgsz": 64, "cache": False}},
        {"action": "parse_rules", "rules": ["Keep mugs 15 cm from laptops"]},
        {"action": "evaluate", "detections": [{"class": "cup", "box": [1, 1, 9, 9]}],
         "image_size": [64, 64], "rules": ["At most 1 mug"]},
        {"image": "bm90IGFuIGltYWdl"},
        {"action": "health"},
    ]  # fmt: skip
    for n in range(25):  # warm every path first
        app.handle({"id": f"warm{n}", "input": jobs[n % len(jobs)]})
    files, memory = open_files(), resident_mb()
    for n in range(300):
        app.handle({"id": f"soak{n}", "input": jobs[n % len(jobs)]})
    assert open_files() <= files + 2
    assert resident_mb() - memory < 60


# --- review findings: a busy database, hostile rows, memory-only replay --------------------------


@pytest.mark.slow
def test_a_busy_database_is_waited_for_not_moved_aside(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    Outbox(folder).add_record({"analysis_id": "r1"})
    holder = sqlite3.connect(folder / "outbox.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds it (say, a second worker by mistake)
    try:
        busy = Outbox(folder)
        busy.add_record({"analysis_id": "r2"})  # held in memory meanwhile
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [path for path in folder.iterdir() if ".damaged-" in path.name]
    records = JsonRecordStore(tmp_path / "remote")
    assert busy.replay(records, LocalObjectStore(tmp_path / "objects")) == (2, None)
    assert records.get_analysis("r1") and records.get_analysis("r2")


def test_an_old_outbox_line_nested_past_the_recursion_limit_is_set_aside(tmp_path: Path) -> None:
    deep = b'{"kind": "record", "record": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    legacy_outbox(tmp_path / "outbox", [deep, record_line(1)])
    outbox = Outbox(tmp_path / "outbox")
    assert outbox.pending() == 1
    assert "RecursionError" in outbox.dead_entries()[0]["reason"]


def test_a_foreign_row_in_the_database_is_set_aside_not_raised(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    Outbox(folder).add_record({"analysis_id": "r1"})
    with sqlite3.connect(folder / "outbox.sqlite3") as db:
        db.execute("INSERT INTO entries (kind, key, data) VALUES ('object', 'k.jpg', 'text')")
        db.execute("INSERT INTO entries (kind, key, data) VALUES ('object', 'n.jpg', 10000000000)")
    db.close()
    outbox = Outbox(folder)
    records = JsonRecordStore(tmp_path / "remote")
    assert outbox.replay(records, LocalObjectStore(tmp_path / "objects")) == (1, None)
    assert [entry["key"] for entry in outbox.dead_entries()] == ["k.jpg", "n.jpg"]
    assert outbox.pending() == 0


def test_with_no_disk_at_all_an_entry_the_store_refuses_is_set_aside_in_memory(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    outbox = Outbox(blocker / "outbox")  # the folder cannot be made: memory only

    class Refusing(JsonRecordStore):
        def put_analysis(self, record: dict[str, Any]) -> None:
            raise ValueError("MongoDB can only handle up to 8-byte ints")

    outbox.add_record({"analysis_id": "poison"})
    results = [
        outbox.replay(Refusing(tmp_path / "r"), LocalObjectStore(tmp_path / "o")) for _ in range(5)
    ]
    assert results == [(0, "records")] * 4 + [(0, None)]
    assert outbox.pending() == 0 and outbox.dead_entries()[0]["key"] == "poison"
