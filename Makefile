# Parley — `make run` starts everything on embedded defaults; `make test` installs and tests.
# Needs only python3 and make: uv is installed into .tools/ on first use.

UV_VERSION := 0.13.9
UV := .tools/bin/uv
RUN := $(UV) run --frozen
export UV_PROJECT_ENVIRONMENT ?= .venv

.PHONY: install run test bench lint migrate collectstatic clean chromium

$(UV):
	@mkdir -p .tools
	@python3 -m pip install --quiet --disable-pip-version-check --target .tools uv==$(UV_VERSION) 2>/dev/null \
	  || (python3 -m venv .tools/venv && .tools/venv/bin/pip install --quiet uv==$(UV_VERSION) \
	      && mkdir -p .tools/bin && ln -sf ../venv/bin/uv .tools/bin/uv)
	@test -x $(UV) || (echo "Could not install uv into .tools/" >&2; exit 1)

install: $(UV)
	@$(UV) sync --frozen --quiet

migrate: install
	@$(RUN) python manage.py migrate --noinput

run: install
	@$(RUN) python manage.py migrate --noinput
	@$(RUN) python manage.py seed_demo --if-empty
	@$(RUN) python manage.py announce --banner-only
	@$(RUN) honcho -f Procfile.dev start

# Browser tests drive Debian's chromium with Playwright; it is installed with apt when missing
# (as root, or through sudo). Playwright never downloads a browser of its own.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing chromium with apt for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

test: install chromium
	@$(RUN) pytest $(PYTEST_ARGS)

bench: install
	@$(RUN) python -m bench $(BENCH_ARGS)

lint: install
	@$(RUN) ruff check .

clean:
	rm -rf .venv .tools var
