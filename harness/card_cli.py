"""``tts-eval card RUN... --out card.md``: write the evaluation card of one or several runs (harness.card).

Registered in the main CLI by ``harness.cli._register_groups``. User mistakes (a folder that holds no run, a
run without samples, the same run twice, an unwritable output) end in one line on stderr and exit 1.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.command("card")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="The card to write (.md).")
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Bootstrap resamples for the intervals (as `tts-eval report`).")
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed (as `tts-eval report`).")
@click.option("--workers", type=int, help="Grader worker processes, if a run still needs grading.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def card(run_dirs: tuple[Path, ...], out: Path, n_boot: int, seed: int, workers: int | None, no_progress: bool) -> None:
    """Write an evaluation card for one or several runs: what was measured, how, under which conditions,
    where the runs' conditions differ, and the checklist's six evaluation questions answered from the records."""
    from harness.card import write_card
    from harness.store import StoreError
    from harness.transparency import TransparencyError

    command = shlex.join(["tts-eval", *sys.argv[1:]])
    try:
        path = write_card(list(run_dirs), out, command=command, n_boot=n_boot, ci_seed=seed, workers=workers,
                          progress=not no_progress)
    except (StoreError, TransparencyError, ValueError, OSError) as exc:
        text = str(exc).strip()
        raise click.ClickException(text.splitlines()[0] if text else type(exc).__name__) from exc
    click.echo(f"wrote {path}")
