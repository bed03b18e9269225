"""What `make run` runs: one command starts a local scrapyd and the gateway; Ctrl-C stops both."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.harness import REPO, Gateway, free_port, gateway_cli, start_job, wait_for_status
from tests.site import QuotesSite


def test_serve_starts_everything_prints_a_working_key_and_stops_on_ctrl_c(
    tmp_path: Path, site: QuotesSite
) -> None:
    scrapyd_port = free_port()
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}"}
    gateway = Gateway(tmp_path / "var", scrapyd_port=scrapyd_port, env=env).start()
    try:
        printed = gateway.printed()
        assert "An admin API key was created" in printed
        curl = re.search(r"^\s+(curl .*)$", printed, re.MULTILINE)
        assert curl is not None
        # The printed example works as printed (run through httpx: same header, same URL).
        words = shlex.split(curl.group(1))
        header, url = words[words.index("-H") + 1], words[-1]
        name, _, value = header.partition(": ")
        spiders = httpx.get(url, headers={name: value}).json()
        assert [spider["name"] for spider in spiders] == ["batch", "quotes", "site"]

        with gateway.client(gateway.admin_key()) as client:
            job_id = start_job(client, "quotes", start_url=site.url, max_pages=4)
            assert wait_for_status(client, job_id, "finished")["items_scraped"] == 24
        scrapyd_pids = _processes_in_directory(tmp_path / "var" / "scrapyd")
        assert scrapyd_pids, "the local scrapyd runs in the data directory"
    finally:
        code = gateway.stop(signal.SIGINT)

    assert code in (0, -signal.SIGINT, 130)
    assert "Traceback" not in gateway.printed()
    assert _processes_in_directory(tmp_path / "var" / "scrapyd") == []
    assert _port_closed(scrapyd_port)


def test_a_second_start_keeps_the_key_and_the_deployed_version(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path / "var", scrapyd_port=free_port())
    gateway.start()
    key = gateway.admin_key()
    with gateway.client(key) as client:
        version = client.get("/api/v1/spiders").json()[0]["version"]
    gateway.stop(signal.SIGINT)
    gateway.output.unlink()

    gateway.start()
    try:
        assert "An admin API key was created" not in gateway.printed()
        with gateway.client(key) as client:
            assert client.get("/api/v1/spiders").json()[0]["version"] == version
    finally:
        gateway.stop(signal.SIGINT)


def test_keys_are_created_listed_and_revoked_from_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    created = gateway_cli(data_dir, "keys", "create", "--name", "alice", "--credits", "100")
    assert created.returncode == 0, created.stderr
    plaintext = created.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("spk_")

    listed = gateway_cli(data_dir, "keys", "list")
    assert listed.returncode == 0
    assert "alice" in listed.stdout
    assert plaintext[:12] in listed.stdout
    assert plaintext not in listed.stdout
    assert "0/100" in listed.stdout
    # Only a hash is stored.
    assert plaintext.encode() not in (data_dir / "gateway.sqlite3").read_bytes()

    revoked = gateway_cli(data_dir, "keys", "revoke", plaintext[:12])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in gateway_cli(data_dir, "keys", "list").stdout

    missing = gateway_cli(data_dir, "keys", "revoke", "spk_nothing")
    assert missing.returncode == 1
    assert "no API key" in missing.stderr


def test_a_revoked_key_is_refused(gateway: Gateway) -> None:
    key = gateway.create_key("short-lived")
    with gateway.client(key) as client:
        assert client.get("/api/v1/jobs").status_code == 200
        result = gateway_cli(gateway.data_dir, "keys", "revoke", key[:12])
        assert result.returncode == 0, result.stderr
        assert client.get("/api/v1/jobs").status_code == 401


def test_bad_settings_are_refused_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--data-dir", str(tmp_path), "--port", "99999"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "port" in result.stderr


def _processes_in_directory(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory``: scrapyd and its spiders."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(proc / "cwd").resolve() == directory.resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _port_closed(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
    except httpx.TransportError:
        return True
    return False
