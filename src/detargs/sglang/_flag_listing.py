"""What ``detargs flags`` prints: the flags a release takes, or one flag's history."""

from __future__ import annotations

from ..errors import InvalidArgsError
from ._flag_messages import flag_problem
from .catalogue import catalogue_for, flag_history, known_options, release_version

__all__ = ["flag_listing", "flag_report"]


def flag_listing(release: str) -> list[str]:
    """One line per flag of ``release``: its spellings and kind."""
    lines = []
    for flag in sorted(catalogue_for(release).flags, key=lambda flag: flag.name):
        kind = flag.kind if not flag.type else f"{flag.kind}:{flag.type}"
        lines.append(f"{' '.join(flag.options):<56} {kind}")
    return lines


def flag_report(written: str, release: str, pinned: bool) -> tuple[list[str], list[str]]:
    """One flag's history, or with ``pinned`` its entry in ``release`` alone.

    A name no release defines is read as that release's parser reads it (``--tp`` is a
    unique prefix of ``--tp-size``), else it gets a did-you-mean over every release.
    """
    notes: list[str] = []
    name = written if written.startswith("-") else f"--{written}"
    history = flag_history(name)
    if not history:
        catalogue = catalogue_for(release)
        prefixed = {
            flag.name
            for option, flag in catalogue.by_option.items()
            if name.startswith("--") and option.startswith(name)
        }
        if len(prefixed) == 1:
            [full] = prefixed
            notes.append(
                f"{name} is not a flag of its own: SGLang {release}'s parser "
                f"reads it as {full}, a unique prefix"
            )
            name, history = full, flag_history(full)
        elif len(prefixed) > 1:
            raise InvalidArgsError(
                f"{name} is an ambiguous prefix in SGLang {release}: it could be "
                f"{', '.join(sorted(prefixed)[:6])}; write it in full",
                flag=name,
            )
    if not history:
        import difflib  # only this message needs it

        close = difflib.get_close_matches(name, sorted(known_options()), n=1, cutoff=0.75)
        hint = (
            f": did you mean {close[0]}?"
            if close
            else "; `detargs flags` lists the flags a release takes"
        )
        raise InvalidArgsError(f"{name} is in no catalogued SGLang release{hint}", flag=name)
    if pinned:
        wanted = release_version(release)
        history = tuple(
            entry
            for entry in history
            if release_version(entry.first) <= wanted <= release_version(entry.last)
        )
        if not history:
            raise flag_problem(name, release)
    lines = []
    for flag in history:
        choices = f" choices={','.join(flag.choices)}" if flag.choices else ""
        moved = f" -> {flag.replaced_by}" if flag.replaced_by else ""
        lines.append(f"{flag.span():<28} {flag.kind:<12} dest={flag.dest}{choices}{moved}")
    return lines, notes
