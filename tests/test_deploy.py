"""Deploying with the tools spider authors already use, and scrapyd's JSON API at the gateway's root."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import TESTBED, deploy_testbed, scrapyd_deploy
from tests.harness import Gateway, ScrapydNode, start_job, wait_for_status, wait_until

TESTBED_SPIDERS = ["bloated", "broken_init", "broken_start", "echo", "hard_exit", "stubborn", "ticker"]
SCRAPYD_DEPLOY = Path(sys.executable).parent / "scrapyd-deploy"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of this module's own: these tests deploy and delete projects."""
    node = ScrapydNode(tmp_path_factory.mktemp("deploy-node")).start()
    started = Gateway(tmp_path_factory.mktemp("deploy-gateway"), node).start()
    yield started
    started.stop()
    node.stop()


@pytest.fixture(scope="module")
def testbed(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    return deploy_testbed(gateway, tmp_path_factory.mktemp("testbed"))


def scrapyd_api(gateway: Gateway, key: str) -> httpx.Client:
    """A client as scrapyd clients are: HTTP Basic, the API key as password."""
    return httpx.Client(base_url=gateway.url, auth=("deployer", key), timeout=180.0)


def make_project(tmp_path: Path, project: str) -> Path:
    """A copy of the tests' Scrapy project, deployable under another project name."""
    project_dir = tmp_path / project
    shutil.copytree(TESTBED, project_dir)
    return project_dir


def test_scrapyd_deploy_deploys_a_project_whose_spiders_then_run_by_name(
    gateway: Gateway, tmp_path: Path
) -> None:
    result = scrapyd_deploy(make_project(tmp_path, "testbed"), gateway.url, gateway.admin_key(), "shelf")

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "ok"
    assert answer["project"] == "shelf"
    assert answer["spiders"] == len(TESTBED_SPIDERS)
    with gateway.client(gateway.create_key("author")) as client:
        spiders = [spider for spider in client.get("/api/v1/spiders").json() if spider["project"] == "shelf"]
        assert sorted(spider["name"] for spider in spiders) == TESTBED_SPIDERS
        job_id = start_job(client, "ticker", project="shelf", count=3, interval=0)
        job = wait_for_status(client, job_id, "finished")
        assert job["items_scraped"] == 3
        assert job["project"] == "shelf"


def test_scrapyd_deploy_with_a_user_key_fails(gateway: Gateway, tmp_path: Path) -> None:
    result = scrapyd_deploy(
        make_project(tmp_path, "testbed"), gateway.url, gateway.create_key("user"), "sneaky"
    )

    assert result.returncode != 0
    assert "403" in result.stderr
    with scrapyd_api(gateway, gateway.admin_key()) as admin:
        assert "sneaky" not in admin.get("/listprojects.json").json()["projects"]


def test_an_egg_that_is_not_a_zip_answers_400_with_scrapyds_message(gateway: Gateway) -> None:
    with scrapyd_api(gateway, gateway.admin_key()) as admin:
        response = admin.post(
            "/addversion.json",
            data={"project": "junk", "version": "1"},
            files={"egg": ("x.egg", b"not a zip")},
        )

    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert "egg is not a ZIP file" in response.json()["message"]


def test_an_egg_without_a_scrapy_project_answers_400(gateway: Gateway) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as egg:
        egg.writestr("something/__init__.py", "")
    with scrapyd_api(gateway, gateway.admin_key()) as admin:
        response = admin.post(
            "/addversion.json",
            data={"project": "hollow", "version": "1"},
            files={"egg": ("x.egg", buffer.getvalue())},
        )

    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert response.json()["message"]


def test_missing_parameters_answer_400_in_scrapyd_shape(gateway: Gateway) -> None:
    with scrapyd_api(gateway, gateway.admin_key()) as admin:
        response = admin.post("/addversion.json", data={"project": "p"})

    assert response.status_code == 400
    assert response.json()["message"] == "'version' parameter is required"


def test_an_url_encoded_egg_deploys_like_scrapydweb_sends_it(gateway: Gateway, tmp_path: Path) -> None:
    egg_path = tmp_path / "testbed.egg"
    project_dir = make_project(tmp_path, "testbed")
    subprocess.run(
        [SCRAPYD_DEPLOY, f"--build-egg={egg_path}"], cwd=project_dir, check=True, capture_output=True
    )
    body = urlencode({"project": "encoded", "version": "2", "egg": egg_path.read_bytes()}).encode()

    with scrapyd_api(gateway, gateway.admin_key()) as admin:
        response = admin.post(
            "/addversion.json", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["spiders"] == len(TESTBED_SPIDERS)
        assert "encoded" in admin.get("/listprojects.json").json()["projects"]


def test_scrapyd_api_answers_in_scrapyds_own_format(gateway: Gateway, testbed: str) -> None:
    with scrapyd_api(gateway, gateway.admin_key()) as admin:
        status = admin.get("/daemonstatus.json").json()
        assert status["status"] == "ok"
        assert {"pending", "running", "finished", "node_name"} <= set(status)
        assert "testbed" in admin.get("/listprojects.json").json()["projects"]
        versions = admin.get("/listversions.json", params={"project": "testbed"}).json()["versions"]
        assert len(versions) >= 1
        spiders = admin.get("/listspiders.json", params={"project": "testbed"}).json()
        assert spiders["status"] == "ok"
        assert "ticker" in spiders["spiders"]
        unknown = admin.get("/listspiders.json", params={"project": "nope"})
        assert unknown.status_code == 400
        assert unknown.json()["status"] == "error"
        assert unknown.json()["message"] == "project 'nope' not found"


def test_schedule_list_status_and_cancel_through_the_scrapyd_api(gateway: Gateway, testbed: str) -> None:
    key = gateway.create_key("scrapyd client")
    with scrapyd_api(gateway, key) as client:
        scheduled = client.post(
            "/schedule.json",
            data={
                "project": "testbed",
                "spider": "ticker",
                "count": "1000",
                "interval": "0.2",
                "setting": "LOG_LEVEL=INFO",
            },
        ).json()
        assert scheduled["status"] == "ok"
        job_id = scheduled["jobid"]

        wait_until(
            lambda: client.get("/status.json", params={"job": job_id}).json()["currstate"] == "running",
            what="the scheduled job to run",
        )
        listed = client.get("/listjobs.json", params={"project": "testbed"}).json()
        assert set(listed) >= {"pending", "running", "finished", "status", "node_name"}
        running = next(job for job in listed["running"] if job["id"] == job_id)
        assert running["spider"] == "ticker"
        assert running["pid"]
        assert running["start_time"]
        assert running["log_url"] == f"/logs/testbed/ticker/{job_id}.log"
        # Where scrapyd clients and scrapydweb look for logs and items, they are.
        wait_until(lambda: client.get(running["items_url"]).text.count("\n") >= 2, what="items at items_url")
        assert "[scrapy.core.engine] INFO: Spider opened" in client.get(running["log_url"]).text
        assert client.get(f"/logs/testbed/echo/{job_id}.log").status_code == 404

        cancelled = client.post("/cancel.json", data={"project": "testbed", "job": job_id}).json()
        assert cancelled == {"node_name": cancelled["node_name"], "status": "ok", "prevstate": "running"}
        wait_until(
            lambda: client.get("/status.json", params={"job": job_id}).json()["currstate"] == "finished",
            what="the cancelled job to finish",
        )
        again = client.post("/cancel.json", data={"project": "testbed", "job": job_id}).json()
        assert again["prevstate"] is None

    # The same job, seen through the jobs API of the same tenant.
    with gateway.client(key) as jobs_api:
        assert wait_for_status(jobs_api, job_id, "cancelled")["spider"]["name"] == "ticker"


def test_user_keys_may_only_give_crawl_settings(gateway: Gateway, testbed: str) -> None:
    with scrapyd_api(gateway, gateway.create_key("user")) as client:
        exporters = client.post(
            "/schedule.json",
            data={"project": "testbed", "spider": "echo", "setting": 'FEED_EXPORTERS={"jsonlines": "x.Y"}'},
        )
        assert exporters.status_code == 400
        assert "only admin keys may set FEED_EXPORTERS" in exporters.json()["message"]
        allowed = client.post(
            "/schedule.json",
            data={"project": "testbed", "spider": "echo", "setting": "CLOSESPIDER_ITEMCOUNT=5"},
        )
        assert allowed.json()["status"] == "ok"


def test_schedule_of_an_unknown_spider_answers_404_in_scrapyd_shape(gateway: Gateway, testbed: str) -> None:
    with scrapyd_api(gateway, gateway.create_key("lost")) as client:
        response = client.post("/schedule.json", data={"project": "testbed", "spider": "nope"})

    assert response.status_code == 404
    assert response.json()["status"] == "error"
    assert "nope" in response.json()["message"]


def test_only_admin_keys_delete_and_deleting_removes_the_spiders(gateway: Gateway, tmp_path: Path) -> None:
    admin_key = gateway.admin_key()
    assert scrapyd_deploy(make_project(tmp_path, "testbed"), gateway.url, admin_key, "doomed").returncode == 0

    with scrapyd_api(gateway, gateway.create_key("user")) as user:
        assert user.post("/delproject.json", data={"project": "doomed"}).status_code == 403
        assert user.post("/delversion.json", data={"project": "doomed", "version": "1"}).status_code == 403

    with scrapyd_api(gateway, admin_key) as admin:
        versions = admin.get("/listversions.json", params={"project": "doomed"}).json()["versions"]
        assert (
            admin.post("/delversion.json", data={"project": "doomed", "version": versions[0]}).json()[
                "status"
            ]
            == "ok"
        )
        assert admin.get("/listversions.json", params={"project": "doomed"}).json()["versions"] == []
        assert "doomed" not in admin.get("/listprojects.json").json()["projects"]
        spiders = httpx.get(f"{gateway.url}/api/v1/spiders", headers={"X-Api-Key": admin_key}).json()
        assert all(spider["project"] != "doomed" for spider in spiders)
        missing = admin.post("/delproject.json", data={"project": "doomed"})
        assert missing.status_code == 404
