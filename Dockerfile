# syntax=docker/dockerfile:1
# Production image: gunicorn serving afas_sb.wsgi, static files through WhiteNoise.
# The same image runs the Celery worker and beat (see docker-compose.yml).

# --- Build: dependencies from uv.lock, compiled messages, collected static files ----
FROM python:3.11-slim-bookworm AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# gettext: msgfmt for compilemessages (the .mo files are not in git).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project --python /usr/local/bin/python3.11

COPY . .
ENV PATH=/app/.venv/bin:$PATH

# Dummy values, for the build steps below only: production settings refuse to
# import without them. The real ones come from the runtime environment.
ARG BUILD_SECRET_KEY=build-only-not-a-secret-collectstatic-compilemessages-0123456789
ARG BUILD_ALLOWED_HOSTS=localhost
RUN if find locale -name '*.po' | grep -q .; then \
        DJANGO_SETTINGS_MODULE=afas_sb.settings.production \
        SECRET_KEY="$BUILD_SECRET_KEY" ALLOWED_HOSTS="$BUILD_ALLOWED_HOSTS" \
        python manage.py compilemessages --ignore=.venv; \
    fi
RUN DJANGO_SETTINGS_MODULE=afas_sb.settings.production \
    SECRET_KEY="$BUILD_SECRET_KEY" ALLOWED_HOSTS="$BUILD_ALLOWED_HOSTS" \
    python manage.py collectstatic --noinput

# --- Runtime: no compilers, no uv, no gettext; a non-root user -----------------------
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=afas_sb.settings.production

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=build --chown=root:root /app /app
# var/: MEDIA_ROOT and the file mail backend's default; the only writable place.
RUN mkdir -p /app/var/media /app/var/mail && chown -R app:app /app/var

USER app
EXPOSE 8000

# Health: GET /healthz (docker-compose.yml probes it for the web service only,
# since the worker and beat run this image too).
CMD ["gunicorn", "afas_sb.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
