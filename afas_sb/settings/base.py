"""Settings shared by every environment, read from the process environment.

Each variable is documented in the README's configuration table. Development
and tests get safe defaults; production (``afas_sb.settings.production``)
refuses to start without its secrets.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    # Kernel first: the custom user model must be known before admin/auth.
    "afas_sb.users",
    "afas_sb.audit",
    "afas_sb.scheduler",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "csp",
    # Domain apps, lowest first (dependencies point one way, see DESIGN.md).
    "licensing",
    "billing",
    "privacy",
    "support",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "afas_sb.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "afas_sb.users.middleware.StaffMfaRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "afas_sb.urls"
WSGI_APPLICATION = "afas_sb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------
# DATABASE_URL absent: a SQLite file, so `make run` works on a bare machine.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and an in-process task share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="afas_sb"),
        }
    }
else:
    # Rate limits need a cache shared by all processes; without Redis the
    # database is the one thing every process shares.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "afas_sb_cache",
        }
    }

# --- Authentication (django-allauth) -----------------------------------------
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "afas_sb.users.validators.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "portal.adapters.PortalAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[AFAS SB] "
# allauth's defaults, written out because they are a security promise:
# failed logins are limited per IP and per account.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "send_email": "5/m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "AFAS SB Klantportal"
MFA_RECOVERY_CODE_COUNT = 10

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "nl"
LANGUAGES = [("nl", _("Nederlands")), ("en", _("Engels"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")

# --- E-mail -------------------------------------------------------------------
# EMAIL_URL picks the transport (smtp://user:pass@host:port, consolemail://,
# filemail://...). Development writes mails to var/mail as .eml files.
if env("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Development default: every mail is written as a file under var/mail.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(BASE_DIR / "var" / "mail")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="AFAS SB <noreply@sb.example.nl>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery --------------------------------------------------------------------
# REDIS_URL absent: tasks run in-process when they are sent, so development
# needs no broker. The calendar state lives in the database either way.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# The beat schedule, in one place. django-celery-beat copies these entries into
# its tables at start, where staff can see (not edit the meaning of) them.
CELERY_BEAT_SCHEDULE = {
    # The nightly calendar: invoicing on the 1st, the 28th rule, retention, ...
    # Runs just after midnight Amsterdam time so "today" is the new business day.
    "calendar-nightly": {
        "task": "afas_sb.scheduler.tasks.calendar_tick",
        "schedule": crontab(hour=0, minute=30),
    },
    # Hourly re-run: retries actions that failed and catches up days missed
    # while beat or the workers were down. A no-op when the day is complete.
    "calendar-hourly-catch-up": {
        "task": "afas_sb.scheduler.tasks.calendar_tick",
        "schedule": crontab(minute=45),
    },
    # Every 5 minutes: send due invoice deliveries, and retry what an SMTP or
    # access-point outage held back (R10). Delivery state lives in the database.
    "invoice-deliveries-sweep": {
        "task": "billing.delivery_tasks.invoice_deliveries_sweep",
        "schedule": crontab(minute="*/5"),
    },
    # Every 5 minutes: collection e-mails (debit pre-notifications, failed
    # debits, pay-by-transfer requests) still waiting to be sent (R12).
    "collection-notices-sweep": {
        "task": "billing.notice_tasks.collection_notices_sweep",
        "schedule": crontab(minute="*/5"),
    },
}

# --- Calendar kernel -------------------------------------------------------------
# How far back the calendar catches up after an outage, and how often a failed
# action is retried before it waits for staff.
CALENDAR_MAX_CATCH_UP_DAYS = env.int("CALENDAR_MAX_CATCH_UP_DAYS", default=62)
CALENDAR_MAX_ATTEMPTS = env.int("CALENDAR_MAX_ATTEMPTS", default=5)

# --- Portal -------------------------------------------------------------------------
INVITATION_VALID_DAYS = env.int("INVITATION_VALID_DAYS", default=7)

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "afas_sb.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AFAS SB back office API",
    "DESCRIPTION": "Klantportal and SB application endpoints.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security headers (tightened further in production) --------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 8
CSRF_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# --- Logging: one JSON object per line, so production logs are searchable ---------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint logs several INFO lines per PDF; a billing run renders thousands.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- Vendor identity (shown in the portal; used by invoices later) ------------------------
VENDOR_NAME = env("VENDOR_NAME", default="AFAS Software B.V.")
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@sb.example.nl")

# seed_demo creates accounts with known passwords: only where this is True.
DEMO_DATA_ALLOWED = False

# The seller on every invoice (snapshotted onto each invoice when it is issued).
VENDOR_STREET = env("VENDOR_STREET", default="Philipsstraat 9")
VENDOR_POSTCODE = env("VENDOR_POSTCODE", default="3833 LC")
VENDOR_CITY = env("VENDOR_CITY", default="Leusden")
VENDOR_COUNTRY = "NL"
VENDOR_KVK = env("VENDOR_KVK", default="12345678")
VENDOR_VAT_ID = env("VENDOR_VAT_ID", default="NL004495445B01")
VENDOR_IBAN = env("VENDOR_IBAN", default="NL91ABNA0417164300")
VENDOR_BIC = env("VENDOR_BIC", default="ABNANL2A")
VENDOR_BILLING_EMAIL = env("VENDOR_BILLING_EMAIL", default="facturen@sb.example.nl")
# Payment term in days (R9, §3.3).
INVOICE_PAYMENT_TERM_DAYS = 14

# Invoice delivery (R10): e-mail with PDF + UBL, or Peppol when the customer has an id.
# "outbox" writes UBL files for development; "http" posts to an access point.
PEPPOL_TRANSPORT = env("PEPPOL_TRANSPORT", default="outbox")
# Empty: MEDIA_ROOT/peppol-outbox.
PEPPOL_OUTBOX_DIR = env("PEPPOL_OUTBOX_DIR", default="")
PEPPOL_ACCESS_POINT_URL = env("PEPPOL_ACCESS_POINT_URL", default="")
PEPPOL_ACCESS_POINT_TOKEN = env("PEPPOL_ACCESS_POINT_TOKEN", default="")
PEPPOL_ACCESS_POINT_TIMEOUT = env.int("PEPPOL_ACCESS_POINT_TIMEOUT", default=30)
INVOICE_DELIVERY_MAX_ATTEMPTS = env.int("INVOICE_DELIVERY_MAX_ATTEMPTS", default=8)

# SEPA creditor identifier (incassant-ID) on mandates and direct debits (R12);
# production sets the vendor's real one.
SEPA_CREDITOR_ID = env("SEPA_CREDITOR_ID", default="NL69ZZZ123456780000")
# Direct debits (R12): the batch is made this many TARGET2 days before the
# collection date (the bank's cut-off: D-1 under the SEPA Core rulebook, D-2 at
# some banks).
SEPA_DEBIT_LEAD_DAYS = env.int("SEPA_DEBIT_LEAD_DAYS", default=1)
# Calendar days between announcing a debit by e-mail and collecting it: the
# shorter pre-notification period the mandate text agrees (the SEPA default is
# 14; an invoice due 14 days after issue meets that by itself).
SEPA_PRENOTIFICATION_DAYS = env.int("SEPA_PRENOTIFICATION_DAYS", default=5)
# Re-presentments after an AM04 (insufficient funds) return; MS03 gets at most one.
SEPA_MAX_REPRESENTMENTS = env.int("SEPA_MAX_REPRESENTMENTS", default=2)
# Calendar days between a return and the next attempt (moved to a TARGET2 day),
# so the attempts spread over the month.
SEPA_REPRESENT_AFTER_DAYS = env.int("SEPA_REPRESENT_AFTER_DAYS", default=7)
# Where new pain.008 batches are handed to the bank: "outbox" writes them to
# SEPA_OUTBOX_DIR (MEDIA_ROOT/sepa-outbox when empty) for the bank connector
# (EBICS client) to pick up and marks them submitted; "manual" leaves them for
# staff to download and mark submitted in admin.
SEPA_SUBMISSION = env("SEPA_SUBMISSION", default="outbox")
SEPA_OUTBOX_DIR = env("SEPA_OUTBOX_DIR", default="")
# Largest bank file accepted (a 100 000-entry camt.053 is about 126 MB).
BANK_FILE_MAX_BYTES = env.int("BANK_FILE_MAX_BYTES", default=256 * 1024 * 1024)
