"""`likeness worker`, `likeness serve`, `likeness issue-key`, `likeness migrate`, `likeness purge`: the
service commands.

workers/cli/main.py adds them with `add_service_commands(subparsers)` and dispatches through
`SERVICE_COMMANDS` (keys are (command, None), like its own table). Each handler gets the CLI's
Runtime only for its settings: worker processes build their own, after forking.

The service modules are imported inside the handlers, so that the embedded commands do not load
Celery, FastAPI or uvicorn. The schema is the same either way: every database, a home's included,
has all tables, created and upgraded by Alembic (workers/data/migrate.py).
"""
from __future__ import annotations

import json
import socket
from datetime import timedelta

from workers.runtime import Runtime


def add_service_commands(subparsers) -> None:
    worker = subparsers.add_parser("worker", help="run a Celery worker (models load once per worker process)")
    worker.add_argument("--concurrency", type=int, default=1, help="worker processes (prefork) or threads")
    worker.add_argument("--pool", choices=("prefork", "solo", "threads"), default="prefork")
    worker.add_argument("--name", default=None, help="worker name (default likeness@HOSTNAME)")
    worker.add_argument("--loglevel", default="INFO")

    serve = subparsers.add_parser("serve", help="run the HTTP API (OpenAPI at /docs)")
    serve.add_argument("--host", default=None, help="default: settings service.api_host")
    serve.add_argument("--port", type=int, default=None, help="default: settings service.api_port")

    key = subparsers.add_parser("issue-key", help="issue an API key (prints it once, as JSON)")
    key.add_argument("--role", required=True, help="admin, platform or rights_holder")
    key.add_argument("--principal", required=True,
                     help="platform name or rights holder (owner) the key acts for; no ':' (it separates a "
                          "platform from its uploader ids)")
    key.add_argument("--label", default="")

    subparsers.add_parser("migrate", help="bring the database to the newest schema, keeping its data")

    purge = subparsers.add_parser("purge", help="delete scans older than the retention period for good "
                                                "(run it from cron); prints what it deleted, as JSON")
    purge.add_argument("--older-than-days", type=float, default=None,
                       help="default: settings service.scan_retention_days (LIKENESS_SERVICE__SCAN_RETENTION_DAYS)")


def cmd_worker(runtime: Runtime, args) -> int:
    from workers.app import configure
    app = configure(runtime.settings)
    name = args.name or f"likeness@{socket.gethostname()}"
    app.worker_main(["worker", f"--concurrency={args.concurrency}", f"--pool={args.pool}", f"--hostname={name}",
                     f"--loglevel={args.loglevel}", f"--queues={runtime.settings.service.queue}"])
    return 0


def cmd_serve(runtime: Runtime, args) -> int:
    import uvicorn

    from workers.data import migrate
    from workers.api.app import create_api
    settings = runtime.settings
    migrate.upgrade(settings.resolved_database_url())
    uvicorn.run(create_api(settings), host=args.host or settings.service.api_host,
                port=args.port or settings.service.api_port)
    return 0


def cmd_issue_key(runtime: Runtime, args) -> int:
    from workers.data import migrate
    from workers.data.keys import KeyStore
    from workers.data.db import Database
    settings = runtime.settings
    url = settings.resolved_database_url()
    migrate.upgrade(url)
    issued = KeyStore(Database.open(url)).issue(args.role, args.principal, args.label)
    print(json.dumps({"id": issued.id, "key": issued.key, "role": issued.role, "principal": issued.principal}))
    return 0


def cmd_migrate(runtime: Runtime, args) -> int:
    from workers.data import migrate
    settings = runtime.settings
    print(json.dumps({"revision": migrate.upgrade(settings.resolved_database_url())}))
    return 0


def cmd_purge(runtime: Runtime, args) -> int:
    from workers.data import migrate
    from workers.scans import retention
    from workers.service import Service
    settings = runtime.settings
    days = settings.service.scan_retention_days if args.older_than_days is None else args.older_than_days
    if days is None or days < 0:
        raise ValueError("no retention period: set LIKENESS_SERVICE__SCAN_RETENTION_DAYS or pass "
                         "--older-than-days N (N >= 0)")
    migrate.upgrade(settings.resolved_database_url())
    deleted = retention.purge(Service(settings), timedelta(days=days))
    print(json.dumps({"older_than_days": days, "deleted": len(deleted), "scans": deleted}))
    return 0


SERVICE_COMMANDS = {("worker", None): cmd_worker, ("serve", None): cmd_serve,
                    ("issue-key", None): cmd_issue_key, ("migrate", None): cmd_migrate, ("purge", None): cmd_purge}
