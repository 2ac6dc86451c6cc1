"""Quotas: effective limits and per-user overrides, current use, each check refusing exactly the
request that would cross its limit (with a message naming it), and the fair pick of waiting jobs.
Runs on the real SQLite store and on MongoStore (mongomock)."""

from __future__ import annotations

import threading

import pytest

from caesar_faas.errors import BadRequest, PayloadTooLarge, TooManyRequests
from caesar_faas.ids import new_id
from caesar_faas.quotas import (
    Limits,
    Usage,
    check_submit,
    check_upload,
    limits_for,
    next_jobs_to_start,
    running_slots_free,
    set_limits,
    usage,
)
from tests.fixtures.auth import auth_settings


@pytest.fixture(params=["sqlite_store", "mongomock_store"])
def store(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def settings(tmp_path):
    return auth_settings(tmp_path, quota_bytes=1000, quota_files=3, quota_queued_jobs=2, quota_running_jobs=2,
                         max_job_timeout=600, default_job_timeout=300)


def add_file(store, owner, size, status="ready", created=1.0):
    record = {"id": new_id(), "owner": owner, "created": created, "status": status, "size": size}
    store.insert("files", record)
    return record


def add_job(store, owner, created, state="PENDING", **extra):
    record = {"id": new_id(), "owner": owner, "created": float(created), "state": state, "app": "sep", **extra}
    store.insert("jobs", record)
    return record


def test_defaults_come_from_settings(store, settings):
    assert limits_for(store, "alice", settings) == Limits(bytes=1000, files=3, queued_jobs=2, running_jobs=2,
                                                          max_job_timeout=600)


def test_overrides_replace_defaults_per_user(store, settings):
    assert set_limits(store, "alice", {"bytes": 5000, "running_jobs": 0}) == {"bytes": 5000, "running_jobs": 0}
    assert set_limits(store, "alice", {"files": 10}) == {"bytes": 5000, "running_jobs": 0, "files": 10}
    assert limits_for(store, "alice", settings) == Limits(bytes=5000, files=10, queued_jobs=2, running_jobs=0,
                                                          max_job_timeout=600)
    assert limits_for(store, "bob", settings).bytes == 1000  # nobody else affected
    assert set_limits(store, "alice", {"bytes": None}) == {"running_jobs": 0, "files": 10}  # null: default again
    assert limits_for(store, "alice", settings).bytes == 1000
    user = store.get("users", "alice")
    assert user["owner"] == "alice" and isinstance(user["created"], float)


@pytest.mark.parametrize("changes", [{}, [], "bytes=1", {"disk": 1}, {"bytes": -1}, {"bytes": 1.5},
                                     {"bytes": True}, {"bytes": "100"}, {"bytes": 2**53},
                                     {"files": 3, "nonsense": 1}])
def test_set_limits_validates_and_changes_nothing_on_error(store, settings, changes):
    set_limits(store, "alice", {"files": 7})
    with pytest.raises(BadRequest) as info:
        set_limits(store, "alice", changes)
    assert info.value.code == "invalid_limits"
    assert limits_for(store, "alice", settings).files == 7
    assert limits_for(store, "alice", settings).bytes == 1000


def test_concurrent_admins_do_not_lose_changes(sqlite_store, settings):
    keys = ["bytes", "files", "queued_jobs", "running_jobs", "max_job_timeout"]
    set_limits(sqlite_store, "alice", {"bytes": 1})
    threads = [threading.Thread(target=set_limits, args=(sqlite_store, "alice", {key: 42})) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limits_for(sqlite_store, "alice", settings).as_dict() == dict.fromkeys(keys, 42)


def test_usage_counts_ready_and_pending_files_and_active_jobs(store):
    add_file(store, "alice", 100)
    add_file(store, "alice", 50, status="pending")  # a presigned upload reserves its size
    add_file(store, "alice", 999, status="invalid")  # refused files count until the monitor removes them (issue 18)
    add_file(store, "bob", 700)
    for state in ["PENDING", "PENDING", "STARTED", "RUNNING", "SUCCESS", "FAILURE", "ABORTED"]:
        add_job(store, "alice", 1, state)
    add_job(store, "bob", 1, "PENDING")
    assert usage(store, "alice") == Usage(bytes=1149, files=3, queued_jobs=2, running_jobs=2)
    assert usage(store, "carol") == Usage(bytes=0, files=0, queued_jobs=0, running_jobs=0)


def test_upload_refused_at_the_bytes_boundary(store, settings):
    add_file(store, "alice", 600)
    add_file(store, "bob", 900)  # other users' files do not count
    check_upload(store, "alice", 400, settings)  # exactly at the limit: allowed
    with pytest.raises(PayloadTooLarge) as info:
        check_upload(store, "alice", 401, settings)
    exc = info.value
    assert exc.http_status == 413
    assert exc.body() == {"error": "quota_exceeded", "limit": "bytes", "used": 600, "max": 1000, "requested": 401,
                          "status": "quota exceeded: stored bytes limit is 1000, current use 600, "
                                    "this request adds 401"}


def test_upload_refused_at_the_files_boundary(store, settings):
    for _ in range(2):
        add_file(store, "alice", 1)
    pending = add_file(store, "alice", 1, status="pending")
    with pytest.raises(PayloadTooLarge) as info:
        check_upload(store, "alice", 1, settings)
    assert info.value.body()["limit"] == "files" and "number of files limit is 3" in info.value.message
    assert (info.value.body()["used"], info.value.body()["max"]) == (3, 3)
    store.delete("files", pending["id"])  # deleting a file frees its place
    check_upload(store, "alice", 1, settings)


def test_upload_uses_the_users_override(store, settings):
    set_limits(store, "alice", {"bytes": 10})
    with pytest.raises(PayloadTooLarge) as info:
        check_upload(store, "alice", 11, settings)
    assert info.value.body()["max"] == 10
    set_limits(store, "bob", {"bytes": 0})
    with pytest.raises(PayloadTooLarge):
        check_upload(store, "bob", 1, settings)


def test_submit_refused_when_the_queue_is_full(store, settings):
    add_job(store, "alice", 1, "RUNNING")  # running and finished jobs are not queued
    add_job(store, "alice", 1, "SUCCESS")
    add_job(store, "alice", 1, "PENDING")
    assert check_submit(store, "alice", None, settings) == 300
    add_job(store, "alice", 2, "PENDING")
    with pytest.raises(TooManyRequests) as info:
        check_submit(store, "alice", None, settings)
    exc = info.value
    assert exc.http_status == 429 and exc.headers == {"Retry-After": "60"}
    assert exc.body()["limit"] == "queued_jobs" and (exc.body()["used"], exc.body()["max"]) == (2, 2)
    assert "queued jobs limit is 2" in exc.message
    check_submit(store, "bob", None, settings)


def test_submit_timeout_at_the_boundary(store, settings):
    assert check_submit(store, "alice", 600, settings) == 600
    with pytest.raises(PayloadTooLarge) as info:
        check_submit(store, "alice", 601, settings)
    assert info.value.body()["limit"] == "max_job_timeout" and info.value.body()["max"] == 600
    assert "maximum job timeout" in info.value.message and "601" in info.value.message


def test_default_timeout_lowered_to_a_smaller_user_maximum(store, settings):
    set_limits(store, "alice", {"max_job_timeout": 120})
    assert check_submit(store, "alice", None, settings) == 120
    assert check_submit(store, "bob", None, settings) == 300


def test_running_slots_free(store, settings):
    assert running_slots_free(store, "alice", settings) == 2
    add_job(store, "alice", 1, "RUNNING")
    add_job(store, "alice", 2, "PENDING")  # waiting: holds no slot
    assert running_slots_free(store, "alice", settings) == 1
    add_job(store, "alice", 3, "PENDING", backend_ref={"pid": 1})  # launched, not yet STARTED
    assert running_slots_free(store, "alice", settings) == 0
    add_job(store, "alice", 4, "STARTED")
    assert running_slots_free(store, "alice", settings) == 0  # never negative


def ids(jobs):
    return [(job["owner"], job["created"]) for job in jobs]


def test_fair_pick_round_robin_oldest_first(store, settings):
    for t in range(1, 6):
        add_job(store, "alice", t)
    add_job(store, "bob", 6)
    add_job(store, "bob", 7)
    add_job(store, "carol", 8)
    add_job(store, "dave", 0, "SUCCESS")  # finished jobs are not candidates
    assert ids(next_jobs_to_start(store, settings, 4)) == [("alice", 1), ("bob", 6), ("carol", 8), ("alice", 2)]
    # Unlimited capacity: everyone up to their running limit (2), alice's others wait.
    assert ids(next_jobs_to_start(store, settings, None)) == [
        ("alice", 1), ("bob", 6), ("carol", 8), ("alice", 2), ("bob", 7)]
    assert next_jobs_to_start(store, settings, 0) == []
    assert next_jobs_to_start(store, settings, -1) == []


def test_fair_pick_counts_slots_already_held(store, settings):
    add_job(store, "alice", 1, "RUNNING")
    add_job(store, "alice", 2, "PENDING", backend_ref={"job": "x"})  # launched already: holds a slot
    for t in (3, 4):
        add_job(store, "alice", t)
    add_job(store, "bob", 5, "STARTED")
    add_job(store, "bob", 6)
    add_job(store, "bob", 7)
    add_job(store, "carol", 9)
    # alice is at her limit; carol (nothing running) goes before bob (one running).
    assert ids(next_jobs_to_start(store, settings, 1)) == [("carol", 9)]
    assert ids(next_jobs_to_start(store, settings, None)) == [("carol", 9), ("bob", 6)]


def test_fair_pick_honours_per_user_running_limits(store, settings):
    set_limits(store, "alice", {"running_jobs": 3})
    set_limits(store, "bob", {"running_jobs": 0})  # bob's jobs wait whatever the capacity
    for t in range(1, 6):
        add_job(store, "alice", t)
    add_job(store, "bob", 0.5)
    assert ids(next_jobs_to_start(store, settings, 10)) == [("alice", 1), ("alice", 2), ("alice", 3)]


def test_freed_slot_goes_to_the_next_owner_in_turn(store, settings):
    a1 = add_job(store, "alice", 1, "RUNNING")
    add_job(store, "alice", 2, "RUNNING")
    add_job(store, "alice", 3)
    add_job(store, "bob", 4, "RUNNING")
    add_job(store, "bob", 5, "RUNNING")
    add_job(store, "bob", 6)
    assert next_jobs_to_start(store, settings, 5) == []  # both at their limit
    store.update("jobs", a1["id"], {"state": "SUCCESS"}, expect={"state": "RUNNING"})
    assert ids(next_jobs_to_start(store, settings, 5)) == [("alice", 3)]
