"""Attacks through the browser: a rendered page of the attacker's site tries every way Chromium has
to reach a forbidden address. The guard sits on the browser's connections, so none may get through.
"""

from __future__ import annotations

import httpx

from tests.security.conftest import scrape
from tests.security.servers import CANARY_BODY, AttackerSite, Canary, UdpCanary

RENDERED = {"waitFor": 2500, "formats": ["markdown", "rawHtml", "screenshot"]}


def _everything_at_once(canary: str, canary6: str) -> str:
    """Subresources, frames, scripts, workers and sockets of every kind, all aimed at the canaries."""
    ws = canary.replace("http://", "ws://")
    return f"""<html><head>
<link rel="stylesheet" href="{canary}style.css">
<link rel="prefetch" href="{canary}prefetch">
<script src="{canary}script.js"></script>
</head><body><h1>attacker</h1>
<img src="{canary}image.png"><img src="{canary6}image6.png">
<iframe src="{canary}frame"></iframe>
<iframe src="http://localhost:{canary.rsplit(":", 1)[1]}"></iframe>
<video src="{canary}video.mp4"></video>
<form id="f" method="POST" action="{canary}schedule.json" target="sink">
<input name="project" value="x"></form>
<iframe name="sink"></iframe>
<script>
fetch("{canary}fetch").catch(() => {{}});
fetch("{canary}no-cors", {{mode: "no-cors"}}).catch(() => {{}});
var x = new XMLHttpRequest(); x.open("GET", "{canary}xhr"); x.send();
navigator.sendBeacon("{canary}beacon", "data");
try {{ new WebSocket("{ws}socket"); }} catch (e) {{}}
try {{ new EventSource("{canary}events"); }} catch (e) {{}}
try {{ new Worker(URL.createObjectURL(new Blob(
  ['fetch("{canary}worker").catch(() => {{}})'], {{type: "text/javascript"}}))); }} catch (e) {{}}
document.getElementById("f").submit();
</script></body></html>"""


def test_no_request_the_browser_makes_reaches_a_forbidden_address(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary, canary6: Canary
) -> None:
    before = (canary.connections, canary6.connections)
    page = attacker.page("/everything", _everything_at_once(canary.url, canary6.url))

    result = scrape(tenant, [page], **RENDERED)

    assert result["status"]["completed"] == 1
    assert [doc["metadata"]["statusCode"] for doc in result["status"]["data"]] == [200]
    assert (canary.connections, canary6.connections) == before
    assert CANARY_BODY not in repr(result)


def test_navigations_away_from_an_allowed_page_reach_nothing(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary
) -> None:
    before = canary.connections
    pages = [
        attacker.redirect(canary.url, 302),
        attacker.redirect(canary.url, 307),
        attacker.page("/refresh", f'<meta http-equiv="refresh" content="0; url={canary.url}">refresh'),
        attacker.page(
            "/later", f"<p>later</p><script>setTimeout(() => location.href = '{canary.url}', 300)</script>"
        ),
        attacker.page(
            "/top", f"<script>window.open('{canary.url}'); location = 'view-source:{canary.url}'</script>"
        ),
        attacker.page("/file", "<script>location = 'file:///etc/passwd'</script>"),
    ]

    result = scrape(tenant, pages, **RENDERED)

    assert result["status"]["completed"] == len(pages)
    assert canary.connections == before
    assert CANARY_BODY not in repr(result)
    assert "root:x:0:0" not in repr(result)


def test_a_rendered_redirect_to_the_platform_itself_is_refused(
    tenant: httpx.Client, own_services: list[str]
) -> None:
    result = scrape(tenant, own_services, **RENDERED)

    assert result["status"]["data"] == []
    assert len(result["errors"]["errors"]) == 2
    assert "node_name" not in repr(result)


def test_the_browser_sends_no_udp_of_its_own(tenant: httpx.Client, attacker: AttackerSite) -> None:
    with UdpCanary() as canary:
        turn = f"turn:127.0.0.1:{canary.port}?transport=udp"
        page = attacker.page(
            "/webrtc",
            f"""<p>webrtc</p><script>
            const pc = new RTCPeerConnection({{iceServers: [
              {{urls: "stun:127.0.0.1:{canary.port}"}},
              {{urls: "{turn}", username: "u", credential: "c"}}]}});
            pc.createDataChannel("x");
            pc.createOffer().then(offer => pc.setLocalDescription(offer));
            </script>""",
        )
        scrape(tenant, [page], **RENDERED)

        assert canary.datagrams == 0


def test_a_tenants_actions_reach_no_forbidden_address(
    tenant: httpx.Client, attacker: AttackerSite, canary: Canary, own_services: list[str]
) -> None:
    """Actions are the tenant's own script and clicks: they run behind the same guard as the page."""
    before = canary.connections
    page = attacker.page("/actions", f"<a id='away' href='{canary.url}away'>away</a>")
    script = (
        f"await fetch('{canary.url}fetch').then(r => r.text(), e => 'refused: ' + e);"
        f" return [await fetch('{own_services[0]}').then(r => r.text(), e => 'refused'),"
        f" await fetch('{canary.url}again', {{mode: 'no-cors'}}).then(r => 'answered', e => 'refused')]"
    )
    actions = [
        {"type": "executeJavascript", "script": script},
        {"type": "scrape"},
        {"type": "click", "selector": "#away"},
        {"type": "wait", "milliseconds": 500},
        {"type": "scrape"},
        {"type": "screenshot"},
    ]

    result = scrape(tenant, [page], formats=["markdown", "rawHtml"], actions=actions)

    assert canary.connections == before
    assert CANARY_BODY not in repr(result)
    assert "node_name" not in repr(result)
    [doc] = result["status"]["data"]
    assert doc["actions"]["javascriptReturns"] == [{"type": "object", "value": ["refused", "refused"]}]
