"""``taskwheel completion bash|zsh|fish``: the shell's completion script (click's).

Example:
    $ taskwheel completion bash > ~/.local/share/bash-completion/completions/taskwheel
    $ taskwheel completion zsh > "${fpath[1]}/_taskwheel"
    $ taskwheel completion fish > ~/.config/fish/completions/taskwheel.fish
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROG_NAME = "taskwheel"
COMPLETE_VAR = "_TASKWHEEL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish): commands, options and
    choices complete on TAB. Source it from the shell's start-up file, or save it where
    the shell looks for completions (see the README)."""
    found = get_completion_class(shell)
    assert found is not None  # every shell of SHELLS is one of click's
    root = ctx.find_root().command
    click.echo(found(root, {}, PROG_NAME, COMPLETE_VAR).source())
