"""Languages and times for the pages and the API's messages: Simplified Chinese first, English selectable.

The words come from gettext catalogues (``geogrid/translations/<lang>/LC_MESSAGES``; Babel
names Simplified Chinese ``zh_Hans_CN``, users and settings say ``zh_CN``;
``messages.po`` for the server, ``js.po`` for the page script; compiled by ``make``),
never from dictionaries in code: the source texts are English, Chinese is a catalogue.
The language of a request: the signed-in user's choice, else the ``lang`` cookie (the
sign-in page's switch), else the browser's ``Accept-Language``, else ``GEOGRID_LANGUAGE``.
Times are shown in ``GEOGRID_TIMEZONE`` as ``2026-11-29 08:10``; the API keeps ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.support import Translations
from flask import Flask, g, request
from flask_babel import Babel, get_locale, get_translations

from geogrid.config import Settings
from geogrid.patrols.compute import describe_reason

#: Where the catalogues are (``pybabel compile -d`` writes the .mo files next to the .po).
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
#: The languages pages speak, the first the default of the default.
LANGUAGES = ("zh_CN", "en")
#: Cookie holding the choice of someone not signed in.
COOKIE = "lang"


def install(app: Flask, settings: Settings) -> None:
    """Select each request's language, and give templates the words and the time filters."""
    Babel(app, locale_selector=lambda: language(settings), default_locale=settings.language,
          default_timezone=settings.timezone, default_translation_directories=str(TRANSLATIONS))  # fmt: skip
    zone = ZoneInfo(settings.timezone)
    app.jinja_env.filters["when"] = lambda value: when(value, zone)
    app.jinja_env.filters["day"] = lambda value: day(value, zone)
    app.jinja_env.filters["label"] = lambda code, kind: _label(kind, code)
    app.jinja_env.filters["reason"] = lambda code: describe_reason(code, gettext)

    @app.context_processor
    def _language():
        return {"language": current(), "languages": LANGUAGES}


def _label(kind: str, code: str) -> str:
    from geogrid.api.labels import label

    return label(kind, code)


def language(settings: Settings) -> str:
    """The language of this request (see the module's docstring)."""
    who = g.get("principal")
    if who is not None and who.language in LANGUAGES:
        return who.language
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    if best is not None:
        return "en" if best.startswith("en") else "zh_CN"
    return settings.language


def current() -> str:
    """This request's language as one of ``LANGUAGES`` (Babel spells ``zh_CN`` as ``zh_Hans_CN``)."""
    return "en" if get_locale().language == "en" else "zh_CN"


def gettext(text: str) -> str:
    """*text* in the request's language (the English source when there is no translation)."""
    return get_translations().ugettext(text)


#: Error fields that hold a level's code: shown by the level's name (a page never shows a code).
_LEVEL_FIELDS = ("level", "wanted", "above")


def translate_error(template: str, params: dict) -> str:
    """An error's message in the request's language: its template translated, then filled in (levels by name)."""
    from geogrid.api.labels import label

    shown = {k: label("level", v) if k in _LEVEL_FIELDS and isinstance(v, str) else v for k, v in params.items()}
    try:
        return gettext(template).format(**shown)
    except (KeyError, IndexError, ValueError):
        return template.format(**shown)


@functools.cache
def _js(language: str) -> dict[str, str]:
    translations = Translations.load(str(TRANSLATIONS), [language], domain="js")
    catalog = getattr(translations, "_catalog", {})
    return {key: value for key, value in catalog.items() if isinstance(key, str) and key and value}


def js_messages() -> dict[str, str]:
    """The page script's words in the request's language (English keys): ``t("...")`` in maps.js."""
    return _js(str(get_locale()))


def when(value, zone: dt.tzinfo) -> str:
    """A moment as the pages show it: ``2026-11-29 08:10`` in the configured zone."""
    moment = _moment(value)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def day(value, zone: dt.tzinfo) -> str:
    """A day as the pages show it: ``2026-11-29``."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    moment = _moment(value)
    return moment.astimezone(zone).date().isoformat() if moment else ""


def _moment(value) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
