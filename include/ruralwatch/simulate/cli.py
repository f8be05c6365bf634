"""`ruralwatch simulate`: generate a synthetic city's deliveries and their truth, or serve its API."""
from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import periods
from .api import DEFAULT_PAGE_SIZE, TOKEN_ENV, Faults, default_token, make_server
from .defects import PRESETS, ROW_DEFECTS, STRUCTURAL, VARIANTS
from .generate import Options, check, generate
from .geography import write_area_reference
from .schema import MONTHLY
from .truth import Thresholds

app = typer.Typer(help="A synthetic city whose departments deliver every feed of the exchange spec, with planted "
                       "defects and a ground-truth manifest per month.", add_completion=False)
console = Console(stderr=True)


@app.callback(invoke_without_command=True)
def simulate(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", help="Landing folder to write: DIR/<feed>/, DIR/_api/, DIR/_truth/."),
    persons: int = typer.Option(1_000, "--persons", min=100, help="Persons in the city (about 3.3 per household)."),
    months: str = typer.Option("2026-11", "--months", help="A month (2026-11) or a range (2026-09:2026-11)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    defects: str = typer.Option("default", "--defects", help="Preset: none, default or heavy."),
    rate: list[str] = typer.Option([], "--rate", help="Override a rate: CLASS=R (row defects and variants)."),
    late: list[str] = typer.Option([], "--late", help="Deliver FEED late every month: FEED or FEED=DAYS (default 3)."),
    breaks: list[str] = typer.Option([], "--break", help="Plant a structural break every month: CLASS or CLASS=FEED."),
    w01: float = typer.Option(7_500.0, "--w01-income", help="W01: per-capita net income threshold (元/年)."),
    w02: float = typer.Option(20_000.0, "--w02-cost", help="W02: 12-month out-of-pocket threshold (元)."),
    w02_share: float = typer.Option(0.5, "--w02-share", help="W02: out-of-pocket share of annual net income."),
    w08: int = typer.Option(2, "--w08-months", help="W08: unpaid months of a 公益性岗位 wage."),
    i17: int = typer.Option(15, "--i17-days", help="I17: lead response deadline in days (recorded only)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Generate deliveries (the default command); see also `serve` and `area-reference`."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise typer.BadParameter("--out DIR is required to generate", param_hint="--out")
    if defects not in PRESETS:
        raise typer.BadParameter(f"use one of {', '.join(PRESETS)}", param_hint="--defects")
    try:
        options = Options(
            out=out, persons=persons, months=periods.parse_range(months), seed=seed, defects=defects,
            rates=_rates(rate), late=_late(late), breaks=_breaks(breaks),
            thresholds=Thresholds(w01_income_per_capita=w01, w02_out_of_pocket=w02, w02_income_share=w02_share,
                                  w08_unpaid_months=w08, i17_deadline_days=i17),
        )
        check(options)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    started = time.monotonic()
    if quiet:
        manifests = generate(options)
    else:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task("starting", total=None)
            options.progress = lambda message: progress.update(task, description=message)
            manifests = generate(options)
    if not quiet:
        _summary(manifests, time.monotonic() - started)


@app.command()
def serve(
    data: Path = typer.Option(..., "--data", help="A folder written by `ruralwatch simulate --out`."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(0, "--port", help="0: any free port (printed)."),
    token: str | None = typer.Option(None, "--token", help=f"Bearer token; default ${TOKEN_ENV}, else a random one."),
    rate_429: float = typer.Option(0.0, "--rate-429", min=0.0, max=1.0, help="Share of requests answered 429."),
    rate_503: float = typer.Option(0.0, "--rate-503", min=0.0, max=1.0, help="Share of requests answered 503."),
    retry_after: int = typer.Option(1, "--retry-after", min=0, help="Seconds sent in Retry-After with a 429."),
    drop_after_pages: int | None = typer.Option(None, "--drop-after-pages", min=1,
                                                help="Close the connection instead of answering every N+1-th page."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault draws."),
    verbose: bool = typer.Option(False, "--verbose", help="Log every request."),
) -> None:
    """Serve GET /api/v1/employment?period=YYYY-MM&page=N&page_size=M from DATA/_api until Ctrl-C."""
    generated = False
    if token is None:
        token, generated = default_token()
    faults = Faults(rate_429=rate_429, rate_503=rate_503, retry_after=retry_after, drop_after_pages=drop_after_pages,
                    seed=seed)
    try:
        server = make_server(data, host, port, token, faults, verbose)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="--data") from None
    bound_host, bound_port = server.server_address[:2]
    typer.echo(f"serving http://{bound_host}:{bound_port}/api/v1/employment?period=YYYY-MM&page=1"
               f"&page_size={DEFAULT_PAGE_SIZE}")
    if generated:
        typer.echo(f"token (set {TOKEN_ENV} to choose one): {token}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("area-reference")
def area_reference(path: Path = typer.Argument(..., help="CSV to write (行政区划代码,名称,级别,上级代码).")) -> None:
    """Write the synthetic city's area reference (the same for every seed and size)."""
    typer.echo(write_area_reference(path))


def _rates(items: list[str]) -> dict[str, float]:
    rates = {}
    for item in items:
        cls, _, value = item.partition("=")
        if cls not in ROW_DEFECTS and cls not in VARIANTS:
            raise ValueError(f"--rate {item}: unknown class; one of {', '.join(ROW_DEFECTS + VARIANTS)}")
        rates[cls] = float(value)
    return rates


def _late(items: list[str]) -> dict[str, int]:
    late = {}
    for item in items:
        feed, _, days = item.partition("=")
        if feed not in MONTHLY:
            raise ValueError(f"--late {item}: unknown feed; one of {', '.join(MONTHLY)}")
        late[feed] = int(days or 3)
    return late


def _breaks(items: list[str]) -> list[tuple[str, str | None]]:
    out = []
    for item in items:
        cls, _, feed = item.partition("=")
        if cls not in STRUCTURAL:
            raise ValueError(f"--break {item}: unknown class; one of {', '.join(STRUCTURAL)}")
        out.append((cls, feed or None))
    return out


def _summary(manifests: list[Path], seconds: float) -> None:
    for path in manifests:
        truth = json.loads(path.read_text(encoding="utf-8"))
        check = truth["self_check"]
        live = sum(d["status"] == "live" for d in truth["deliveries"])
        console.print(f"{truth['month']}: {len(truth['deliveries'])} deliveries ({live} live), "
                      f"{len(truth['defects'])} defects, {len(truth['leads'])} leads -> {path}"
                      + ("" if check["ok"] else f"  [red]self-check: {check['mismatch_count']} mismatches[/red]"))
    console.print(f"done in {seconds:.1f} s")
