"""Redis actions against the lab's real server: SCAN + UNLINK by pattern, FLUSHDB behind the typed ID."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from vcci_nb.actions import ActionRefused, ClearCachePattern, FlushDB, run
from vcci_nb.record import IncidentRecord

pytestmark = pytest.mark.lab

PATTERN = "cache:actions-test:*"


def _client(env: dict[str, str], db: int = 0) -> Any:
    url = env["VCCI_MITIGATION_REDIS_URL"].rsplit("/", 1)[0] + f"/{db}"
    return redis.Redis.from_url(url, decode_responses=True)


@pytest.fixture
def seeded(lab_env: dict[str, str]) -> Any:
    r = _client(lab_env)
    pipe = r.pipeline()
    for i in range(1200):
        pipe.set(f"cache:actions-test:{i}", "x")
    pipe.set("session:actions-test", "keep me")
    pipe.execute()
    yield r
    leftovers = list(r.scan_iter("cache:actions-test:*", count=1000))
    if leftovers:
        r.unlink(*leftovers)
    r.delete("session:actions-test")
    r.close()


def _count(r: Any, pattern: str) -> int:
    return sum(1 for _ in r.scan_iter(pattern, count=1000))


def test_clear_pattern_dry_run_headless_and_confirmed(
    seeded: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    dbsize = seeded.dbsize()
    dry = run(ClearCachePattern(PATTERN, batch=100), record.id)
    assert dry.status == "planned" and dry.plan.details["matched"] == 1200  # type: ignore[union-attr]
    assert seeded.dbsize() == dbsize

    headless = run(ClearCachePattern(PATTERN, batch=100), record.id, dry_run=False)
    assert headless.status == "planned" and seeded.dbsize() == dbsize

    out = run(ClearCachePattern(PATTERN, batch=100), record.id, dry_run=False, confirm=record.id)
    assert out.status == "succeeded", out.message
    assert out.result == {"unlinked": 1200, "batches": 12}
    assert _count(seeded, PATTERN) == 0
    assert seeded.get("session:actions-test") == "keep me"  # nothing outside the pattern
    assert seeded.dbsize() == dbsize - 1200
    entry = record.data["actions"][-1]
    assert entry["identity"] == "redis:default" and entry["plan"]["details"]["matched"] == 1200


def test_clear_pattern_walks_with_scan_and_unlink_never_keys(
    seeded: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    before = _calls(seeded)
    run(ClearCachePattern(PATTERN), record.id, dry_run=False, confirm=record.id)
    after = _calls(seeded)
    assert after["keys"] == before["keys"] and after["del"] == before["del"]
    assert after["scan"] > before["scan"] and after["unlink"] >= before["unlink"] + 3  # 1200 keys / 500 a batch


def _calls(r: Any) -> dict[str, int]:
    stats = r.info("commandstats")
    return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("keys", "del", "scan", "unlink")}


def test_star_pattern_is_destructive_and_refused_without_the_typed_id(
    seeded: Any, lab_env: dict[str, str], record: IncidentRecord
) -> None:
    dbsize = seeded.dbsize()
    with pytest.raises(ActionRefused, match="destroys data"):
        run(ClearCachePattern("*"), record.id, dry_run=False)
    assert seeded.dbsize() == dbsize

    panel = run(ClearCachePattern("*"), record.id, dry_run=False, interactive=True).widget
    panel.confirm_button.click()  # clicked without typing the incident ID
    assert panel.outcome.status == "refused"
    assert seeded.dbsize() == dbsize
    results = [e["result"] for e in record.data["actions"]]
    assert results == ["refused", "awaiting_confirmation", "refused"]
    assert "matches every key" in record.data["actions"][0]["message"] or record.data["actions"][0]["plan"]


def test_flushdb_needs_the_typed_id_and_empties_only_its_database(
    lab_env: dict[str, str], record: IncidentRecord
) -> None:
    other = _client(lab_env, db=5)
    main = _client(lab_env, db=0)
    try:
        other.flushdb()
        other.mset({f"k{i}": i for i in range(50)})
        main_size = main.dbsize()
        url = lab_env["VCCI_MITIGATION_REDIS_URL"].rsplit("/", 1)[0] + "/5"

        dry = run(FlushDB(url=url), record.id)
        assert dry.plan.destructive and other.dbsize() == 50  # type: ignore[union-attr]
        with pytest.raises(ActionRefused, match="destroys data"):
            run(FlushDB(url=url), record.id, dry_run=False)
        assert other.dbsize() == 50

        panel = run(FlushDB(url=url), record.id, dry_run=False, interactive=True).widget
        assert panel.id_box is not None
        panel.id_box.value = record.id
        panel.confirm_button.click()
        assert panel.outcome.status == "succeeded"
        assert other.dbsize() == 0 and main.dbsize() == main_size
        entry = record.data["actions"][-1]
        assert entry["confirmation"] == {"mode": "widget", "typed_incident_id": True}
    finally:
        other.flushdb()
        other.close()
        main.close()


@pytest.mark.parametrize("pattern", ["[^]*", "k*"])
def test_a_clear_that_matches_the_whole_database_is_destructive_whatever_the_pattern(
    lab_env: dict[str, str], record: IncidentRecord, pattern: str
) -> None:
    db = _client(lab_env, db=6)
    url = lab_env["VCCI_MITIGATION_REDIS_URL"].rsplit("/", 1)[0] + "/6"
    try:
        db.flushdb()
        db.mset({f"k{i}": i for i in range(40)})
        dry = run(ClearCachePattern(pattern, url=url), record.id)
        assert dry.plan is not None and dry.plan.destructive
        assert "matches every key in the database (40 of 40 keys)" in dry.plan.warnings[0]
        with pytest.raises(ActionRefused, match="destroys data"):
            run(ClearCachePattern(pattern, url=url), record.id, dry_run=False)
        assert db.dbsize() == 40
        db.set("session:keep", "1")  # now the pattern leaves a key: an ordinary clear
        if pattern == "k*":
            assert not run(ClearCachePattern(pattern, url=url), record.id).plan.destructive  # type: ignore[union-attr]
    finally:
        db.flushdb()
        db.close()
