"""Hostile but well-formed jobs (SPEC 2.3): each gets a clear answer quickly, never a hang, an
out-of-memory kill or an internal_error. Every bound named here is stated in the README."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from models.clip import CROP_MAX_ASPECT, crop_for_clip
from positioning.geometry import Box
from tests.conftest import ASSETS, encode_image
from tests.test_intake import LOCAL
from worker.actions import Worker
from worker.bootstrap import QUIET_LIBRARIES, configure_logging
from worker.errors import ErrorCode, JobError
from worker.fetch import UrlFetcher
from worker.runtime import open_stores

# No case may take longer than this on the 2-core development machine (most take milliseconds).
CASE_SECONDS = 10.0


@pytest.fixture
def desk_jpg() -> bytes:
    return (ASSETS / "desk.jpg").read_bytes()


def png(width: int, height: int) -> str:
    return encode_image(Image.new("RGB", (width, height), (200, 180, 160)), "PNG")


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def crowd(mugs: int) -> list[dict[str, Any]]:
    """Mugs spread over a 1920x1080 table, a few px apart: every spacing rule fails."""
    boxes = []
    for index in range(mugs):
        x, y = (index * 61) % 1880, (index * 37) % 1040
        boxes.append({"class": "cup", "box": [x, y, x + 40, y + 40]})
    return [*boxes, {"class": "dining table", "box": [0, 0, 1920, 1080]}]


DESK = {"options": {"imgsz": 320}, "calibration": {"mm_per_px": 1.0}}
RULE = "Keep mugs 15 cm from laptops"
REFUSED = [
    ("mm_per_px tiny", {"calibration": {"mm_per_px": 1e-300}}, "calibration.mm_per_px"),
    ("mm_per_px huge", {"calibration": {"mm_per_px": 1e300}}, "calibration.mm_per_px"),
    ("mm_per_px max float", {"calibration": {"mm_per_px": 1.7e308}}, "less than or equal to 1000"),
    (
        "distance near the float limit",
        {"rules": [{"type": "min_distance", "object": "laptop", "distance": {"value": 1e308, "unit": "ft"}}]},
        "at most 100 m",
    ),
    # a sentence's bound is a rule_parse_error that quotes it (SPEC 2.3)
    (
        "distance in px",
        {"rules": ["Keep mugs 200000 px from laptops"]},
        "rule_parse_error: rules[0]: cannot read the rule 'Keep mugs 200000 px from laptops': "
        "at most 100000 px",
    ),
    ("3000 sentences", {"rules": [RULE] * 3000}, "at most 100 items"),
    (
        "3000 structured rules",
        {"rules": [{"type": "spacing", "distance": f"{i} mm"} for i in range(3000)]},
        "at most 100 items",
    ),
    ("a 5000-character sentence", {"rules": [RULE + " " * 5000 + "!"]}, "at most 500 characters"),
    (
        "a zone of 10000 points",
        {"rules": [{"type": "zone", "zone": [[i / 10000, (i % 7) / 7] for i in range(10000)]}]},
        "3 to 64 points",
    ),
    ("metadata 5000 levels deep", {"metadata": nested(5000)}, "nested at most 32 levels"),
    ("metadata with 20000 values", {"metadata": {f"k{i}": i for i in range(20000)}}, "10,000 values"),
    (
        "reference width 1e300 mm",
        {"calibration": {"reference": {"class": "laptop", "width_mm": 1e300}}},
        "calibration.reference.width_mm",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "change", "named"), REFUSED, ids=[c[0] for c in REFUSED])
def test_out_of_range_numbers_and_sizes_are_refused_by_name(
    app: Worker, desk_b64: str, name: str, change: dict[str, Any], named: str
) -> None:
    started = time.perf_counter()
    output = app.handle({"id": "h", "input": {"image": desk_b64, **DESK, **change}})
    assert time.perf_counter() - started < CASE_SECONDS
    code = "rule_parse_error" if named.startswith("rule_parse_error") else "invalid_input"
    assert output["error"].startswith(f"{code}: "), output
    assert named in output["error"]


@pytest.mark.parametrize(("width", "height"), [(65535, 1), (1, 65535), (8000, 1), (2100, 100)])
def test_long_thin_images_are_refused_before_any_model_sees_them(
    app: Worker, width: int, height: int
) -> None:
    """A 65535x1 PNG is a few hundred bytes; CLIP would scale it to 224 px high (14.7M px wide)."""
    output = app.handle({"id": "thin", "input": {"image": png(width, height)}})
    assert output["error"] == (
        f"invalid_input: image: {width}x{height} is more than 20 times as long as it is wide; "
        "at most 20:1"
    )


def test_the_longest_image_allowed_is_analysed(app: Worker) -> None:
    output = app.handle({"id": "wide", "input": {"image": png(2000, 100), **DESK}})
    assert "error" not in output


def cluster(mugs: int) -> list[dict[str, Any]]:
    """Mugs packed 3 px apart on a table: the placement search's worst case."""
    boxes = []
    for index in range(mugs):
        x, y = (index % 20) * 43.0, (index // 20) * 43.0
        boxes.append({"class": "cup", "box": [x, y, x + 40, y + 40]})
    return [*boxes, {"class": "dining table", "box": [0, 0, 1920, 1080]}]


def crowded_job(detections: list[dict[str, Any]], rules: list[str]) -> dict[str, Any]:
    return {
        "action": "evaluate",
        "detections": detections,
        "image_size": [1920, 1080],
        "rules": rules,
        "calibration": {"mm_per_px": 1.0},
    }


def test_64_spread_out_mugs_are_all_placed_within_the_budget(app: Worker) -> None:
    job = crowded_job(crowd(64), ["Keep mugs 10 cm apart", "Keep mugs 5 cm from the table edge"])
    started = time.perf_counter()
    output = app.handle({"id": "crowd", "input": job})
    assert time.perf_counter() - started < CASE_SECONDS
    positions = output["positioning"]["optimal_positions"]
    assert len(positions) == 64 and all(p["searched"] for p in positions)


@pytest.mark.parametrize(
    ("detections", "rules"),
    [
        (cluster(299), ["Keep mugs 10 cm apart"]),
        (cluster(299), [f"Keep mugs {10 + k} cm apart" for k in range(100)]),  # every bound at once
        (crowd(299), ["Keep mugs 10 cm apart", "Keep mugs 5 cm from the table edge"]),
    ],
    ids=["clustered, one rule", "clustered, 100 rules", "spread"],
)
def test_hundreds_of_mugs_stop_at_the_placement_budget_and_say_so(
    app: Worker, detections: list[dict[str, Any]], rules: list[str]
) -> None:
    started = time.perf_counter()
    output = app.handle({"id": "crowd", "input": crowded_job(detections, rules)})
    assert time.perf_counter() - started < CASE_SECONDS
    assert "error" not in output, output
    positions = output["positioning"]["optimal_positions"]
    assert len(positions) == 299
    unsearched = [p for p in positions if not p["searched"]]
    assert unsearched, "these scenes need more than the budget"
    assert all(p["center"] is None and p["move"] is None for p in unsearched)
    tips = output["feedback"]["recommendations"]
    assert any("placement search stopped at its limit of 10,000,000 checks" in tip for tip in tips)


def test_the_budget_is_read_when_a_search_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from positioning import regions

    monkeypatch.setattr(regions, "PLACEMENT_CHECKS", 10)
    assert regions.SearchBudget().checks == 10


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_clip_crops_are_never_longer_than_4_to_1(
    width: int, height: int, a: float, b: float, c: float, d: float
) -> None:
    """Whatever box the detector draws, the crop CLIP gets is bounded (its memory with it)."""
    image = Image.new("RGB", (width, height))
    x1, x2 = sorted((a * width, b * width))
    y1, y2 = sorted((c * height, d * height))
    crop = crop_for_clip(image, Box(x1, y1, x2, y2))
    assert max(crop.size) <= CROP_MAX_ASPECT * min(crop.size) + CROP_MAX_ASPECT
    assert max(crop.size) <= max(width, height)
    if max(crop.size) > CROP_MAX_ASPECT * 224:  # a long crop is never padded past 896 x 224
        assert max(crop.size) <= CROP_MAX_ASPECT * min(crop.size) + CROP_MAX_ASPECT
    assert crop.width * crop.height <= max(width * height, 896 * 224)


def test_a_thin_box_is_padded_not_stretched() -> None:
    image = Image.new("RGB", (4000, 200), (255, 0, 0))
    crop = crop_for_clip(image, Box(0, 100, 4000, 101))
    assert crop.size == (896, 224)  # 4 x CLIP's 224 px, padded to 4:1
    assert crop.getpixel((448, 112)) == (255, 0, 0)  # the box itself, in the middle
    assert crop.getpixel((448, 0)) == (128, 128, 128)  # padding above it


# --- keys and ids ------------------------------------------------------------------------------


def test_a_10000_character_key_is_refused_as_input_not_as_a_store_failure(app: Worker) -> None:
    output = app.handle({"id": "k", "input": {"image_key": "k" * 10_000}})
    assert output["error"].startswith("invalid_input: image_key: 'kkk")
    assert "over 1024 bytes" in output["error"]


@pytest.mark.parametrize(
    ("link", "target", "key"),
    [
        ("outside.jpg", "{outside}", "outside.jpg"),
        ("etc", "/etc", "etc/hostname"),
        ("environ", "/proc/self/environ", "environ"),
    ],
)
def test_the_objects_folder_never_follows_a_link_out_of_itself(
    app: Worker, tmp_path: Path, desk_jpg: bytes, link: str, target: str, key: str
) -> None:
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(desk_jpg)
    root = app.settings.data_dir.absolute() / "objects"
    (root / link).symlink_to(target.format(outside=outside))
    output = app.handle({"id": "k", "input": {"image_key": key}})
    assert output["error"].startswith(f"invalid_input: image_key: '{key}' is not a valid object")
    assert "leads out of the objects folder" in output["error"]


def test_a_link_that_stays_inside_the_folder_is_read(app: Worker, desk_jpg: bytes) -> None:
    root = app.settings.data_dir.absolute() / "objects"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "desk.jpg").write_bytes(desk_jpg)
    (root / "latest.jpg").symlink_to(root / "photos" / "desk.jpg")
    output = app.handle({"id": "k", "input": {"image_key": "latest.jpg", **DESK}})
    assert "error" not in output


@pytest.mark.parametrize(
    ("job_id", "item_id"),
    [("j" * 300, None), ("job-1", "." * 127 + "a"), ("job-2", "a." * 64)],
)
def test_long_and_dotted_ids_are_kept_not_silently_lost(
    app: Worker, desk_b64: str, job_id: str, item_id: str | None
) -> None:
    """Percent-encoding triples a dot; names past 255 bytes used to fail every write and replay."""
    source = {"image": desk_b64}
    job = {**DESK, **({"images": [{"id": item_id, **source}]} if item_id else source)}
    output = app.handle({"id": job_id, "input": job})
    result = output["results"][0] if item_id else output
    assert result["persisted"]["record"] is True and result["persisted"]["objects"] is True
    assert app.outbox.pending() == 0
    stored = app.stores.records.get_analysis(result["analysis_id"])
    assert stored is not None and stored["analysis_id"] == result["analysis_id"]
    assert app.stores.objects.exists(result["artifacts"]["annotated_key"])


def test_a_key_segment_no_file_can_be_named_is_refused_by_the_folder(app: Worker) -> None:
    """S3 takes a 300-byte segment; a file system does not, so the embedded store says so."""
    output = app.handle({"id": "k", "input": {"image_key": "a/" + "b" * 300}})
    assert output["error"].startswith("invalid_input: image_key: 'a/bbb")
    assert "at most 255 bytes between slashes" in output["error"]


# --- logging -----------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers (pytest's among them): put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["DEBUG", "WARNING"])
def test_log_level_is_obeyed_even_after_the_root_logger_was_configured(level: str) -> None:
    logging.basicConfig(level=logging.INFO)  # what an import may have done first
    configure_logging(level)
    assert logging.getLogger().level == logging.getLevelName(level)
    assert logging.getLogger("worker").getEffectiveLevel() == logging.getLevelName(level)


@pytest.mark.usefixtures("restore_logging")
def test_at_debug_no_store_credential_reaches_the_log(
    s3_server, s3_bucket: str, make_settings, demo_models, desk_b64: str, capsys
) -> None:
    """botocore logs each request's Authorization header (with the access key id) at DEBUG."""
    key_id = "AKIAMUGPOSTESTKEYID42"
    settings = make_settings(
        r2_endpoint_url=s3_server.url,
        r2_access_key_id=key_id,
        r2_secret_access_key="mugpos-secret-value-77",
        r2_bucket=s3_bucket,
        r2_region="us-east-1",
        log_level="DEBUG",
    )
    configure_logging("DEBUG")
    app = Worker(settings, demo_models, open_stores(settings))
    output = app.handle({"id": "dbg", "input": {"image": desk_b64, **DESK}})
    assert output["persisted"]["objects"] is True
    logged = capsys.readouterr().err
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING
    assert key_id not in logged and "mugpos-secret-value-77" not in logged


# --- URLs --------------------------------------------------------------------------------------

FETCH_LIMITS = dataclasses.replace(LOCAL, url_timeout_s=1.0)  # private URLs allowed


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server that sends, to every connection, the byte strings queued in ``script``
    one every 0.2 s (a trickle of status line and headers)."""
    script: list[bytes] = []
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(4096)
                for piece in script:
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(piece)
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], script
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_server_trickling_its_status_line_and_headers_is_cut_off_at_the_deadline(
    raw_server: tuple[int, list[bytes]],
) -> None:
    port, script = raw_server
    script.extend(bytes([byte]) for byte in b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" * 20)
    started = time.monotonic()
    with pytest.raises(JobError) as error:
        UrlFetcher(FETCH_LIMITS).fetch(f"http://127.0.0.1:{port}/a.png", field="image_url")
    assert str(error.value) == "fetch_failed: image_url: timed out after 1 s"
    assert time.monotonic() - started < 2.0


def test_a_10000_character_redirect_is_not_followed(raw_server: tuple[int, list[bytes]]) -> None:
    port, script = raw_server
    location = "http://127.0.0.1/" + "a" * 10_000
    script.append(
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    with pytest.raises(JobError) as error:
        UrlFetcher(FETCH_LIMITS).fetch(f"http://127.0.0.1:{port}/r", field="image_url")
    assert "redirects to a Location of 10,017 characters; at most 2048" in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/a.jpg",  # IPv4-compatible IPv6: loopback
        "http://[::169.254.169.254]/a.jpg",  # ... the metadata service
        "http://[::10.0.0.1]/a.jpg",
        "http://[::ffff:0:7f00:1]/a.jpg",  # IPv4-translated loopback
        "http://[64:ff9b:1::a9fe:a9fe]/a.jpg",  # local-use NAT64 of the metadata service
        "http://localhost./a.jpg",
        "http://LOCALHOST/a.jpg",
        "http://metadata.localhost/a.jpg",
    ],
)
def test_loopback_in_other_spellings_is_refused(url: str) -> None:
    limits = dataclasses.replace(FETCH_LIMITS, allow_private_urls=False)
    with pytest.raises(JobError) as error:
        UrlFetcher(limits).fetch(url, field="image_url")
    assert error.value.code == "url_not_allowed", str(error.value)


def test_a_url_longer_than_2048_characters_is_refused() -> None:
    with pytest.raises(JobError) as error:
        UrlFetcher(FETCH_LIMITS).fetch("http://example.com/" + "a" * 3000, field="image_url")
    assert str(error.value) == "invalid_input: image_url: URLs are at most 2048 characters"


# --- fuzzing the job schema --------------------------------------------------------------------

# every code a job may end with, but internal_error (SPEC 2.3)
ERROR_CODES = set(typing.get_args(ErrorCode)) - {"internal_error"}
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
NUMBERS = st.one_of(
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False),
    st.sampled_from([0, -1, 1e308, 5e-324]),
)
SMALL_PNG = None


def small_png() -> str:
    global SMALL_PNG
    if SMALL_PNG is None:
        SMALL_PNG = png(64, 48)
    return SMALL_PNG


JOBS = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["analyze", "evaluate", "parse_rules", "health", "nope"]) | JSON,
        "image": st.just("IMAGE") | st.text(max_size=20) | JSON,
        "rules": st.lists(
            st.sampled_from([RULE, "At most 3 mugs", "Keep mugs 5 cm from the edge", "x"])
            | st.fixed_dictionaries(
                {"type": st.sampled_from(["min_distance", "spacing", "zone", "count", "bogus"])},
                optional={"distance": NUMBERS | JSON, "object": JSON, "max": NUMBERS, "zone": JSON},
            )
            | JSON,
            max_size=4,
        )
        | JSON,
        "calibration": st.fixed_dictionaries({}, optional={"mm_per_px": NUMBERS | JSON}) | JSON,
        "options": st.fixed_dictionaries(
            {},
            optional={"imgsz": NUMBERS, "conf": NUMBERS, "max_det": NUMBERS, "clip": JSON},
        )
        | JSON,
        "surface": JSON,
        "metadata": JSON,
        "detections": st.lists(
            st.fixed_dictionaries(
                {"class": st.sampled_from(["cup", "laptop"]) | JSON,
                 "box": st.lists(NUMBERS, min_size=4, max_size=4) | JSON}
            ),
            max_size=5,
        )
        | JSON,
        "image_size": st.lists(NUMBERS, min_size=2, max_size=2) | JSON,
    },
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    # one worker for every example: the jobs are independent, as on a real worker
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(JOBS)
def test_no_job_the_schema_can_be_sent_crashes_hangs_or_answers_internal_error(
    app: Worker, job: dict[str, Any]
) -> None:
    if job.get("image") == "IMAGE":
        job["image"] = small_png()
    started = time.perf_counter()
    output = app.handle({"id": "fuzz", "input": job})
    assert time.perf_counter() - started < CASE_SECONDS
    if "error" in output:
        code, _, message = output["error"].partition(": ")
        assert code in ERROR_CODES, output["error"]
        assert message


def test_a_loop_of_links_in_the_objects_folder_is_a_bad_key(app: Worker) -> None:
    root = app.settings.data_dir.absolute() / "objects"
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    output = app.handle({"id": "k", "input": {"image_key": "a"}})
    assert output["error"].startswith("invalid_input: image_key: 'a' is not a valid object key")


def test_a_stored_rule_set_past_todays_bounds_is_refused_by_name(
    app: Worker, desk_b64: str
) -> None:
    """A set stored before the bounds (200 m, say) is invalid_input, not internal_error."""
    rule = {"type": "min_distance", "object": "laptop", "distance": {"value": 200, "unit": "m"}}
    app.stores.records.put_named("rule_sets", "old", {"description": "", "rules": [rule]})
    output = app.handle({"id": "r", "input": {"image": desk_b64, "rule_set": "old", **DESK}})
    assert output["error"].startswith("invalid_input: rule_set 'old' rules[0]")
    assert "at most 100 m" in output["error"]


def test_a_tls_handshake_that_never_finishes_ends_at_the_deadline(
    raw_server: tuple[int, list[bytes]],
) -> None:
    port, script = raw_server
    script.extend([b"\x16"] * 30)  # a byte of a TLS record every 0.2 s, never a handshake
    started = time.monotonic()
    with pytest.raises(JobError) as error:
        UrlFetcher(FETCH_LIMITS).fetch(f"https://127.0.0.1:{port}/a.png", field="image_url")
    assert error.value.code == "fetch_failed"
    assert time.monotonic() - started < 2.0
