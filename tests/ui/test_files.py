"""Files: upload a small image inline and a large one through the presigned multipart flow, both
with the progress bar; the Files table with name, size, shape, state and date; download and
delete where they make sense."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from tests.helpers import wait_for

# Every text the upload status line shows, in order (a MutationObserver misses none).
RECORD_STATUS = """() => {
  const el = document.getElementById('upload-status');
  window.statusSeen = [];
  new MutationObserver(() => window.statusSeen.push(el.textContent)).observe(el, {childList: true,
    characterData: true, subtree: true});
}"""


def file_row(page, name):
    return page.get_by_role("table", name="Files").locator("tbody tr").filter(has_text=name)


def test_small_upload_goes_inline_and_lists_the_file(ui, images):
    page = ui.signed_in("fay")
    ui.home_ready(page)
    sent = []
    page.on("request", lambda req: sent.append((req.method, urlsplit(req.url).path)))
    page.get_by_label("FITS file").set_input_files(images["field"])
    page.get_by_label("Tag (optional)").fill("survey-a")
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("field.fits is ready").wait_for()
    assert ("POST", "/function/upload") in sent and not any(p.startswith("/storage/") for _, p in sent)
    assert page.locator("#upload-progress").evaluate("bar => bar.value") == 100
    row = file_row(page, "field.fits")
    cells = row.locator("td").all_inner_texts()
    kib = images["field"].stat().st_size / 1024
    assert cells[1] == "ready" and cells[2] == f"{kib:.0f} KiB" and cells[3] == "384 × 384 × 1 × 1"
    assert "tag survey-a" in cells[0] and cells[4]  # date shown
    assert row.get_by_role("button", name="Download field.fits").is_visible()
    ui.shoot(page, "files-small")


def test_large_upload_uses_presigned_multipart_parts(ui, images):
    page = ui.signed_in("gus")
    ui.home_ready(page)
    puts = []
    page.on("requestfinished", lambda req: req.method == "PUT" and puts.append(req))
    page.evaluate(RECORD_STATUS)
    page.get_by_label("FITS file").set_input_files(images["large"])
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("large.fits is ready").wait_for(timeout=60_000)
    phases = page.evaluate("window.statusSeen")
    assert [p for p in phases if p.startswith("Checking large.fits")]  # the part CRCs, before any byte left
    uploading = [int(p.rsplit(" ", 1)[1].rstrip("%")) for p in phases if p.startswith("Uploading large.fits")]
    assert uploading and uploading == sorted(uploading) and uploading[-1] == 100
    size = images["large"].stat().st_size
    assert size > 5 * 1024 * 1024  # two parts of the 5 MiB part size
    assert len(puts) == 2, [p.url for p in puts]
    for put in puts:
        url = urlsplit(put.url)
        assert url.hostname == "127.0.0.1" and url.path.startswith("/storage/o/files/gus/")  # straight to storage
        assert "upload_id=" in url.query and put.headers.get("x-amz-checksum-crc32")  # signed part CRC
        assert put.response().status == 200
    row = file_row(page, "large.fits")
    assert row.locator("td").nth(1).inner_text() == "ready" and row.locator("td").nth(3).inner_text() == "1200 × 1200"
    listed = ui.api("gus").get(ui.stack.url + "/function/files", timeout=10).json()["files"]
    stored = next(f for f in listed if f["filename_orig"] == "large.fits")
    assert stored["bytes"] == size and stored["state"] == "ready"
    ui.shoot(page, "files-large")


def test_download_and_delete_act_on_the_right_file(ui, images):
    page = ui.signed_in("hal")
    ui.home_ready(page)
    page.get_by_label("FITS file").set_input_files(images["noise"])
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("noise.fits is ready").wait_for()
    with page.expect_download() as got:
        page.get_by_role("button", name="Download noise.fits").click()
    download = got.value
    assert download.suggested_filename == "noise.fits"
    digest = hashlib.sha256(open(download.path(), "rb").read()).hexdigest()
    assert digest == hashlib.sha256(images["noise"].read_bytes()).hexdigest()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete noise.fits").click()
    page.get_by_text("noise.fits deleted.").wait_for()
    wait_for(lambda: file_row(page, "noise.fits").count() == 0, timeout=60, message="the row to go")
    assert ui.api("hal").get(ui.stack.url + "/function/files", timeout=10).json()["files"] == []
