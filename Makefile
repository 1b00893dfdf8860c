# geogrid: the two README commands (`make demo`, `make test`) and their helpers.
# Every target does its own set-up and is safe to re-run on a fresh Debian/Ubuntu machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
GEOGRID_HOME ?= $(CURDIR)/var
export GEOGRID_HOME

.PHONY: demo test setup venv postgis assets browser fonts db-up db-down lint clean translations catalogues

## make demo: set everything up, start the database, load the demo grid, serve the app
demo: setup fonts
	$(BIN)/geogrid db up
	$(BIN)/geogrid demo --serve

## make test: set everything up (and the browser for the map tests), lint, and run the whole test suite
test: setup browser
	$(BIN)/ruff check geogrid tests bench scripts
	$(BIN)/python -m pytest

setup: venv postgis assets translations

# The gettext catalogues (geogrid/translations/*/LC_MESSAGES/*.po, in the repo) compiled to .mo.
TRANSLATIONS := geogrid/translations
KEYWORDS := -k _ -k _l -k N_ -k lazy_gettext -k pgettext:1c,2 -k lazy_pgettext:1c,2 -k L_:1c,2 -k ngettext:1,2 \
	-k InvalidInput -k NotFound -k Conflict -k Forbidden -k Unauthorized -k GeogridError -k ConfigError \
	-k DatabaseUnavailable -k TooLarge -k translate_error
translations: venv
	$(BIN)/pybabel -q compile -d $(TRANSLATIONS) -D messages
	$(BIN)/pybabel -q compile -d $(TRANSLATIONS) -D js

## make catalogues: extract the texts again and merge them into the catalogues (then translate what is new)
catalogues: venv
	$(BIN)/pybabel -q extract -F babel.cfg --no-wrap --sort-by-file $(KEYWORDS) -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel -q extract -F babel-js.cfg --no-wrap --sort-by-file -k t -o $(TRANSLATIONS)/js.pot .
	$(BIN)/pybabel -q update --no-wrap -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -D messages -l zh_Hans_CN
	$(BIN)/pybabel -q update --no-wrap -i $(TRANSLATIONS)/js.pot -d $(TRANSLATIONS) -D js -l zh_Hans_CN

venv: $(VENV)/.installed

# Re-installs when pyproject.toml changes. Debian's system Python lacks `venv`
# until python3-venv is installed, so that is installed on demand too.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  $(call apt_install,python3-venv) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# PostGIS from the OS packages when missing: match the newest installed PostgreSQL
# major version; with no PostgreSQL at all, install `postgresql` first.
postgis:
	@if ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "geogrid: PostGIS is not installed and this machine has no apt-get; install PostGIS 3 for PostgreSQL, or set GEOGRID_DATABASE_URL to an existing PostGIS" >&2; exit 1; fi; \
	major=$$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$$' | sort -n | tail -n 1); \
	if [ -z "$$major" ]; then \
	  $(call apt_install,postgresql) || exit 1; \
	  major=$$(ls /usr/lib/postgresql | grep -E '^[0-9]+$$' | sort -n | tail -n 1); fi; \
	$(call apt_install,postgresql-$$major-postgis-3)

# The map pages' Leaflet and plugins, from the npm registry (web/package-lock.json pins
# them); Node.js and npm from the OS packages when missing.
assets: web/node_modules/.installed

web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(call apt_install,nodejs npm)
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Headless Chromium for the map-page tests, and CJK fonts so screenshots show Chinese.
browser: fonts
	@command -v chromium >/dev/null 2>&1 || $(call apt_install,chromium)

# CJK fonts: the demo basemap's village names, and Chinese in the browser's screenshots.
fonts:
	@ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || $(call apt_install,fonts-noto-cjk)

db-up: setup
	$(BIN)/geogrid db up

db-down:
	$(BIN)/geogrid db down

lint: venv
	$(BIN)/ruff check geogrid tests bench scripts
	$(BIN)/ruff format --check geogrid tests

clean:
	-$(BIN)/geogrid db down
	rm -rf $(VENV) var web/node_modules

# $(call apt_install,PACKAGES): apt-get update + install, through sudo only when not root.
define apt_install
{ sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
  echo "geogrid: installing $(1) from the OS packages"; \
  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(1) >/dev/null; }
endef
