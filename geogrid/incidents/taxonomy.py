"""Incident categories (群众诉求 / 网格事件): two-level codes, Chinese and English names, deadlines.

Each category sits in a major class with a 2-digit code and has a 2-digit minor code
(CJ/T 214's event codes: ``0501`` is 街面秩序 / 违章停车). The default list
(``categories.csv`` next to this module) groups the categories of DOMAIN.md under the
standard event classes 市容环境 (01), 宣传广告 (02), 施工管理 (03), 突发事件 (04), 街面秩序
(05), and three local extension classes (06-08) for what the standard leaves to "扩展".

A center replaces it with its own CSV (``GEOGRID_CATEGORIES``), the same columns::

    major,major_zh,major_en,minor,code,zh,en,deadline_hours,level_hours
    05,街面秩序,Street order,01,illegal_parking,违章停车,Illegal parking,24,township=48;city=96

``code`` is what the API and the database keep; ``level_hours`` gives the deadline once
escalated to a level (default: ``deadline_hours``). A JSON list of objects with the same
keys is read too (the older form, where the class fields may be left out).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import re
from pathlib import Path

from geogrid.errors import ConfigError, InvalidInput

#: The default categories.
DEFAULT_FILE = Path(__file__).with_name("categories.csv")
COLUMNS = ("major", "major_zh", "major_en", "minor", "code", "zh", "en", "deadline_hours", "level_hours")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TWO = re.compile(r"[0-9]{2}")


@dataclasses.dataclass(frozen=True)
class Category:
    """One kind of incident and how long it may take to handle (hours)."""

    code: str
    zh: str
    en: str
    deadline_hours: int = 72
    #: Hours once escalated to a level, by level name; other levels take ``deadline_hours``.
    level_hours: tuple[tuple[str, int], ...] = ()
    #: The major class (2 digits) and its names, and the category's minor code within it.
    major: str = "99"
    major_zh: str = "其他"
    major_en: str = "Other"
    minor: str = "99"

    @property
    def class_code(self) -> str:
        """The 4-digit event code: major class then minor (``0501``)."""
        return self.major + self.minor

    def hours_at(self, level: str | None) -> int:
        """The deadline in hours for handling at *level* (None: where it was reported)."""
        return dict(self.level_hours).get(level, self.deadline_hours) if level else self.deadline_hours


@dataclasses.dataclass(frozen=True)
class MajorClass:
    """A major class and its categories, in code order."""

    code: str
    zh: str
    en: str
    categories: tuple[Category, ...]


@functools.cache
def categories(path: Path | None = None) -> dict[str, Category]:
    """The categories by code, in class code order: from *path* (CSV or JSON) when given, else the defaults."""
    file = Path(path) if path is not None else DEFAULT_FILE
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError("GEOGRID_CATEGORIES {path}: cannot read it ({exc})", path=file, exc=exc) from exc
    items = _json(file, text) if file.suffix.lower() == ".json" else _csv(file, text)
    found: dict[str, Category] = {}
    seen: dict[str, str] = {}
    names: dict[str, tuple[str, str]] = {}
    for line, item in items:
        category = _category(file, line, item)
        if category.code in found:
            raise ConfigError("{path} line {line}: category {code} is listed twice", path=file, line=line,
                              code=category.code)  # fmt: skip
        if category.class_code in seen and category.major != "99":
            raise ConfigError("{path} line {line}: code {class_code} is both {a} and {b}", path=file, line=line,
                              class_code=category.class_code, a=seen[category.class_code], b=category.code)  # fmt: skip
        if names.setdefault(category.major, (category.major_zh, category.major_en)) != (
            category.major_zh,
            category.major_en,
        ):
            raise ConfigError("{path} line {line}: class {major} is named differently on another line",
                              path=file, line=line, major=category.major)  # fmt: skip
        found[category.code] = category
        seen[category.class_code] = category.code
    if not found:
        raise ConfigError("GEOGRID_CATEGORIES {path}: names no category", path=file)
    return dict(sorted(found.items(), key=lambda item: (item[1].class_code, item[0])))


def _csv(file: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c != "level_hours"]
    if missing:
        raise ConfigError("{path}: missing column(s) {missing}; the columns are {columns}", path=file,
                          missing=", ".join(missing), columns=",".join(COLUMNS))  # fmt: skip
    return [(n, row) for n, row in enumerate(reader, start=2) if any((v or "").strip() for v in row.values())]


def _json(file: Path, text: str) -> list[tuple[int, dict]]:
    try:
        items = json.loads(text)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError("not a list of objects")
    except ValueError as exc:
        raise ConfigError("GEOGRID_CATEGORIES {path}: not a list of categories ({exc})", path=file, exc=exc) from exc
    return [(n, {**item, "level_hours": item.get("level_hours") or {}}) for n, item in enumerate(items, start=1)]


def _category(file: Path, line: int, item: dict) -> Category:
    def text(key: str, default: str | None = None) -> str:
        value = item.get(key)
        value = str(value).strip() if value not in (None, "") else default
        if value is None:
            raise ConfigError("{path} line {line}: {key} is empty", path=file, line=line, key=key)
        return value

    code = text("code")
    if not _CODE.fullmatch(code):
        raise ConfigError("{path} line {line}: code {code!r} must be lower-case letters, digits and _",
                          path=file, line=line, code=code)  # fmt: skip
    major, minor = text("major", "99"), text("minor", "99")
    if not _TWO.fullmatch(major) or not _TWO.fullmatch(minor):
        raise ConfigError("{path} line {line}: major and minor are 2 digits (05, 01), not {major!r}, {minor!r}",
                          path=file, line=line, major=major, minor=minor)  # fmt: skip
    try:
        hours = int(text("deadline_hours", "72"))
        level_hours = item.get("level_hours") or {}
        if isinstance(level_hours, str):
            level_hours = dict(part.split("=", 1) for part in level_hours.split(";") if part.strip())
        level_hours = tuple((str(k).strip(), int(v)) for k, v in level_hours.items())
    except ValueError as exc:
        raise ConfigError("{path} line {line}: deadline_hours and level_hours (township=48;city=96) are whole "
                          "hours ({exc})", path=file, line=line, exc=exc) from exc  # fmt: skip
    if hours <= 0 or any(h <= 0 for _, h in level_hours):
        raise ConfigError("{path} line {line}: deadlines must be positive hours", path=file, line=line)
    return Category(code, text("zh"), text("en", text("zh")), hours, level_hours, major, text("major_zh", "其他"),
                    text("major_en", "Other"), minor)  # fmt: skip


def classes(path: Path | None = None) -> list[MajorClass]:
    """The major classes with their categories, in code order (the two-level picker)."""
    grouped: dict[str, list[Category]] = {}
    for category in categories(path).values():
        grouped.setdefault(category.major, []).append(category)
    return [MajorClass(major, members[0].major_zh, members[0].major_en, tuple(members))
            for major, members in sorted(grouped.items())]  # fmt: skip


def category(code: str, path: Path | None = None) -> Category:
    """The category with *code*; InvalidInput naming the known codes otherwise."""
    known = categories(path)
    if code not in known:
        raise InvalidInput("unknown category {code!r}; known: {sorted}", code=code, sorted=", ".join(sorted(known)))
    return known[code]


def matching(value: str | None, path: Path | None = None) -> list[str] | None:
    """The category codes a filter names: a category code, its 4-digit event code, or a 2-digit major class."""
    if not value:
        return None
    known = categories(path)
    if value in known:
        return [value]
    found = [c.code for c in known.values() if value in (c.major, c.class_code)]
    if not found:
        raise InvalidInput("unknown category {value!r}: give a category code, a 4-digit event code or a 2-digit "
                           "class; classes: {classes}", value=value,
                           classes=", ".join(f"{k.code} {k.zh}" for k in classes(path)))  # fmt: skip
    return found
