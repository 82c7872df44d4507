# quanguard — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-gm test-fast bench browser java lint clean help

help:
	@echo "make run    - set up .venv, migrate the embedded store and serve on 127.0.0.1:8000"
	@echo "make test   - set up .venv with dev extras, run make lint, then the whole test suite"
	@echo "make lint   - ruff and mypy --strict over every package, the tests and the benchmarks"
	@echo "make test-gm - the trail, exchange and masking tests again under QUANGUARD_CRYPTO=gm"
	@echo "make bench  - run every benchmark in bench/ and write bench/RESULTS.md"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/quanguard serve

# Headless Chromium for the console's end-to-end tests and the report's PDF, and a CJK
# font so Chinese text renders (Debian packages; needs root).
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; } || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	      || echo "warning: could not install chromium / fonts-noto-cjk; browser tests will fail in CI"; \
	  else echo "note: chromium or a CJK font is not installed; browser tests are skipped outside CI"; fi; }

# Spark tests (tests/spark) need a Java 17+ runtime.
java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
	  echo "error: Spark tests need Java 17 or newer: apt-get install openjdk-17-jre-headless" \
	       "(Debian/Ubuntu) or set JAVA_HOME"; exit 1; }

test: lint browser java
	$(BIN)/python -m pytest -q

# The trail, exchange and masking tests under the gm crypto suite (SM2/SM3/SM4); `make test`
# runs everything under the default (intl). CI runs both.
GM_TESTS := tests/gmcrypto tests/monitor tests/exchange tests/desensitize/test_mask_*.py \
	tests/desensitize/test_op_*.py tests/quanguard/test_audit_*.py \
	tests/quanguard/test_exchange_*.py tests/quanguard/test_mask_api.py tests/quanguard/test_mask_hot_path.py \
	tests/quanguard/test_crypto_suite.py tests/quanguard/test_auth.py \
	tests/security/test_seams_atrest.py tests/faults/test_backup.py tests/desensitize/test_ids_redact.py
test-gm: $(STAMP)
	QUANGUARD_CRYPTO=gm $(BIN)/python -m pytest -q $(GM_TESTS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# mypy reads its settings (strict) and what it checks (every package, tests, bench) from pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check quanguard monitor desensitize watermark exchange gmcrypto tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
