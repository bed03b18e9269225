"""``python -m gateway``: serve the platform, manage API keys and cron schedules."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from gateway.accounts.keys import ApiKey, ApiKeys
from gateway.api.schedules import batch_request
from gateway.app import api_document, create_app
from gateway.config import ConfigError, Settings, load_settings
from gateway.errors import GatewayError, NotFound
from gateway.platform import Platform
from gateway.schedules.models import Overlap, Schedule, ScheduleRun, ScheduleSpec
from gateway.store import Store
from gateway.webhooks.secrets import WebhookSecrets


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, _flags(args))
    except ConfigError as exc:
        parser.exit(2, f"error: {exc}\n")
    try:
        args.run(settings, args)
    except ConfigError as exc:
        parser.exit(2, f"error: {exc}\n")
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

    schedules = commands.add_parser("schedules", help="list, create, delete and run cron schedules")
    schedule_commands = schedules.add_subparsers(dest="schedules_command", required=True)
    listing = schedule_commands.add_parser("list", parents=[common], help="list every tenant's schedules")
    listing.add_argument("--tenant", help="only this tenant's")
    listing.set_defaults(run=_schedules_list)
    create = schedule_commands.add_parser(
        "create", parents=[common], help="create a schedule that runs as an API key"
    )
    create.add_argument("--key", required=True, help="id or shown prefix of the key its runs start as")
    create.add_argument("--name", required=True)
    create.add_argument("--cron", required=True, help="five fields (minute hour day month weekday) or @daily")
    create.add_argument("--timezone", default="UTC", help="IANA time zone, e.g. Europe/Berlin (default UTC)")
    target = create.add_mutually_exclusive_group(required=True)
    target.add_argument("--spider", help="name of the spider whose job it starts")
    target.add_argument(
        "--batch", type=Path, metavar="FILE", help="JSON file of a batch: {urls, formats, ...}"
    )
    target.add_argument("--datasource", help="id of the website datasource it recrawls")
    create.add_argument("--project", help="the spider's project, when several have one of its name")
    create.add_argument(
        "--arg", action="append", default=[], metavar="NAME=VALUE", help="spider argument; repeat for several"
    )
    create.add_argument("--overlap", choices=[overlap.value for overlap in Overlap], default=Overlap.SKIP)
    create.add_argument("--disabled", action="store_true", help="create it disabled")
    create.set_defaults(run=_schedules_create)
    delete = schedule_commands.add_parser("delete", parents=[common], help="delete a schedule by id")
    delete.add_argument("schedule", help="schedule id")
    delete.set_defaults(run=_schedules_delete)
    run = schedule_commands.add_parser("run", parents=[common], help="run a schedule now")
    run.add_argument("schedule", help="schedule id")
    run.set_defaults(run=_schedules_run)
    secret = commands.add_parser(
        "webhook-secret", parents=[common], help="print (or rotate) a tenant's webhook signing secret"
    )
    secret.add_argument("tenant", help="the tenant's id (python -m gateway keys list shows it)")
    secret.add_argument("--rotate", action="store_true", help="replace it with a new one first")
    secret.set_defaults(run=_webhook_secret)

    document = commands.add_parser("openapi", parents=[common], help="print the OpenAPI document")
    document.set_defaults(run=_openapi)
    return parser


def _webhook_secret(settings: Settings, args: argparse.Namespace) -> None:
    async def run() -> str:
        store = Store(settings.database)
        try:
            await store.migrate()
            if not await ApiKeys(store).tenant_exists(args.tenant):
                raise NotFound(f"no tenant {args.tenant}")
            secrets = WebhookSecrets(store)
            return await (secrets.rotate(args.tenant) if args.rotate else secrets.of(args.tenant))
        finally:
            await store.close()

    print(asyncio.run(run()))


def _openapi(_settings: Settings, _args: argparse.Namespace) -> None:
    print(json.dumps(api_document(), indent=2, ensure_ascii=False))


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
            # h11 bounds a request's head before any key is checked (httptools has no such limit);
            # libuv's loop is the faster one.
            http="h11",
            loop="uvloop",
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


def _with_platform(settings: Settings, action: Any) -> Any:
    """The platform's services on the store and nodes ``settings`` name, without serving."""

    async def run() -> Any:
        platform = Platform(settings)
        try:
            await platform.store.migrate()
            return await action(platform)
        finally:
            await platform.http.aclose()
            await platform.store.close()

    return asyncio.run(run())


def _schedules_list(settings: Settings, args: argparse.Namespace) -> None:
    found: list[Schedule] = _with_platform(settings, lambda platform: platform.schedules.search(args.tenant))
    print(f"{'id':36}  {'name':20}  {'cron':16}  {'timezone':16}  {'target':10}  {'state':8}  next run (UTC)")
    for schedule in found:
        state = "enabled" if schedule.enabled else "disabled"
        following = schedule.next_run_at.strftime("%Y-%m-%d %H:%M") if schedule.next_run_at else "-"
        print(
            f"{schedule.id:36}  {schedule.name[:20]:20}  {schedule.cron[:16]:16}  "
            f"{schedule.timezone[:16]:16}  {schedule.target.value:10}  {state:8}  {following}"
        )
        if schedule.disabled_reason:
            print(f"{'':38}disabled: {schedule.disabled_reason}")


def _schedules_create(settings: Settings, args: argparse.Namespace) -> None:
    arguments: dict[str, str] = {}
    for pair in args.arg:
        name, equals, value = pair.partition("=")
        if not equals:
            raise GatewayError(f"--arg takes NAME=VALUE, not {pair!r}")
        arguments[name] = value
    batch = None
    if args.batch is not None:
        try:
            body = json.loads(args.batch.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GatewayError(f"cannot read the batch from {args.batch}: {exc}") from exc
        batch = batch_request(body)
    spec = ScheduleSpec(
        name=args.name,
        cron=args.cron,
        timezone=args.timezone,
        spider_name=args.spider,
        project=args.project,
        arguments=arguments if args.spider else None,
        batch=batch,
        datasource_id=args.datasource,
        enabled=not args.disabled,
        overlap=Overlap(args.overlap),
    )

    async def create(platform: Platform) -> Schedule:
        key = await platform.keys.find(args.key)
        return await platform.schedules.create(key, spec)

    schedule: Schedule = _with_platform(settings, create)
    following = schedule.next_run_at.isoformat() if schedule.next_run_at else "never (disabled)"
    print(f"Created schedule {schedule.id}: {schedule.times.describe()} ({schedule.timezone}).")
    print(f"Next run: {following}")


def _schedules_delete(settings: Settings, args: argparse.Namespace) -> None:
    async def delete(platform: Platform) -> Schedule:
        schedule = await platform.schedules.find(args.schedule)
        await platform.schedules.delete(await _owner(platform, schedule), schedule.id)
        return schedule

    schedule: Schedule = _with_platform(settings, delete)
    print(f"Deleted schedule {schedule.id} ({schedule.name}).")


def _schedules_run(settings: Settings, args: argparse.Namespace) -> None:
    async def run_now(platform: Platform) -> ScheduleRun:
        schedule = await platform.schedules.find(args.schedule)
        return await platform.schedules.run_now(await _owner(platform, schedule), schedule.id)

    run: ScheduleRun = _with_platform(settings, run_now)
    started = run.job_id or run.batch_id or run.crawl_id
    print(f"Run {run.id}: {run.outcome.value}" + (f", started {started}" if started else ""))
    if run.message:
        print(run.message)


async def _owner(platform: Platform, schedule: Schedule) -> ApiKey:
    """A key of the schedule's tenant: the one that created it."""
    if schedule.api_key_id is None:
        raise GatewayError(f"schedule {schedule.id} has no key to act as")
    return await platform.keys.get(schedule.api_key_id)
