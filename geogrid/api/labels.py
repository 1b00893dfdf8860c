"""The names pages give to codes: states, duties, sources, roles, levels, categories, reasons...

Codes stay in the API and the database; a page shows these names, in its language, from
the gettext catalogue (``pgettext`` with the kind as context: "reported" the state is
not "reported" the column). Categories carry their own Chinese and English names (the
taxonomy file a center may replace).
"""

from __future__ import annotations

from flask_babel import lazy_pgettext as L_

from geogrid.api.i18n import current
from geogrid.incidents.taxonomy import categories, classes
from geogrid.patrols.compute import REASONS

LABELS = {
    "status": {
        "reported": L_("status", "reported"), "dispatched": L_("status", "dispatched"),
        "in_progress": L_("status", "in progress"), "resolved": L_("status", "resolved"),
        "closed": L_("status", "closed"), "escalated": L_("status", "escalated"),
        "reopened": L_("status", "reopened"), "handled_on_spot": L_("status", "handled on the spot"),
        "accepted": L_("status", "accepted"), "rejected": L_("status", "rejected"),
        "rework": L_("status", "rework"), "pending": L_("status", "pending list"),
        "postponed": L_("status", "postponed"),
    },
    "duty": {
        "grid_chief": L_("duty", "grid chief"), "grid_manager": L_("duty", "grid manager"),
        "grid_helper": L_("duty", "grid helper"), "adopting_cadre": L_("duty", "adopting cadre"),
        "department_handler": L_("duty", "department handler"),
    },
    "source": {
        "patrol": L_("source", "patrol"), "home_visit": L_("source", "home visit"),
        "reception": L_("source", "reception day"), "phone": L_("source", "phone"),
        "hotline": L_("source", "hotline"), "app": L_("source", "app"),
    },
    "role": {
        "admin": L_("role", "administrator"), "planner": L_("role", "planner"),
        "supervisor": L_("role", "supervisor"), "operator": L_("role", "command center operator"),
        "worker": L_("role", "grid worker"),
    },
    "level": {
        "township": L_("level", "township"), "village": L_("level", "village"), "grid": L_("level", "grid"),
        "cell": L_("level", "unit cell"), "city": L_("level", "city"),
    },
    "assignment": {
        "inside": L_("assignment", "inside the cell"), "snapped": L_("assignment", "snapped to the nearest cell"),
        "unassigned": L_("assignment", "outside every cell"),
    },
    "problem": {"gap": L_("problem", "gap"), "overlap": L_("problem", "overlap"),
                "outside": L_("problem", "outside the parent")},
    "rule": {"compliant": L_("rule", "met the rule"), "not compliant": L_("rule", "missed the rule"),
             "no duty": L_("rule", "no patrol duty")},
    "note": {"registered": L_("note", "registered"), "bulk import": L_("note", "bulk import")},
    "queue": {
        "to_accept": L_("queue", "to accept"), "to_dispatch": L_("queue", "to dispatch"),
        "handling": L_("queue", "being handled"), "to_check": L_("queue", "to check"),
        "to_visit": L_("queue", "return visit due"), "pending": L_("queue", "pending list"),
        "postponed": L_("queue", "postponed"), "approvals": L_("queue", "awaiting decision"),
    },
    "repair": {"pending": L_("repair", "waiting"), "approved": L_("repair", "approved"),
               "refused": L_("repair", "refused")},
    "cell_state": {"todo": L_("cell_state", "to patrol"), "done": L_("cell_state", "done"),
                   "repaired": L_("cell_state", "done by 补签")},
    "step": {
        "delay_requested": L_("step", "more time asked for"), "delay_approved": L_("step", "more time approved"),
        "delay_refused": L_("step", "more time refused"), "supervised": L_("step", "supervision notice"),
        "extend": L_("step", "extension"), "postpone": L_("step", "postponement"),
        "passed": L_("step", "check passed"), "failed": L_("step", "check failed"),
        "phone": L_("step", "by phone"), "visit": L_("step", "in person"),
    },
}  # fmt: skip


def labels() -> dict[str, dict[str, str]]:
    """Every kind's names in the request's language, for a page's script (and the reason templates)."""
    from geogrid.api.i18n import gettext

    out = {kind: {code: str(name) for code, name in names.items()} for kind, names in LABELS.items()}
    out["category"] = {c.code: category_name(c) for c in categories(_categories_file()).values()}
    out["reason"] = {code: gettext(text) for code, text in REASONS.items()}
    return out


def label(kind: str, code: str | None) -> str:
    """The name of one code (the code itself when it has none)."""
    if code is None:
        return ""
    if kind == "category":
        found = categories(_categories_file()).get(code)
        return category_name(found) if found else code
    name = LABELS.get(kind, {}).get(code)
    return str(name) if name is not None else code


def category_picker() -> list[dict]:
    """The two-level category picker of the pages that register cases: major classes, each with its categories."""
    english = current() == "en"
    return [{"code": k.code, "name": k.en if english else k.zh,
             "categories": [{"code": c.code, "event_code": c.class_code, "name": category_name(c)}
                            for c in k.categories]}
            for k in classes(_categories_file())]  # fmt: skip


def category_name(category) -> str:
    """A category's name in the request's language."""
    return category.en if current() == "en" else category.zh


def _categories_file():
    from geogrid.api.context import state

    return state().settings.categories_file


def in_chinese(kind: str, code: str) -> str:
    """A code's Chinese label outside any request (the Excel workbook is in Chinese whoever asks)."""
    from babel.support import Translations

    from geogrid.api.i18n import TRANSLATIONS

    lazy = LABELS.get(kind, {}).get(code)
    if lazy is None:
        return code
    context, text = lazy._args  # flask_babel's LazyString keeps pgettext's arguments
    return Translations.load(str(TRANSLATIONS), ["zh_Hans_CN"]).upgettext(context, text)
