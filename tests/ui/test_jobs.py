"""Jobs from the page: submit sep through the generated form, follow it live in the Jobs table
(long-poll, no reload) to SUCCESS, read its page (preview, Sources, products, log), a field
error from the server, cancelling a running job, a failure's class and message, filters and
paging."""

from __future__ import annotations

import gzip
import io
import tarfile
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import wait_for
from tests.ui.conftest import HTTP_ERROR, upload_with_api, wait_row_state

PRODUCTS = ["catalog.csv", "catalog.vot", "catalog.json", "sources.reg", "preview.png", "job.log", "manifest.json"]
# Every data-state a row shows, in order (the table is redrawn in place on each change).
RECORD_STATES = """(jobId) => {
  window.statesSeen = [];
  const note = () => {
    const row = document.querySelector(`tr[data-job-id="${jobId}"]`);
    const state = row && row.dataset.state;
    if (state && window.statesSeen[window.statesSeen.length - 1] !== state) window.statesSeen.push(state);
  };
  note();
  new MutationObserver(note).observe(document.querySelector('table[aria-labelledby=jobs-heading] tbody'),
    {childList: true, subtree: true});
}"""


def submitted_job_id(page) -> str:
    link = page.locator(".submit-result a")
    link.wait_for()
    return link.get_attribute("href").rsplit("/", 1)[1]


def submit_from_page(page, file_id: str) -> str:
    page.get_by_label("Input file").select_option(file_id)
    page.get_by_role("button", name="Submit", exact=True).click()
    return submitted_job_id(page)


def api_bytes(ui, user, job_id, name):
    resp = ui.api(user).get(f"{ui.stack.url}/function/output/{job_id}/{name}", timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.content


def test_submit_sep_with_one_option_and_follow_it_live_to_its_results(ui, images):
    user = "iris"
    file_id = upload_with_api(ui, user, images["field"])["uuid"]
    page = ui.signed_in(user)
    ui.home_ready(page)
    page.evaluate("window.notReloaded = true")
    polls = []
    page.on("request", lambda req: urlsplit(req.url).path == "/function/jobs" and polls.append(req.url))

    thresh = page.get_by_label("thresh", exact=True)
    assert thresh.get_attribute("type") == "number" and thresh.input_value() == "5"
    assert thresh.get_attribute("min") == "0.5" and thresh.get_attribute("max") == "1000"
    thresh.fill("4")
    job_id = submit_from_page(page, file_id)
    page.evaluate(RECORD_STATES, job_id)
    wait_row_state(page, job_id, "SUCCESS", timeout=180)

    seen = page.evaluate("window.statesSeen")
    assert seen[-1] == "SUCCESS" and ({"STARTED", "RUNNING"} & set(seen)), seen  # it moved while we watched
    assert page.evaluate("window.notReloaded") is True
    queries = [parse_qs(urlsplit(url).query) for url in polls]
    assert len(queries) >= 2 and all("since" in q and q["wait"] == ["25"] for q in queries[1:]), polls
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    assert row.locator("progress").evaluate("bar => bar.value") == 100
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "SUCCESS" and cells[3] == "sep" and cells[4] == "field.fits" and cells[7].endswith(" s")
    job = ui.api(user).get(f"{ui.stack.url}/function/status/{job_id}", timeout=10).json()
    assert job["job_inputs"] == {"thresh": 4}  # only the option changed from its default
    ui.shoot(page, "jobs-success")

    row.get_by_role("link", name=f"Job {job_id}").click()
    page.get_by_role("img", name=f"Preview of job {job_id}").wait_for()
    assert page.evaluate("window.notReloaded") is True  # the job page is a view of the same page
    options = page.get_by_role("table", name="Options")
    shown = {cells[0]: cells[1:] for cells in (r.locator("td").all_inner_texts() for r in options.locator("tbody tr").all())}
    assert shown["thresh"] == ["4", "you"] and shown["minarea"] == ["5", "default"] and shown["bmaj"] == ["not set", "default"]
    assert page.get_by_role("heading", name="Provenance").is_visible()

    catalog = ui.api(user).get(f"{ui.stack.url}/function/output/{job_id}/catalog.json", timeout=30).json()
    rows = len(catalog["sources"])
    assert rows > 25  # more than one page of the table
    sources = page.get_by_role("table", name="Sources")
    headers = sources.locator("thead th").all_inner_texts()
    assert "ra (deg)" in headers and "peak_flux (Jy/beam)" in headers and "major (arcsec)" in headers
    counted = sources.locator("tbody tr").count()
    assert counted == 25
    next_page = page.get_by_role("button", name="Next page")
    while next_page.is_enabled():
        next_page.click()
        counted += sources.locator("tbody tr").count()
    assert counted == rows
    assert page.get_by_text(f"of {rows}").is_visible()

    snr_header = sources.get_by_role("button", name="snr", exact=True)
    snr_header.click()
    assert sources.locator('th:has(button[data-column="snr"])').get_attribute("aria-sort") == "ascending"
    snr_header.click()
    assert sources.locator('th:has(button[data-column="snr"])').get_attribute("aria-sort") == "descending"
    snr_col = headers.index("snr")
    top = float(sources.locator("tbody tr").first.locator("td").nth(snr_col).inner_text())
    best = max(s["snr"] for s in catalog["sources"] if s["snr"] is not None)
    assert top == pytest.approx(best, rel=1e-3)

    log = page.get_by_role("heading", name="Job log")
    assert log.is_visible() and f"runner for job {job_id}" in page.locator("pre.log").inner_text()
    ui.shoot(page, "job-success")

    for name in PRODUCTS:
        with page.expect_download() as got:
            page.get_by_role("link", name=name, exact=True).click()
        download = got.value
        assert download.suggested_filename == name
        assert open(download.path(), "rb").read() == api_bytes(ui, user, job_id, name), name
    with page.expect_download() as got:
        page.get_by_role("link", name=f"{job_id}.tar.gz", exact=True).click()
    assert got.value.suggested_filename == f"{job_id}.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(open(got.value.path(), "rb").read()))) as tar:
        assert {m.name.split("/", 1)[1] for m in tar.getmembers()} >= set(PRODUCTS)


def test_a_field_error_from_the_server_is_shown_beside_its_field(ui, images):
    ui.allow(HTTP_ERROR.format(400))  # the refused submission
    user = "jon"
    upload_with_api(ui, user, images["noise"])
    page = ui.signed_in(user)
    ui.home_ready(page)

    page.get_by_label("thresh", exact=True).fill("0.1")  # below the minimum: caught before sending
    page.get_by_role("button", name="Submit", exact=True).click()
    assert "at least 0.5" in page.locator("#error-thresh").inner_text()
    assert page.evaluate("document.activeElement.id") == "opt-thresh"
    page.get_by_label("thresh", exact=True).fill("5")

    page.get_by_label("bmaj", exact=True).fill("5")  # only the server knows bmin must come with it
    page.get_by_role("button", name="Submit", exact=True).click()
    error = page.locator("#error-bmin")
    error.wait_for()
    assert "must be given together with bmaj" in error.inner_text()
    bmin = page.get_by_label("bmin", exact=True)
    assert bmin.get_attribute("aria-invalid") == "true" and "error-bmin" in bmin.get_attribute("aria-describedby")
    assert page.evaluate("document.activeElement.id") == "opt-bmin"
    assert page.locator("#error-thresh").is_hidden()
    assert ui.api(user).get(ui.stack.url + "/function/jobs", timeout=10).json()["jobs"] == []
    ui.shoot(page, "field-error")


def test_cancel_a_running_job_from_the_table(ui, images):
    user = "kai"
    file_id = upload_with_api(ui, user, images["hold"])["uuid"]
    page = ui.signed_in(user)
    ui.home_ready(page)
    job_id = submit_from_page(page, file_id)
    wait_row_state(page, job_id, "RUNNING", timeout=60)
    ui.shoot(page, "job-running")
    page.get_by_role("button", name=f"Cancel job {job_id}").click()
    wait_row_state(page, job_id, "ABORTED", timeout=30)
    assert page.get_by_role("button", name=f"Cancel job {job_id}").count() == 0
    job = ui.api(user).get(f"{ui.stack.url}/function/status/{job_id}", timeout=10).json()
    assert job["state"] == "ABORTED" and job["status"] == "Aborted by the user"


def test_a_failed_job_shows_its_error_class_and_message(ui, images):
    user = "lea"
    file_id = upload_with_api(ui, user, images["noise"])["uuid"]
    resp = ui.api(user).post(ui.stack.url + "/function/submit", timeout=10,
                             json={"app": "sep", "data_inputs": file_id, "job_inputs": {}})
    job_id = resp.json()["job_id"]
    page = ui.signed_in(user, route=f"#/jobs/{job_id}")
    page.get_by_role("heading", name=f"Job {job_id}").wait_for()
    alert = page.get_by_role("alert").filter(has_text="Failed")
    alert.wait_for(timeout=120_000)
    job = ui.api(user).get(f"{ui.stack.url}/function/status/{job_id}", timeout=10).json()
    assert job["state"] == "FAILURE" and job["error_class"] == "usage"
    assert "usage" in alert.locator(".error-class").inner_text()
    assert alert.locator(".error-message").inner_text() == job["status"]
    page.get_by_role("heading", name="Job log").wait_for()
    assert page.get_by_role("link", name="job.log", exact=True).is_visible()
    assert page.get_by_role("img").filter(has=page.locator(".preview")).count() == 0
    ui.shoot(page, "job-failure")


def test_filters_and_paging_of_the_jobs_table(ui, images):
    user = "max"
    client = ui.api(user)
    file_id = upload_with_api(ui, user, images["hold"])["uuid"]
    job_ids = []
    try:
        for n in range(11):
            resp = client.post(ui.stack.url + "/function/submit", timeout=10,
                               json={"app": "sep", "data_inputs": file_id, "job_inputs": {}, "tag": f"batch-{n}"})
            assert resp.status_code == 202, resp.text
            job_ids.append(resp.json()["job_id"])
        page = ui.signed_in(user)
        jobs = page.get_by_role("table", name="Jobs")
        wait_for(lambda: jobs.locator("tbody tr[data-job-id]").count() == 11, timeout=60, message="11 rows")

        page.get_by_label("Jobs per page").select_option("10")
        wait_for(lambda: jobs.locator("tbody tr[data-job-id]").count() == 10, timeout=60, message="a page of 10")
        first_page = set(jobs.locator("tbody tr[data-job-id]").evaluate_all("rows => rows.map(r => r.dataset.jobId)"))
        page.get_by_role("button", name="Next page").last.click()
        wait_for(lambda: jobs.locator("tbody tr[data-job-id]").count() == 1, timeout=60, message="the second page")
        last = jobs.locator("tbody tr[data-job-id]").get_attribute("data-job-id")
        assert first_page | {last} == set(job_ids) and last == job_ids[0]  # newest first
        page.get_by_role("button", name="Previous page").last.click()
        wait_for(lambda: jobs.locator("tbody tr[data-job-id]").count() == 10, timeout=60, message="back to page 1")

        page.get_by_label("Filter by state").select_option("PENDING")
        wait_for(lambda: jobs.locator("tbody tr").count() > 0 and all(
            s == "PENDING" for s in jobs.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.state)")),
            timeout=60, message="only PENDING rows")
        page.get_by_label("Filter by state").select_option("")
        page.get_by_label("Filter by app").select_option("aegean")
        page.get_by_text("No job matches these filters.").wait_for()
        ui.shoot(page, "jobs-filtered")
    finally:  # frees the runner slots the held jobs take
        for job_id in job_ids:
            client.post(f"{ui.stack.url}/function/cancel/{job_id}", timeout=10)


def test_the_job_page_follows_a_running_job_and_cancels_it(ui, images):
    user = "ned"
    file_id = upload_with_api(ui, user, images["hold"])["uuid"]
    job_id = ui.api(user).post(ui.stack.url + "/function/submit", timeout=10,
                               json={"app": "sep", "data_inputs": file_id, "job_inputs": {}}).json()["job_id"]
    page = ui.signed_in(user, route=f"#/jobs/{job_id}")
    state = page.locator(".facts .badge").first
    wait_for(lambda: state.inner_text() == "RUNNING", timeout=60, message="RUNNING on the job page")
    assert page.get_by_role("progressbar", name="Progress of this job").evaluate("bar => bar.value") == 10
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Cancel job").click()
    wait_for(lambda: state.inner_text() == "ABORTED", timeout=60, message="ABORTED on the job page")
    assert page.evaluate("window.notReloaded") is True
    assert page.get_by_role("button", name="Cancel job").count() == 0
