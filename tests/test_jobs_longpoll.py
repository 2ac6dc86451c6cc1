"""GET /function/jobs?since=<version>&wait=N: the long-poll that keeps the web page's Jobs table
live. The answer is held while the page the client holds is unchanged and comes as soon as a
job on it changes; elapsed time alone is no change; each check is an index-backed page query."""

from __future__ import annotations

import threading
import time

from caesar_faas import longpoll
from caesar_faas.ids import epoch, new_id
from caesar_faas.jobs import control
from caesar_faas.jobs.records import COLLECTION, new_job
from caesar_faas.store import changes


def add_job(store, owner="ana", app="sep", created=None):
    job = new_job(job_id=new_id(), owner=owner, app=app, tag="", options={}, job_inputs={},
                  input_ref={"file_id": new_id(), "key": "k", "filename": "f.fits"}, timeout=60,
                  now=created or epoch())
    store.insert(COLLECTION, job)
    return job["id"]


def loader(store, owner="ana", **filters):
    return lambda: control.list_jobs(store, owner, limit=20, **filters)


def test_every_page_has_a_version_that_follows_its_content(sqlite_store):
    job_id = add_job(sqlite_store)
    first = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=0, since=None)
    again = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=0, since=None)
    assert first["version"] == again["version"] and [j["job_id"] for j in first["jobs"]] == [job_id]
    sqlite_store.update(COLLECTION, job_id, {"progress": 10})
    moved = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=0, since=None)
    assert moved["version"] != first["version"]


def test_elapsed_time_alone_is_not_a_change():
    pages = iter([{"jobs": [{"job_id": "a", "state": "RUNNING", "elapsed_time": t}], "next_cursor": None}
                  for t in (1.0, 2.0, 3.0, 4.0)])
    held = longpoll.wait_for_page_change(lambda: next(pages), "jobs", wait=1, since=None)
    assert longpoll.page_version(held, "jobs") == held["version"]
    pages = iter([{"jobs": [{"job_id": "a", "state": "RUNNING", "elapsed_time": t}], "next_cursor": None}
                  for t in range(100)])
    answer = longpoll.wait_for_page_change(lambda: next(pages), "jobs", wait=1, since=held["version"])
    assert answer["version"] == held["version"] and answer["jobs"][0]["elapsed_time"] > 1  # read again, unchanged


def test_the_answer_comes_when_a_job_on_the_page_changes(sqlite_store):
    job_id = add_job(sqlite_store)
    known = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=0, since=None)["version"]
    changer = threading.Timer(0.6, lambda: sqlite_store.update(COLLECTION, job_id, {"state": "RUNNING", "progress": 40},
                                                               expect={"state": "PENDING"}))
    started = time.monotonic()
    changer.start()
    try:
        answer = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=30, since=known)
    finally:
        changer.cancel()
    assert answer["jobs"][0]["state"] == "RUNNING" and answer["version"] != known
    assert time.monotonic() - started < 15  # woken by the change, long before the 30 s wait ran out


def test_a_new_job_on_the_page_or_a_job_leaving_a_filter_wakes_the_waiter(sqlite_store):
    running = add_job(sqlite_store)
    sqlite_store.update(COLLECTION, running, {"state": "RUNNING"})
    known = longpoll.wait_for_page_change(loader(sqlite_store, state="RUNNING"), "jobs", wait=0, since=None)
    threading.Timer(0.3, lambda: sqlite_store.update(COLLECTION, running, {"state": "SUCCESS"})).start()
    answer = longpoll.wait_for_page_change(loader(sqlite_store, state="RUNNING"), "jobs", wait=30,
                                           since=known["version"])
    assert answer["jobs"] == []
    known = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=0, since=None)
    threading.Timer(0.3, lambda: add_job(sqlite_store)).start()
    answer = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=30, since=known["version"])
    assert len(answer["jobs"]) == 2


def test_another_users_jobs_never_wake_the_waiter(sqlite_store):
    add_job(sqlite_store, owner="ana")
    known = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=0, since=None)
    add_job(sqlite_store, owner="bob")
    answer = longpoll.wait_for_page_change(loader(sqlite_store), "jobs", wait=1, since=known["version"])
    assert answer["version"] == known["version"] and len(answer["jobs"]) == 1


def test_each_check_is_an_index_backed_page_query(sqlite_store):
    """What every poll of a waiter runs, with EXPLAIN QUERY PLAN: a search through an index, never
    a scan of the jobs table, whatever the filters the page uses."""
    for n in range(30):
        add_job(sqlite_store, owner="ana" if n % 2 else "bob", app="sep" if n % 3 else "aegean")
    conn = sqlite_store._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        for filters in ({}, {"state": "PENDING"}, {"app": "sep"}, {"state": "PENDING", "app": "aegean"}):
            longpoll.wait_for_page_change(loader(sqlite_store, **filters), "jobs", wait=0, since=None)
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and '"jobs"' in s]
    assert len(selects) == 4
    for sql in selects:
        plan = " | ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)
        assert not any(step.strip().startswith("SCAN jobs") and "INDEX" not in step for step in plan.split("|")), plan


def test_status_wait_can_also_follow_the_progress(sqlite_store):
    job_id = add_job(sqlite_store)
    sqlite_store.update(COLLECTION, job_id, {"state": "RUNNING", "progress": 10})
    threading.Timer(0.3, lambda: sqlite_store.update(COLLECTION, job_id, {"progress": 50})).start()
    moved = longpoll.wait_for_change(sqlite_store, "ana", False, job_id, wait=30, since="RUNNING", since_progress=10)
    assert moved["state"] == "RUNNING" and moved["progress"] == 50
    # Without since_progress only the state counts, as before: the wait runs out unchanged.
    held = longpoll.wait_for_change(sqlite_store, "ana", False, job_id, wait=1, since="RUNNING")
    assert held["progress"] == 50 and held["state"] == "RUNNING"


def test_a_status_waiter_is_woken_by_the_write_not_by_the_next_poll(any_store, monkeypatch):
    """A job's state written by this process ends its waiters' wait at once (store/changes.py):
    with polls 60 s apart, the answer still comes as soon as the job has finished. Other jobs'
    writes do not end the wait."""
    monkeypatch.setattr(longpoll, "POLL_INTERVAL", 60.0)
    job_id, other = add_job(any_store), add_job(any_store)
    any_store.update(COLLECTION, job_id, {"state": "RUNNING"})
    answers: list[dict] = []
    waiter = threading.Thread(target=lambda: answers.append(
        longpoll.wait_for_change(any_store, "ana", False, job_id, wait=50, since="RUNNING")))
    begun = time.monotonic()
    waiter.start()
    any_store.update(COLLECTION, other, {"state": "RUNNING"})  # wakes it, but it is not its job
    deadline = time.monotonic() + 30
    while ("jobs", job_id) not in changes._watched:  # the waiter is watching its job
        assert time.monotonic() < deadline, "the waiter never started watching"
        time.sleep(0.01)
    assert any_store.update(COLLECTION, job_id, {"state": "SUCCESS"}, expect={"state": "RUNNING"})
    waiter.join(timeout=30)
    assert not waiter.is_alive(), "the waiter slept through the write"
    assert answers[0]["state"] == "SUCCESS" and time.monotonic() - begun < 30
