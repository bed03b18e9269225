"""API keys, tenants and limits, as a client meets them."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.harness import Gateway, start_job, wait_for_status


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs", "/api/v1/spiders", "/api/v1/jobs/abc", "/listprojects.json"]
)
def test_requests_without_a_key_answer_401(gateway: Gateway, path: str) -> None:
    with gateway.client() as anonymous:
        response = anonymous.get(path)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert "error" in error or error["status"] == "error"


def test_a_wrong_key_answers_401_with_an_error(gateway: Gateway) -> None:
    with gateway.client("spk_not-a-real-key") as stranger:
        response = stranger.get("/api/v1/jobs")

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API key."}


def test_scrapyd_routes_answer_401_in_scrapyd_shape(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/listprojects.json", auth=("admin", "wrong"))

    assert response.status_code == 401
    assert response.json()["status"] == "error"
    assert response.json()["message"] == "Invalid API key."


@pytest.mark.parametrize("header", ["bearer", "x-api-key", "x-api-token"])
def test_every_auth_header_is_accepted(gateway: Gateway, header: str) -> None:
    with gateway.client(gateway.create_key("headers"), header=header) as client:
        assert client.get("/api/v1/jobs").status_code == 200


def test_basic_auth_with_the_key_as_password_is_accepted(gateway: Gateway) -> None:
    key = gateway.create_key("basic")
    token = base64.b64encode(f"anyone:{key}".encode()).decode()

    response = httpx.get(f"{gateway.url}/api/v1/jobs", headers={"Authorization": f"Basic {token}"})

    assert response.status_code == 200


def test_health_needs_no_key(gateway: Gateway) -> None:
    health = httpx.get(f"{gateway.url}/healthz").json()

    assert health["status"] == "ok"
    assert health["store"]["ok"] is True
    assert [node["ok"] for node in health["nodes"]] == [True]


def test_requests_beyond_the_keys_rate_answer_429_with_retry_after(gateway: Gateway) -> None:
    with gateway.client(gateway.create_key("limited", rate_limit_per_minute=3)) as client:
        answers = [client.get("/api/v1/jobs") for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].json() == {"error": "Request rate limit exceeded. Please wait and try again later."}
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 20


def test_rate_limits_are_per_key(gateway: Gateway) -> None:
    with gateway.client(gateway.create_key("busy", rate_limit_per_minute=1)) as busy:
        assert busy.get("/api/v1/jobs").status_code == 200
        assert busy.get("/api/v1/jobs").status_code == 429
    with gateway.client(gateway.create_key("calm", rate_limit_per_minute=1)) as calm:
        assert calm.get("/api/v1/jobs").status_code == 200


def test_spent_credits_answer_402_for_new_work(gateway: Gateway, testbed: str) -> None:
    with gateway.client(gateway.create_key("metered", credits=5)) as client:
        job_id = start_job(client, "ticker", count=8, interval=0)
        # The chunk of the feed that spends the credits is taken whole; nothing after it.
        assert 5 <= wait_for_status(client, job_id, "finished", "cancelled")["items_scraped"] <= 8

        response = client.post("/api/v1/jobs", json={"spider_name": "ticker"})

        assert response.status_code == 402
        assert response.json() == {"error": "Payment required to access this resource."}
        # Reading what was already paid for still works.
        assert client.get(f"/api/v1/jobs/{job_id}/items").status_code == 200


def test_a_key_without_credits_cannot_start_work(gateway: Gateway, testbed: str) -> None:
    with gateway.client(gateway.create_key("broke", credits=0)) as client:
        assert client.post("/api/v1/jobs", json={"spider_name": "echo"}).status_code == 402
        assert client.get("/api/v1/jobs").json() == []


def test_double_slashes_in_paths_are_collapsed(gateway: Gateway, user: httpx.Client) -> None:
    # A full URL, since a client's base_url would read "//api" as a host.
    assert user.get(f"{gateway.url}//api/v1//jobs").status_code == 200


def test_unknown_routes_answer_json_404_and_wrong_methods_405(user: httpx.Client) -> None:
    missing = user.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not found."}
    assert user.put("/api/v1/jobs").status_code == 405
