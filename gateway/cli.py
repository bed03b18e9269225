"""``python -m gateway``: serve the platform, and manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.config import ConfigError, Settings, load_settings
from gateway.errors import GatewayError
from gateway.keys import ApiKey, ApiKeys
from gateway.platform import Platform
from gateway.store import Store


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, _flags(args))
    except ConfigError as exc:
        parser.exit(2, f"error: {exc}\n")
    try:
        args.run(settings, args)
    except GatewayError as exc:
        parser.exit(1, f"error: {exc.message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML settings file (env GATEWAY_CONFIG)")
    common.add_argument(
        "--data-dir", type=Path, help="where the store, eggs and local node live (GATEWAY_DATA_DIR)"
    )
    common.add_argument("--database-url", help="SQLAlchemy URL of the store (GATEWAY_DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the gateway (and a local scrapyd node)")
    serve.add_argument("--host", help="address to listen on (GATEWAY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 8000)")
    serve.add_argument(
        "--scrapyd",
        dest="scrapyd_urls",
        action="append",
        metavar="URL",
        help="a scrapyd node, http://user:password@host:port; repeat for several "
        "(GATEWAY_SCRAPYD_URLS, comma-separated). Without one, a local node is started.",
    )
    serve.add_argument(
        "--scrapyd-port", type=int, help="port of the local node (GATEWAY_SCRAPYD_PORT, default 6800)"
    )
    serve.add_argument("--log-level", help="debug, info, warning or error (GATEWAY_LOG_LEVEL)")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", parents=[common], help="create a key (shown once)")
    create.add_argument("--name", required=True, help="who the key is for; names a new tenant")
    create.add_argument("--admin", action="store_true", help="may deploy and delete projects")
    create.add_argument("--credits", type=int, help="allowance of credits (one per item or page)")
    create.add_argument("--rate-limit", type=int, help="requests per minute (default: the gateway's)")
    create.add_argument("--tenant", help="add the key to this existing tenant instead of a new one")
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", parents=[common], help="list keys (never their secret)")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", parents=[common], help="revoke a key by id or shown prefix")
    revoke.add_argument("key", help="key id or shown prefix")
    revoke.set_defaults(run=_keys_revoke)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ("data_dir", "database_url", "host", "port", "scrapyd_urls", "scrapyd_port", "log_level")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _serve(settings: Settings, _args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per call to scrapyd, five times a second, says nothing an operator needs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    platform = Platform(settings, on_ready=_announce)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(platform),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            lifespan="on",
            server_header=False,
        )
    )
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn has shut down gracefully and re-raises Ctrl-C; the usual exit status, no traceback.
        sys.exit(130)
    if not server.started:
        sys.exit(1)


def _announce(platform: Platform) -> None:
    settings = platform.settings
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"Gateway ready at {url} (data in {settings.data_dir.resolve()})"]
    if platform.first_admin_key:
        key = platform.first_admin_key
        lines += [
            "",
            "An admin API key was created. It is shown only this once; keep it:",
            f"    {key}",
            "",
            "Try it:",
            f"    curl -H 'Authorization: Bearer {key}' {url}/api/v1/spiders",
        ]
    print("\n".join(lines), flush=True)


def _with_keys(settings: Settings, action: Any) -> Any:
    async def run() -> Any:
        store = Store(settings.database)
        try:
            await store.migrate()
            return await action(ApiKeys(store))
        finally:
            await store.close()

    return asyncio.run(run())


def _keys_create(settings: Settings, args: argparse.Namespace) -> None:
    key, plaintext = _with_keys(
        settings,
        lambda keys: keys.create(
            args.name,
            admin=args.admin,
            credits=args.credits,
            rate_limit_per_minute=args.rate_limit,
            tenant_id=args.tenant,
        ),
    )
    print(f"Created {'admin ' if key.is_admin else ''}key {key.id} for tenant {key.tenant_id}.")
    print("The key is shown only this once:")
    print(plaintext)


def _keys_list(settings: Settings, _args: argparse.Namespace) -> None:
    keys: list[ApiKey] = _with_keys(settings, lambda keys: keys.all())
    print(f"{'id':36}  {'prefix':12}  {'tenant':36}  {'name':20}  admin  credits      state")
    for key in keys:
        credits = "-" if key.credits_limit is None else f"{key.credits_used}/{key.credits_limit}"
        state = "revoked" if key.revoked_at else "live"
        admin = "yes" if key.is_admin else "no"
        print(
            f"{key.id:36}  {key.prefix:12}  {key.tenant_id:36}  {key.name[:20]:20}  "
            f"{admin:5}  {credits:11}  {state}"
        )


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> None:
    key: ApiKey = _with_keys(settings, lambda keys: keys.revoke(args.key))
    print(f"Revoked key {key.id} ({key.prefix}…).")
