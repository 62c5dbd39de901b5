"""The root `framecast` command.

Subcommands are imported lazily (by dotted path, and node commands through the
`framecast.commands` entry-point group) so that `framecast --help` never pays for web3,
torch or docker imports. One error boundary lives here (`main`): every failure becomes one
red `error:` line (exit code 1 for ours, 2 for usage, 70 for a bug); `--debug` shows the
traceback.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from typing import Any

import click

from framecast.shared.errors import FramecastError
from framecast.shared.network_choice import NETWORK_ENV, NETWORK_META_KEY

# name -> "module:attribute" of a click command; imported only when invoked.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "devnet": ("framecast.client.commands.devnet", "Manage the local development chain."),
    "network": ("framecast.client.commands.network", "List, show, add and remove networks."),
    "deploy": ("framecast.client.commands.deploy", "Deploy the contracts to any EVM chain."),
    "demo": ("framecast.client.commands.demo", "Run the whole market end to end on this machine."),
    "cid": ("framecast.client.commands.cid", "Print the IPFS CID of a file or directory."),
    "dataset": ("framecast.client.commands.dataset", "Check and pack fine-tune datasets by CID."),
    "catalog": ("framecast.client.commands.catalog", "Pin catalog entries; fit them onto GPUs."),
    "wallet": ("framecast.client.commands.wallet", "Create, import and list encrypted wallets."),
    "credits": ("framecast.client.commands.credits", "Get, deposit, withdraw and track credits."),
    "submit": ("framecast.client.commands.submit", "Quote, sign and submit a video job."),
    "jobs": ("framecast.client.commands.jobs", "List recent jobs (all, or --mine)."),
    "status": ("framecast.client.commands.status", "Show a job; --wait follows it."),
    "fetch": ("framecast.client.commands.fetch", "Download and verify a job's result."),
    "verify": ("framecast.client.commands.verify", "Verify a result against the chain."),
    "cancel": ("framecast.client.commands.act", "Cancel an unclaimed job."),
    "reclaim": ("framecast.client.commands.act", "Take back the escrow of a stalled job."),
    "dispute": ("framecast.client.commands.act", "Dispute a delivered job."),
    "explorer": ("framecast.client.commands.explorer", "Serve the web explorer (read-only)."),
}


#: One-line help of the groups other packages contribute (listed without importing them).
PLUGIN_HELP = {
    "node": "Provider node agent commands.",
    "arbiter": "Dispute arbiter: replay disputed jobs and resolve them.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(LAZY_COMMANDS)
        names |= {ep.name for ep in entry_points(group="framecast.commands")}
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        if cmd_name in LAZY_COMMANDS:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name][0])
            found = getattr(module, "command", None) or getattr(module, cmd_name)
            assert isinstance(found, click.Command)
            return found
        for ep in entry_points(group="framecast.commands", name=cmd_name):
            loaded = ep.load()
            assert isinstance(loaded, click.Command)
            return loaded
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table, so listing commands imports nothing heavy.
        rows = [(name, LAZY_COMMANDS[name][1]) for name in sorted(LAZY_COMMANDS)]
        for ep in entry_points(group="framecast.commands"):
            rows.append((ep.name, PLUGIN_HELP.get(ep.name, f"Commands from {ep.module}.")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


def _store_network(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    # click shares ``meta`` with every nested context: client and node commands alike read
    # the choice from there (framecast.shared.network_choice.chosen_network).
    if value:
        ctx.meta[NETWORK_META_KEY] = value


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="FRAMECAST_DEBUG", help="Show tracebacks.")
@click.option(
    "--network",
    metavar="NAME",
    envvar=NETWORK_ENV,
    expose_value=False,
    is_eager=True,
    callback=_store_network,
    help=f"Network every command uses (or {NETWORK_ENV}); default: local, this machine's "
    "devnet. `framecast network list` shows them.",
)
@click.version_option(package_name="framecast")
@click.pass_context
def root(ctx: click.Context, debug: bool) -> None:
    """framecast — text-to-video jobs on a decentralized GPU market."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


#: What an exception that is not ours shows (exit code 70, EX_SOFTWARE): a bug to report.
INTERNAL_ERROR = "internal error"


def one_line(text: str) -> str:
    """A message as one line: the boundary's promise holds even for a library's multi-line
    text (pydantic's, web3's) that an adapter passed on."""
    return " ".join(text.split())


#: Raised (click ≥ 8.2) when a group is called without a subcommand; its message is the help.
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_NeverRaised", (click.UsageError,), {})
)


def _usage_line(exc: click.UsageError) -> str:
    where = f"`{exc.ctx.command_path} --help`" if exc.ctx is not None else "`framecast --help`"
    return f"error: {one_line(exc.format_message())} — see {where}"


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: the CLI's one error boundary.

    Every failure is one red line starting with ``error:``: a `FramecastError` exits 1,
    a usage error (bad option value, missing argument) exits 2, anything else is a bug and
    exits 70 asking for the --debug traceback. ``--debug`` re-raises instead.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        return root.main(args=args, prog_name="framecast", standalone_mode=False)
    except click.exceptions.Abort:
        click.secho("aborted", fg="red", err=True)
        sys.exit(130)
    except _NO_ARGS_IS_HELP as exc:
        # `framecast` or `framecast wallet` alone: the help itself, as click prints it.
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        if debug:
            raise
        click.secho(_usage_line(exc), fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if debug:
            raise
        click.secho(f"error: {one_line(exc.format_message())}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except FramecastError as exc:
        if debug:
            raise
        click.secho(f"error: {one_line(str(exc))}", fg="red", err=True)
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        click.secho(
            f"error: {INTERNAL_ERROR}: {type(exc).__name__}: {one_line(str(exc))[:300]} — this "
            "is a bug in framecast: run the command again with --debug and report the traceback",
            fg="red",
            err=True,
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
