"""docs/reliability.md is written by scripts, a section each: this replaces one section."""

from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Reliability figures"
INTRO = "Each section is written by the script it names (not typed by hand); run it again to update it."


def write_section(path: Path, name: str, lines: list[str]) -> None:
    """Put *lines* in *path* as section *name*, replacing that section and keeping the others."""
    begin, end = f"<!-- section {name}: begin -->", f"<!-- section {name}: end -->"
    block = "\n".join([begin, *lines, end])
    text = path.read_text(encoding="utf-8") if path.exists() else f"{TITLE}\n\n{INTRO}\n"
    if not text.startswith(TITLE):
        text = f"{TITLE}\n\n{INTRO}\n"  # an old single-script file: start again
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
