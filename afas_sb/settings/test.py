"""The test suite: PostgreSQL and Redis when their URLs are set, else SQLite."""

import os
from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403
from .base import BASE_DIR

SECRET_KEY = "test-only-insecure-key"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOG_FORMAT = "text"
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
MEDIA_ROOT = BASE_DIR / "var" / "test-media"
DEMO_DATA_ALLOWED = True
# Close connections after each request: the live server's thread must not hold
# one open when the test database is dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Tests call tasks directly or through the eager path; a dedicated test covers
# the round trip through the real Redis broker.
CELERY_TASK_ALWAYS_EAGER = True

if REDIS_URL:  # noqa: F405
    # The cache gets a Redis database of its own per xdist worker: clearing it
    # between tests (FLUSHDB) must touch neither the Celery broker on the URL's
    # own database nor another worker's rate-limit counters. Counted from the URL's
    # database, so two runs on one machine given different ones do not share either.
    _worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    _url = urlsplit(REDIS_URL)  # noqa: F405
    _cache_db = (int(_url.path.strip("/") or 0) + 1 + _worker) % 16
    CACHES["default"]["LOCATION"] = urlunsplit(_url._replace(path=f"/{_cache_db}"))  # noqa: F405
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Serve static files from the app folders without collectstatic.
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
