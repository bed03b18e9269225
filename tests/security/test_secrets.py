"""Secrets stay where they belong: no spider process holds the node's password or the gateway's
settings, a batch's token never reaches argv, scrapyd's log or anything the tenant can read, and
proxy credentials appear in no record, log or listing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.harness import Gateway, ScrapydNode, start_job, wait_for_status, wait_until
from tests.security.conftest import PROXY_SECRET, readable, scrape
from tests.security.servers import AttackerSite


def _spider_process(node: ScrapydNode) -> int:
    def running() -> int | None:
        jobs = httpx.get(f"{node.url}listjobs.json", params={"project": "spiders_project"}).json()["running"]
        return next((job["pid"] for job in jobs if job["spider"] == "batch"), None)

    return wait_until(running, timeout=60, what="a batch spider process")


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\x00", b"\n").decode("utf-8", "replace")


def test_spider_processes_hold_no_secrets_and_tenants_see_none(
    tenant: httpx.Client, platform: Gateway, node: ScrapydNode, attacker: AttackerSite
) -> None:
    urls = [f"{attacker.url}slow?seconds=4&n={n}" for n in range(3)]
    started = tenant.post("/v2/batch/scrape", json={"urls": urls, "location": {"country": "US"}})
    assert started.status_code == 200, started.text
    pid = _spider_process(node)
    environment, argv = _proc(pid, "environ"), _proc(pid, "cmdline")
    with sqlite3.connect(platform.data_dir / "gateway.sqlite3") as db:
        (token,) = db.execute(
            "SELECT inputs_token FROM batches WHERE id = ?", (started.json()["id"],)
        ).fetchone()
    node_password = node.url.split(":")[2].split("@")[0]

    assert token not in argv
    for secret in (node_password, PROXY_SECRET):
        assert secret not in environment
        assert secret not in argv
    assert "GATEWAY_" not in environment
    assert "SCRAPYD_PASSWORD" not in environment

    result = scrape(tenant, [attacker.url])
    seen = readable(tenant) + repr(result)
    scrapyd_log = (node.directory / "scrapyd.log").read_text(encoding="utf-8", errors="replace")
    for secret in (token, node_password, PROXY_SECRET):
        assert secret not in seen
        assert secret not in scrapyd_log


def test_no_spider_runs_scrapys_consoles(gateway: Gateway, testbed: str) -> None:
    # The testbed project leaves TELNETCONSOLE_ENABLED at Scrapy's default (on).
    with gateway.client(gateway.create_key("console")) as client:
        job_id = start_job(client, "echo", project=testbed, word="hi")
        wait_for_status(client, job_id, "finished")
        log = client.get(f"/api/v1/jobs/{job_id}/log").text

    assert "Spider closed" in log
    assert "Telnet console listening" not in log
    assert "TelnetConsole" not in log
    assert "Remote control HTTP server" not in log
