"""The ``semprobe`` command line: a thin click layer over the library.

Each command parses its options, calls the library and writes its outputs. Heavy
packages (torch, gensim, open_clip, seaborn) are imported inside the commands, so
``semprobe --help`` answers at once. A user mistake (a :class:`SemprobeError` or a
click usage error) is printed as one line on stderr with exit code 2, no traceback,
and nothing is written. Warnings (an unwritable word cache, say) are one line each,
``semprobe: warning: ...``, without the source line Python would print under them.
Under ``torchrun`` every process runs the command (:mod:`semprobe.cli.job`); only the
main one prints, and a failure anywhere is the job's one error line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Iterator

import click

from semprobe import __version__
from semprobe.cli import alpha_curve, cca, embed, evaluate, figures, info, job, simmatrix
from semprobe.cli.common import CONTEXT_SETTINGS, click_error_line
from semprobe.errors import SemprobeError, one_line

USER_ERROR_EXIT_CODE = 2


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="semprobe")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """semprobe: how much do a robust model's features carry the semantics of its class names?

    Diagnose image classifiers (CCA and class-similarity against word vectors, attack
    curves), evaluate their robustness, and regenerate the SCARL and SPAT papers'
    figures. Pixels are in [0,1]; every command writes JSON with the settings it used.

    \b
    Examples:
      semprobe embed --dataset fashion-mnist --embedding glove
      semprobe info --ckpt runs/scarl/best.pt
      torchrun --nproc_per_node 4 -m semprobe eval --ckpt best.pt --attacks natural,aa --out eval/
    """
    job.check_command(ctx.invoked_subcommand)


cli.add_command(info.info)
cli.add_command(embed.embed)
cli.add_command(evaluate.evaluate_command)
cli.add_command(alpha_curve.alpha_curve_command)
cli.add_command(cca.cca_command)
cli.add_command(simmatrix.simmatrix_command)
cli.add_command(figures.figures_command)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for the command line: the message alone, on one line."""
    return f"semprobe: warning: {one_line(message)}\n"


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Print warnings with :func:`_format_warning` inside the block."""
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        yield
    finally:
        warnings.formatwarning = previous


def _run(argv: list[str] | None) -> int:
    """Run the click group; returns the exit code, printing a user error as one line."""
    try:
        job.start()
        code = cli.main(args=argv, prog_name="semprobe", standalone_mode=False)
    except SemprobeError as exc:
        return job.user_error(exc, USER_ERROR_EXIT_CODE)
    except click.ClickException as exc:
        return job.fail(USER_ERROR_EXIT_CODE, click_error_line(exc))
    except click.Abort:
        if job.is_main():
            click.echo("semprobe: aborted", err=True)
        return 1
    except Exception as exc:  # a bug: the traceback follows, the other processes stop with one line
        job.fail(1, f"{type(exc).__name__}: {one_line(exc)}", echo=False)
        raise
    finally:
        job.end()
    return code if isinstance(code, int) else 0


@contextlib.contextmanager
def _main_process_output() -> Iterator[None]:
    """Under torchrun, the processes other than the main one print nothing on stdout."""
    if job.under_torchrun() and os.environ.get("RANK", "0").strip() != "0":
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            yield
    else:
        yield


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the click group, turning user errors into one line + exit 2."""
    with _one_line_warnings(), _main_process_output():
        code = _run(argv)
    sys.exit(code)


if __name__ == "__main__":
    main()
