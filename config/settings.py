"""Agora's settings, all read from the environment.

With no environment at all Agora runs embedded: SQLite and uploads under
AGORA_DATA_DIR (./var), a local Redis, the local Docker engine. DATABASE_URL,
REDIS_URL, ELASTICSEARCH_URL and FLUENTD_HOST switch to real servers.
See .env.example for every variable.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("AGORA_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the secret key and, embedded, the database

DEBUG = envbool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once per installation."""
    key = envstr("SECRET_KEY", "")
    if key:
        return key
    key_file = DATA_DIR / "secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from Agora's static files (no CDN)
    "catalogue",
    "orchestrator",
    "crane",
    "monitoring",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "config.middleware.NulCharacterMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out login into the lockout answer
]

# Failed logins (the login page, the admin, the API's token endpoint) lock out by username and by
# address for a cool-off (config/auth.py; decision 0012).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("AGORA_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AGORA_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
AXES_VERBOSE = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "portal.context.portal",
            ],
        },
    },
]


def _private_file(path: Path) -> str:
    """The embedded database holds API tokens and sessions: only Agora's own user reads it.

    Created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the same mode); an
    existing file made by an older Agora is narrowed to 0600 as well."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if part.exists() and part.stat().st_mode & 0o077:
                part.chmod(0o600)
    return str(path)


DATABASE_URL = envstr("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _private_file(DATA_DIR / "agora.sqlite3"),
            # Several processes (web, worker, collector, Fluentd receiver) share the file: WAL lets pages
            # read while the collector writes.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
if DATABASES["default"]["ENGINE"] not in (
    "django.db.backends.sqlite3",
    "django.db.backends.postgresql",
):
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (postgres://...) or be unset for SQLite")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the portal's CSS, scripts and vendored libraries
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "media/"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Content-Security-Policy (django-csp 4): scripts and styles only from Agora's own static files,
# so an injected <script> or on*= attribute never runs. The portal has no inline script or style.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Uploads: templates and CSARs. Anything larger is refused with 413 before it is read.
AGORA_MAX_TEMPLATE_BYTES = envint("AGORA_MAX_TEMPLATE_BYTES", 20 * 1024 * 1024, minimum=1024)
# Unset (None): the template limit + 1 MiB, worked out per request (orchestrator.limits.request_limit).
AGORA_MAX_REQUEST_BYTES: int | None = envint("AGORA_MAX_REQUEST_BYTES", 0, minimum=1024) or None
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o640

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes anonymous calls answer 401, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "config.schema.AgoraAutoSchema",  # documents the error answers too
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # Any body gets an answer: JSON nested past a sane depth is a 400, never a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": envstr("AGORA_THROTTLE_ANON", "300/min"),
        "user": envstr("AGORA_THROTTLE_USER", "1200/min"),
        "login": envstr("AGORA_THROTTLE_LOGIN", "30/min"),  # token requests per address
        "login_user": envstr("AGORA_THROTTLE_LOGIN_USER", "10/min"),  # token requests per username
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Agora API",
    "DESCRIPTION": "Marketplace and orchestrator of cloud services for public administrations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"AlertKindEnum": "monitoring.models.AlertRule.Kind"},
    # Swagger UI from drf-spectacular-sidecar's copy in the static files: /api/docs/ works offline, under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Bodies are JSON (form encodings cannot carry tags or inputs); uploads declare multipart themselves.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
}

# HTTPS: production (DEBUG off, served under a real host name) is HTTPS only: redirect, HSTS, secure
# cookies. The embedded default (DEBUG off too, but on 127.0.0.1/localhost over plain HTTP) and
# the tests keep plain HTTP. HTTPS=0/1 overrides the guess.
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1", "testserver"}
HTTPS = envbool("HTTPS", not DEBUG and any(host not in _LOCAL_HOSTS for host in ALLOWED_HOSTS))
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
    # Behind a proxy that ends TLS, its X-Forwarded-Proto tells Django the request was HTTPS.
    if envbool("TRUST_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        # The platform's own events: to FLUENTD_HOST when set, else into the monitoring store.
        "platform": {"class": "monitoring.platform_log.PlatformLogHandler"},
    },
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        # tosca-parser logs every validation error at ERROR level; Agora reports them itself.
        "tosca": {"level": "CRITICAL"},
        "tosca.model": {"level": "CRITICAL"},
        "agora.events": {"handlers": ["platform"], "level": "INFO"},
        "agora.audit": {"handlers": ["platform"], "level": "INFO"},
    },
}

# Fernet key for secrets at rest; unset: derived from SECRET_KEY (see config/crypto.py).
AGORA_ENCRYPTION_KEY = envstr("AGORA_ENCRYPTION_KEY", "")

# Jobs: deployment steps run as RQ jobs on this Redis; the step rows in the database are the truth.
REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
AGORA_QUEUE = envstr("AGORA_QUEUE", "agora")
# A running step holds a lease that its worker renews; a lease that runs out means the worker died.
AGORA_STEP_LEASE_SECONDS = envint("AGORA_STEP_LEASE_SECONDS", 15, minimum=3)
AGORA_STEP_MAX_ATTEMPTS = envint("AGORA_STEP_MAX_ATTEMPTS", 5, minimum=1)
AGORA_RECONCILE_SECONDS = envint("AGORA_RECONCILE_SECONDS", 3, minimum=1)
AGORA_WAIT_HEALTHY_SECONDS = envint("AGORA_WAIT_HEALTHY_SECONDS", 300, minimum=5)

# Crane: limits and defaults for what runs on targets (crane/conf.py reads these).
CRANE_DEFAULT_TARGET = envstr("CRANE_DEFAULT_TARGET", "local")
CRANE_PUBLIC_HOST = envstr("CRANE_PUBLIC_HOST", "localhost")
CRANE_DEFAULT_CPUS = float(envstr("CRANE_DEFAULT_CPUS", "1.0"))
CRANE_DEFAULT_MEMORY = envint("CRANE_DEFAULT_MEMORY", 512 * 1024 * 1024, minimum=4 * 1024 * 1024)
CRANE_PIDS_LIMIT = envint("CRANE_PIDS_LIMIT", 1024, minimum=16)
CRANE_MAX_REPLICAS = envint("CRANE_MAX_REPLICAS", 20, minimum=1)
CRANE_PORT_RANGE = (
    envint("CRANE_PORT_RANGE_START", 30000, minimum=1),
    envint("CRANE_PORT_RANGE_END", 30999, minimum=1),
)
CRANE_DOCKER_TIMEOUT = envint("CRANE_DOCKER_TIMEOUT", 30, minimum=1)
CRANE_CHECK_TIMEOUT = envint("CRANE_CHECK_TIMEOUT", 3, minimum=1)
CRANE_BUILD_TIMEOUT = envint("CRANE_BUILD_TIMEOUT", 900, minimum=10)

# Monitoring: metrics and logs go to the database unless ELASTICSEARCH_URL names a cluster.
ELASTICSEARCH_URL = envstr("ELASTICSEARCH_URL", "")
AGORA_MONITOR_INTERVAL = envint("AGORA_MONITOR_INTERVAL", 15, minimum=1)
AGORA_MONITORING_RETENTION_DAYS = envint("AGORA_MONITORING_RETENTION_DAYS", 14, minimum=1)
# The Fluentd forward receiver (`manage.py fluentd`) listens here; the platform's own events go to
# FLUENTD_HOST:FLUENTD_PORT through fluent-logger when FLUENTD_HOST is set.
AGORA_FLUENTD_BIND = envstr("AGORA_FLUENTD_BIND", "127.0.0.1:24224")
AGORA_FLUENTD_MAX_CHUNK_BYTES = envint("AGORA_FLUENTD_MAX_CHUNK_BYTES", 8 * 1024 * 1024, minimum=1024)
AGORA_FLUENTD_MAX_DECOMPRESSED_BYTES = envint("AGORA_FLUENTD_MAX_DECOMPRESSED_BYTES", 64 * 1024 * 1024, minimum=1024)
AGORA_FLUENTD_TRUSTED = envlist("AGORA_FLUENTD_TRUSTED", ["127.0.0.0/8", "::1/128"])  # send without a handshake
# /metrics (Prometheus): open to these networks, or to anyone sending `Authorization: Bearer <token>`.
AGORA_METRICS_ALLOWED_NETWORKS = envlist("AGORA_METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
AGORA_METRICS_TOKEN = envstr("AGORA_METRICS_TOKEN", "")
FLUENTD_HOST = envstr("FLUENTD_HOST", "")
FLUENTD_PORT = envint("FLUENTD_PORT", 24224, minimum=1)

# Alerts are mailed to the organization's address; the console backend prints them in development.
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "agora@localhost")
