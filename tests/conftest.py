from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.forward_proxy import ForwardProxy, closed_port
from tests.harness import REPO, Gateway, ScrapydNode, wait_until
from tests.site import QuotesSite

TESTBED = REPO / "tests" / "projects" / "testbed"
# A proxy password that must never show up in an answer or a log.
PROXY_SECRET = "pr0xy-s3cret-pa55"


@pytest.fixture(scope="session")
def site() -> Iterator[QuotesSite]:
    with QuotesSite() as served:
        yield served


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapydNode]:
    started = ScrapydNode(tmp_path_factory.mktemp("node")).start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def forward_proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy("tester", PROXY_SECRET) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, node: ScrapydNode, site: QuotesSite, forward_proxy: ForwardProxy
) -> Iterator[Gateway]:
    # Batches may reach the tests' own site, and nothing else on loopback. Two proxy pools: US
    # datacenter (a dead proxy first, then the tests' proxy) and German residential.
    pools = [
        {
            "name": "us-datacenter",
            "type": "datacenter",
            "countries": ["US"],
            "urls": [f"http://tester:{PROXY_SECRET}@127.0.0.1:{closed_port()}", forward_proxy.url],
        },
        {"name": "de-residential", "type": "residential", "countries": ["DE"], "urls": [forward_proxy.url]},
    ]
    env = {"GATEWAY_ALLOWED_ADDRESSES": f"127.0.0.1:{site.port}", "GATEWAY_PROXY_POOLS": json.dumps(pools)}
    started = Gateway(tmp_path_factory.mktemp("gateway"), node, env=env).start()
    yield started
    started.stop()


def scrapyd_deploy(
    project_dir: Path, gateway_url: str, key: str, project: str
) -> subprocess.CompletedProcess[str]:
    """Run the unmodified scrapyd-deploy from ``project_dir`` against the gateway."""
    config = project_dir / "scrapy.cfg"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + f"\n[deploy:gateway]\nurl = {gateway_url}/\nusername = deployer\npassword = {key}\n"
        f"project = {project}\n",
        encoding="utf-8",
    )
    deploy = Path(sys.executable).parent / "scrapyd-deploy"
    return subprocess.run(
        [str(deploy), "gateway", "-p", project], cwd=project_dir, capture_output=True, text=True, timeout=180
    )


def deploy_testbed(gateway: Gateway, workdir: Path) -> str:
    """Deploy the tests' own Scrapy project through the gateway with scrapyd-deploy."""
    project_dir = workdir / "testbed"
    shutil.copytree(TESTBED, project_dir)
    result = scrapyd_deploy(project_dir, gateway.url, gateway.admin_key(), "testbed")
    assert result.returncode == 0, result.stdout + result.stderr
    return "testbed"


@pytest.fixture(scope="session")
def testbed(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    return deploy_testbed(gateway, tmp_path_factory.mktemp("testbed"))


@pytest.fixture
def node_pids(node: ScrapydNode) -> Callable[[str], int]:
    """The pid of a job's spider process, as its scrapyd node reports it."""

    def pid_of(job_id: str) -> int:
        def running_pid() -> int | None:
            running = httpx.get(f"{node.url}listjobs.json").json()["running"]
            return next((job["pid"] for job in running if job["id"] == job_id), None)

        return wait_until(running_pid, what=f"job {job_id} to run on the node")

    return pid_of


@pytest.fixture
def user(gateway: Gateway) -> Iterator[httpx.Client]:
    """A client with the key of a new tenant."""
    with gateway.client(gateway.create_key("user")) as client:
        yield client
