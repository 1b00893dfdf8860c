"""Incident categories (群众诉求 / 网格事件) with a code, Chinese and English names and a deadline.

The default list is the one in DOMAIN.md; a center replaces it with a JSON file
(``GEOGRID_CATEGORIES``): ``[{"code": ..., "zh": ..., "en": ..., "deadline_hours": 72,
"level_hours": {"township": 120, "city": 240}}, ...]``. An escalated incident's deadline
restarts with the hours of its new level (default: the category's hours).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from geogrid.errors import ConfigError, InvalidInput


@dataclasses.dataclass(frozen=True)
class Category:
    """One kind of incident and how long it may take to handle (hours)."""

    code: str
    zh: str
    en: str
    deadline_hours: int = 72
    #: Hours once escalated to a level, by level name; other levels take ``deadline_hours``.
    level_hours: tuple[tuple[str, int], ...] = ()

    def hours_at(self, level: str | None) -> int:
        """The deadline in hours for handling at *level* (None: where it was reported)."""
        return dict(self.level_hours).get(level, self.deadline_hours) if level else self.deadline_hours


DEFAULT = (
    Category("illegal_production", "非法生产", "Illegal production", 24),
    Category("illegal_business", "非法经营", "Illegal business", 48),
    Category("illegal_construction", "违法建设", "Illegal construction", 48),
    Category("work_safety", "安全生产", "Work safety", 12),
    Category("petition_stability", "信访稳定", "Petitions and stability", 24),
    Category("grassroots_organisation", "基层组织建设", "Grassroots organisation", 168),
    Category("public_opinion", "社情民意", "Public opinion", 72),
    Category("public_matters", "公共事务(树木、牲畜疫病)", "Public matters (disease in trees and livestock)", 48),
    Category("property_management", "物业管理", "Property management", 72),
    Category("uncivil_dog_keeping", "不文明养犬", "Uncivil dog keeping", 72),
    Category("flyposting", "乱张贴", "Flyposting", 72),
    Category("illegal_parking", "违章停车", "Illegal parking", 24),
    Category("street_vending", "占道经营", "Street vending", 24),
    Category("garbage", "垃圾清理", "Garbage", 48),
    Category("rural_road_damage", "农村道路损毁", "Damaged rural roads", 120),
    Category("water", "供水", "Water supply", 24),
    Category("power", "供电", "Power supply", 24),
    Category("gas", "燃气", "Gas", 12),
    Category("heating", "供暖", "Heating", 24),
    Category("jobs", "就业", "Jobs", 168),
    Category("medical_care", "医疗", "Medical care", 72),
    Category("public_facility_safety", "公共设施安全", "Public-facility safety", 24),
)


@functools.cache
def categories(path: Path | None = None) -> dict[str, Category]:
    """The categories by code: from *path* (JSON) when given, else the defaults."""
    if path is None:
        return {c.code: c for c in DEFAULT}
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        found = {
            item["code"]: Category(**{**item, "level_hours": tuple((item.get("level_hours") or {}).items())})
            for item in items
        }
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError("GEOGRID_CATEGORIES {path}: not a list of categories ({exc})", path=path, exc=exc) from exc
    if not found:
        raise ConfigError("GEOGRID_CATEGORIES {path}: names no category", path=path)
    return found


def category(code: str, path: Path | None = None) -> Category:
    """The category with *code*; InvalidInput naming the known codes otherwise."""
    known = categories(path)
    if code not in known:
        raise InvalidInput("unknown category {code!r}; known: {sorted}", code=code, sorted=", ".join(sorted(known)))
    return known[code]
