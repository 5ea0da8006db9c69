# syntax=docker/dockerfile:1
# The console and the shopper pages: built from npm here, copied into the image
# below as web/dist (nothing is fetched from a CDN at run time).
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# One image for everything that runs our code: api, dispatcher, streams, the
# one-shot init, and the Ray head (the head and the dispatcher's driver must
# run the same Ray and Python versions, and actor workers import our packages).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_AUTH_MODE=disabled \
    RAY_USAGE_STATS_ENABLED=0 \
    CARNIVAL_DATA_DIR=/app/data

RUN groupadd --system --gid 10001 carnival \
 && useradd --system --uid 10001 --gid carnival --create-home \
      --home-dir /home/carnival --shell /usr/sbin/nologin carnival

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not
# reinstall Ray and chdb (the slow layer).
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the project itself. Editable on purpose: streams/clickhouse.py finds the
# migrations at <repo>/sql (a data folder next to the packages, not a package),
# so the modules must be imported from /app, not from site-packages.
COPY . .
COPY --from=web /web/dist /app/web/dist
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps -e . \
 && mkdir -p /app/data \
 && chown carnival:carnival /app /app/data

USER carnival

EXPOSE 8000 6066
CMD ["carnival", "api"]
