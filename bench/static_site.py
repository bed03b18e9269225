"""The article corpus served by nginx, out of the benchmark's process, so serving costs little CPU.

``with NginxCorpus(articles) as site: site.url_of(article, copy)`` serves the same URLs as
``bench.corpus.CorpusSite`` (``/page/<id>/<copy>``, ``text/html`` without a charset) from one
nginx worker. ``make nginx`` installs nginx from the OS packages when it is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.corpus import Article

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_CONFIG = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    types {{ }}
    default_type text/html;
    charset off;
    server {{
        listen 127.0.0.1:{port};
        root {root}/pages;
        location ~ "^/page/([^/]+)/[0-9]+$" {{ try_files /$1.html =404; }}
        # A webhook receiver that costs next to nothing (bench/batch_speed.py --webhook).
        location = /webhook {{ return 204; }}
        location / {{ return 404; }}
    }}
}}
"""


class NginxCorpus:
    def __init__(self, articles: list[Article]) -> None:
        if not Path(NGINX).exists():
            raise SystemExit("nginx is not installed: run `make nginx`")
        self._articles = articles
        self._directory = tempfile.TemporaryDirectory(prefix="corpus-nginx-")
        self._process: subprocess.Popen[bytes] | None = None
        self.port = _free_port()

    def url_of(self, article: Article, copy: int = 0) -> str:
        return f"http://127.0.0.1:{self.port}/page/{article.id}/{copy}"

    def __enter__(self) -> NginxCorpus:
        root = Path(self._directory.name)
        # nginx's worker runs as an unprivileged user when started as root: it must read the pages.
        root.chmod(0o755)
        (root / "pages").mkdir(mode=0o755)
        (root / "tmp").mkdir()
        for article in self._articles:
            page = root / "pages" / f"{article.id}.html"
            page.write_bytes(article.html)
            page.chmod(0o644)
        config = root / "nginx.conf"
        config.write_text(_CONFIG.format(root=root, port=self.port))
        self._process = subprocess.Popen(
            [NGINX, "-p", str(root), "-e", str(root / "error.log"), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_for_port(self.port, self._process)
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._directory.cleanup()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"nginx exited: {error}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")
