"""Job ids are per tenant: a scrapyd client may choose its ``jobid``, and whether another tenant
chose the same one must make no difference it can see."""

from __future__ import annotations

import uuid

import httpx

from tests.harness import Gateway, wait_for_status
from tests.security.servers import AttackerSite

QUOTE = '<div class="quote"><span class="text">{}</span></div>'


def _schedule(client: httpx.Client, job_id: str, start_url: str) -> httpx.Response:
    form = {"project": "spiders_project", "spider": "quotes", "jobid": job_id, "start_url": start_url}
    return client.post("/schedule.json", data=form)


def _scheduled(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["status"], body["jobid"]


def test_a_job_id_another_tenant_chose_is_neither_revealed_nor_shared(
    platform: Gateway, attacker: AttackerSite
) -> None:
    chosen = f"chosen-{uuid.uuid4().hex[:8]}"
    pages = [attacker.page(f"/ids-{n}", QUOTE.format(f"quote of tenant {n}")) for n in (1, 2)]
    with (
        platform.client(platform.create_key("first-chooser")) as first,
        platform.client(platform.create_key("second-chooser")) as second,
    ):
        assert _scheduled(_schedule(first, chosen, pages[0])) == (200, "ok", chosen)
        # The same answer as for an id nobody has: the other tenant's job stays a secret.
        assert _scheduled(_schedule(second, chosen, pages[1])) == (200, "ok", chosen)
        # A tenant's own ids stay unique.
        assert _schedule(second, chosen, pages[1]).status_code == 409

        for n, client in enumerate((first, second), start=1):
            job = wait_for_status(client, chosen, "finished", timeout=90)
            assert job["id"] == chosen
            assert job["items_scraped"] == 1
            items = client.get(f"/items/spiders_project/quotes/{chosen}.jl").text
            assert f"quote of tenant {n}" in items
            assert f"quote of tenant {3 - n}" not in items
            listed = client.get("/listjobs.json", params={"project": "spiders_project"}).json()
            assert [entry["id"] for entry in listed["finished"]].count(chosen) == 1
            log = client.get(f"/logs/spiders_project/quotes/{chosen}.log")
            assert log.status_code == 200
            # The node's names for the job (its log, its feed) are its own for both tenants alike.
            assert f"{chosen}.log" not in log.text
            assert f"{chosen}.jl" not in log.text
