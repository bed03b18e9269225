"""Two gateways on one store, each with its own embedded node: neither touches the other's jobs."""

from __future__ import annotations

from pathlib import Path

from tests.harness import Gateway, free_port, job_of, start_job, wait_for_status, wait_until
from tests.security.servers import AttackerSite


def test_two_gateways_on_one_store_leave_each_others_jobs_alone(
    tmp_path: Path, attacker: AttackerSite
) -> None:
    store = f"sqlite+aiosqlite:///{(tmp_path / 'a' / 'gateway.sqlite3').resolve()}"
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{attacker.port}", "GATEWAY_DATABASE_URL": store}
    first = Gateway(tmp_path / "a", env=env, scrapyd_port=free_port()).start()
    second = Gateway(tmp_path / "b", env=env, scrapyd_port=free_port()).start()
    try:
        with first.client(first.create_key("shared")) as client:
            job_id = start_job(client, "quotes", start_url=f"{attacker.url}slow?seconds=4")
            wait_until(lambda: job_of(client, job_id)["status"] == "running", what="the job to run")
            job = wait_for_status(client, job_id, "finished", "error", timeout=60)
    finally:
        second.stop()
        first.stop()

    assert job["status"] == "finished", job["error"]
    assert job["items_scraped"] == 1
