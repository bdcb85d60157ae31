"""Scrapyd end to end: a real scrapyd in a folder of its own, the project deployed as an egg, a crawl scheduled.

Nothing is installed by hand: scrapyd and scrapyd-client come from the lock's dev group, and the jobs
run with scrapyd's interpreter (this one), as they do on a crawl host where the lock is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from tests.conftest import PROJECT, db_of, free_port, wait_for_port

SCRAPYD = Path(sys.executable).with_name("scrapyd")
pytestmark = pytest.mark.skipif(
    not SCRAPYD.exists(), reason="scrapyd is not installed (it is in requirements-dev.lock)"
)


def call(base: str, endpoint: str, fields: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A Scrapyd JSON endpoint; ``fields`` form-encoded (URIs with ``&`` too, as curl --data-urlencode does)."""
    payload = urlencode(fields).encode() if fields is not None else None
    with urlopen(f"{base}/{endpoint}", data=payload, timeout=60) as response:
        return json.loads(response.read())


def deploy(base: str, tmp_path: Path) -> dict[str, Any]:
    """``addversion.json`` with the egg ``scrapyd-deploy`` builds (a multipart upload, as it does)."""
    boundary = "imdb-crawler-test-boundary"
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("project", "imdb_crawler"), ("version", "r1"))
    )
    egg = (f'--{boundary}\r\nContent-Disposition: form-data; name="egg"; filename="project.egg"\r\n'
           "Content-Type: application/octet-stream\r\n\r\n")  # fmt: skip
    body = (head + egg).encode() + build_egg(tmp_path) + f"\r\n--{boundary}--\r\n".encode()
    request = Request(f"{base}/addversion.json", data=body,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    with urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture
def scrapyd(tmp_path: Path) -> Any:
    """scrapyd on a free port, with its eggs, logs and databases in a temporary folder of its own."""
    home = tmp_path / "scrapyd"
    home.mkdir()
    port = free_port()
    (home / "scrapyd.conf").write_text(
        f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {port}\npoll_interval = 0.2\nmax_proc = 2\n"
        "eggs_dir = eggs\nlogs_dir = logs\ndbs_dir = dbs\n"
    )
    process = subprocess.Popen([str(SCRAPYD)], cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, timeout=30)
    yield f"http://127.0.0.1:{port}", home
    process.terminate()
    process.wait(timeout=30)


def build_egg(tmp_path: Path) -> bytes:
    """The egg ``scrapyd-deploy`` uploads, built from a copy of the project (the checkout stays clean)."""
    source = tmp_path / "source"
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns(".venv", "var", "tests", "bench", ".git", "*.egg*",
                                                                     "build", "__pycache__"))  # fmt: skip
    egg = tmp_path / "project.egg"
    subprocess.run([sys.executable, "-m", "scrapyd_client.deploy", "--build-egg", str(egg)], cwd=source, check=True,
                   capture_output=True)  # fmt: skip
    return egg.read_bytes()


def wait_for_job(base: str, job: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(j["id"] == job for j in call(base, "listjobs.json?project=imdb_crawler")["finished"]):
            return
        time.sleep(0.3)
    raise TimeoutError(f"job {job} did not finish in {timeout}s")


def test_a_crawl_scheduled_on_scrapyd_stores_its_pages_and_records_the_job(scrapyd, demo_site, mongo_uri, tmp_path):
    base, home = scrapyd
    added = deploy(base, tmp_path)
    assert added["status"] == "ok" and added["spiders"] == 1, added
    uri = f"{mongo_uri}&appname=scrapyd-test"  # an & in the value: form-encoded, it reaches the job whole
    scheduled = schedule(base, uri, demo_site.base_url, tmp_path)
    assert scheduled["status"] == "ok", scheduled
    wait_for_job(base, scheduled["jobid"])
    db = db_of(mongo_uri)
    assert sorted(db.titles.distinct("_id")) == ["tt0133093"] and db.people.distinct("_id") == ["nm0000138"]
    run = db.crawl_runs.find_one()
    assert run["scrapyd_job"] == scheduled["jobid"] and run["finish_reason"] == "finished"
    assert all(m["ok"] for m in run["monitors"])
    assert not (home / "var").exists()  # nothing written into scrapyd's folder but its own eggs, logs and dbs


def schedule(base: str, uri: str, site: str, tmp_path: Path, **extra: str) -> dict[str, Any]:
    fields = [("project", "imdb_crawler"), ("spider", "imdb"), ("start", "tt0133093,nm0000138"), ("depth", "0"),
              ("setting", f"IMDB_BASE_URL={site}"), ("setting", "AUTOTHROTTLE_ENABLED=False"),
              ("setting", f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}")]  # fmt: skip
    if uri:
        fields.append(("setting", f"MONGODB_URI={uri}"))
    return call(base, "schedule.json", fields)


def test_a_job_without_mongodb_uri_refuses_instead_of_writing_into_scrapyd_s_folder(scrapyd, demo_site, tmp_path):
    base, home = scrapyd
    assert deploy(base, tmp_path)["status"] == "ok"
    scheduled = schedule(base, "", demo_site.base_url, tmp_path)
    wait_for_job(base, scheduled["jobid"])
    log = next((home / "logs").rglob(f"{scheduled['jobid']}.log")).read_text()
    assert "Not crawling: no MONGODB_URI under Scrapyd" in log
    assert not (home / "var").exists()  # no embedded server in scrapyd's working folder
