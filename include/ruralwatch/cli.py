"""`ruralwatch`: the engineer's command line. Each command runs the same code the DAGs run."""
from __future__ import annotations

import sys

import typer

from ruralwatch import settings  # noqa: F401  (sets the quiet, no-telemetry environment)

app = typer.Typer(help="防返贫动态监测 data platform", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The warehouse: embedded PostgreSQL, or WAREHOUSE_URL when set.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (creating it in .local/pg on first use)."""
    from ruralwatch import db

    if _external_warehouse():
        return
    url = db.EmbeddedServer().start()
    typer.echo(url)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL; its data stays in .local/pg."""
    from ruralwatch import db

    if _external_warehouse():
        return
    stopped = db.EmbeddedServer().stop()
    typer.echo("stopped" if stopped else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the warehouse is up and where it is."""
    from ruralwatch import db

    if _external_warehouse():
        return
    typer.echo(db.EmbeddedServer().status())


@db_app.command("url")
def db_url() -> None:
    """Print the warehouse URL (starting the embedded server if needed): `psql "$(ruralwatch db url)"`."""
    from ruralwatch import db

    typer.echo(db.warehouse_url())


def _external_warehouse() -> bool:
    import os

    if os.environ.get("WAREHOUSE_URL"):
        typer.echo("WAREHOUSE_URL is set: the warehouse is that server, not the embedded one.")
        return True
    return False


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
