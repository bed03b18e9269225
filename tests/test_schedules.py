"""Cron schedules through the gateway's API and CLI, firing real jobs, batches and recrawls on a
real scrapyd node. The scheduler's rules under a moved clock are in ``test_scheduler.py``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from gateway.accounts.keys import SHOWN_PREFIX_LENGTH
from tests.harness import REPO, Gateway, ScrapydNode, wait_for_status, wait_until
from tests.site import QuotesSite

TOKYO = ZoneInfo("Asia/Tokyo")


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    schedule: dict[str, Any] = response.json()
    return schedule


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_an_every_minute_schedule_starts_real_jobs_that_carry_its_id(
    user: httpx.Client, site: QuotesSite
) -> None:
    schedule = create(
        user,
        {
            "name": "quotes every minute",
            "cron": "* * * * *",
            "timezone": "Europe/Berlin",
            "spider_name": "quotes",
            "arguments": {"start_url": site.url, "max_pages": 1},
        },
    )
    following = moment(schedule["next_run_at"])
    assert following.second == 0
    assert timedelta(0) < following - datetime.now(UTC) <= timedelta(seconds=61)
    assert schedule["description"] == "Every minute"
    assert schedule["overlap"] == "skip"
    assert schedule["last_runs"] == []

    jobs = wait_until(
        lambda: user.get("/api/v1/jobs", params={"schedule_id": schedule["id"]}).json(),
        timeout=120,
        what="the schedule's first job",
    )
    job = wait_for_status(user, jobs[0]["id"], "finished")
    assert job["schedule_id"] == schedule["id"]
    assert job["items_scraped"] == 6
    assert job["arguments"] == {"start_url": site.url, "max_pages": 1}

    fired = user.get(f"/api/v1/schedules/{schedule['id']}").json()
    assert moment(fired["last_run_at"]) >= following
    run = fired["last_runs"][-1]
    assert run["trigger"] == "cron"
    assert run["due_at"] == schedule["next_run_at"]
    assert run["outcome"] == "started"
    assert (run["job_id"], run["status"]) == (job["id"], "finished")

    # Disabled, it has no next run; the jobs it started stay findable by its id.
    paused = user.patch(f"/api/v1/schedules/{schedule['id']}", json={"enabled": False}).json()
    assert paused["enabled"] is False
    assert paused["next_run_at"] is None
    assert user.delete(f"/api/v1/schedules/{schedule['id']}").json() == {
        "ok": True,
        "message": "Schedule deleted",
    }
    assert user.get(f"/api/v1/schedules/{schedule['id']}").status_code == 404
    assert job["id"] in {
        found["id"] for found in user.get("/api/v1/jobs", params={"schedule_id": schedule["id"]}).json()
    }


def test_batch_and_datasource_schedules_run_now(user: httpx.Client, site: QuotesSite) -> None:
    batch_schedule = create(
        user,
        {
            "name": "front page",
            "cron": "0 3 * * *",
            "batch": {"urls": [site.url], "formats": ["markdown", "links"]},
        },
    )
    assert batch_schedule["target"] == "batch"
    assert batch_schedule["batch"] == {"urls": [site.url], "formats": ["markdown", "links"]}

    run = user.post(f"/api/v1/schedules/{batch_schedule['id']}/run")
    assert run.status_code == 201, run.text
    assert run.json()["trigger"] == "manual"
    batch_id = run.json()["batch_id"]

    def batch_done() -> dict[str, Any] | None:
        status: dict[str, Any] = user.get(f"/v2/batch/scrape/{batch_id}").json()
        return status if status["status"] == "completed" else None

    batch = wait_until(batch_done, timeout=90, what="the scheduled batch")
    assert "Mark Twain" in batch["data"][0]["markdown"]
    shown = user.get(f"/api/v1/schedules/{batch_schedule['id']}").json()
    assert shown["last_runs"][0]["status"] == "completed"
    assert shown["last_run_at"] is not None

    datasource = user.post("/crawl", json={"url": site.url, "auto_start_crawl": False, "page_limit": 3})
    assert datasource.status_code == 201, datasource.text
    recrawl = create(
        user, {"name": "weekly recrawl", "cron": "@weekly", "datasource_id": datasource.json()["id"]}
    )
    crawl_id = user.post(f"/api/v1/schedules/{recrawl['id']}/run").json()["crawl_id"]

    def crawl_done() -> dict[str, Any] | None:
        crawl: dict[str, Any] = user.get(f"/crawl/{datasource.json()['id']}/crawls/{crawl_id}").json()
        return crawl if crawl["status"] in ("completed", "failed") else None

    assert wait_until(crawl_done, timeout=90, what="the scheduled recrawl")["status"] == "completed"
    assert user.get(f"/api/v1/schedules/{recrawl['id']}").json()["last_runs"][0]["status"] == "completed"

    # The datasource gone, its schedule is disabled with the reason at its next run.
    assert user.delete(f"/crawl/{datasource.json()['id']}").status_code in (200, 204)
    failed = user.post(f"/api/v1/schedules/{recrawl['id']}/run")
    assert failed.json()["outcome"] == "failed"
    disabled = user.get(f"/api/v1/schedules/{recrawl['id']}").json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "its datasource no longer exists")


def test_schedule_input_is_checked_and_schedules_are_the_tenants_own(
    user: httpx.Client, gateway: Gateway, site: QuotesSite
) -> None:
    base = {"name": "nightly", "cron": "0 2 * * *", "spider_name": "quotes"}
    refusals = {
        "cron '0 2 * *' is not valid: it needs five fields": {**base, "cron": "0 2 * *"},
        "cron '0 24 * * *' is not valid: bad hour field": {**base, "cron": "0 24 * * *"},
        "unknown time zone 'Europe/Springfield'": {**base, "timezone": "Europe/Springfield"},
        "unknown spider 'nope'": {**base, "spider_name": "nope"},
        "give exactly one of spider_id/spider_name, batch or datasource_id": {
            **base,
            "batch": {"urls": [site.url]},
        },
        "unknown fields: crontab": {**base, "crontab": "0 2 * * *"},
        "overlap must be one of skip, allow": {**base, "overlap": "queue"},
        "the batch spider runs only through batches and crawls": {**base, "spider_name": "batch"},
        "unknown datasource 'ds-1'": {"name": "n", "cron": "@daily", "datasource_id": "ds-1"},
        "none of the URLs can be scraped": {
            "name": "n",
            "cron": "@daily",
            "batch": {"urls": ["http://10.1.2.3/"]},
        },
        "arguments must be a JSON object": {**base, "arguments": ["a"]},
    }
    for message, body in refusals.items():
        response = user.post("/api/v1/schedules", json=body)
        assert response.status_code == 400, (message, response.text)
        assert message in response.json()["error"], response.text

    schedule = create(user, {**base, "timezone": "America/New_York"})
    for change in ({"cron": "0 2 30 2 *"}, {"cron": ""}, {"timezone": "Nowhere/Land"}):
        assert user.patch(f"/api/v1/schedules/{schedule['id']}", json=change).status_code == 400, change
    changed = user.patch(
        f"/api/v1/schedules/{schedule['id']}", json={"cron": "30 6 * * 1-5", "overlap": "allow"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["cron"], changed.json()["overlap"]) == ("30 6 * * 1-5", "allow")
    local = moment(changed.json()["next_run_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.weekday() < 5) == (6, 30, True)
    assert user.get(f"/api/v1/schedules/{schedule['id']}").json()["cron"] == "30 6 * * 1-5"

    with gateway.client(gateway.create_key("other team")) as other:
        assert other.get(f"/api/v1/schedules/{schedule['id']}").status_code == 404
        assert other.post(f"/api/v1/schedules/{schedule['id']}/run").status_code == 404
        assert schedule["id"] not in {found["id"] for found in other.get("/api/v1/schedules").json()}
    assert schedule["id"] in {found["id"] for found in user.get("/api/v1/schedules").json()}


def test_operators_list_create_run_and_delete_schedules_with_the_cli(
    gateway: Gateway, node: ScrapydNode, site: QuotesSite
) -> None:
    key = gateway.create_key("cli team")

    def cli(*arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "schedules", *arguments, "--data-dir", str(gateway.data_dir)],
            cwd=REPO,
            env={**os.environ, **gateway.env, "GATEWAY_SCRAPYD_URLS": node.url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    created = cli(
        "create",
        "--key",
        key[:SHOWN_PREFIX_LENGTH],
        "--name",
        "new year",
        "--cron",
        "0 0 1 1 *",
        "--timezone",
        "Asia/Tokyo",
        "--spider",
        "quotes",
        "--arg",
        f"start_url={site.url}",
        "--arg",
        "max_pages=1",
    )
    schedule_id = created.split()[2].rstrip(":")
    assert "At 00:00 on January 1 (Asia/Tokyo)" in created
    new_year = datetime(datetime.now(TOKYO).year + 1, 1, 1, tzinfo=TOKYO).astimezone(UTC)
    assert f"Next run: {new_year.isoformat()}" in created
    assert schedule_id in cli("list")

    ran = cli("run", schedule_id)
    assert re.fullmatch(r"Run [0-9a-f-]{36}: started, started [0-9a-f-]{36}\n", ran), ran
    job_id = ran.split()[-1]
    with gateway.client(key) as client:
        job = wait_for_status(client, job_id, "finished")
        assert job["schedule_id"] == schedule_id
        assert job["items_scraped"] == 6

    assert cli("delete", schedule_id).startswith(f"Deleted schedule {schedule_id}")
    assert schedule_id not in cli("list")
