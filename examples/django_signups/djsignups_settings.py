"""Settings of the Django example: one SQLite database, shared by the signups table and
taskwheel's tables (``$SIGNUPS_DATABASE``, else ./signups.db)."""

from __future__ import annotations

import os

SECRET_KEY = "an example's key, not a secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djsignups"
MIDDLEWARE: list[str] = []
INSTALLED_APPS = ["taskwheel.integrations.django"]
USE_TZ = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SIGNUPS_DATABASE", "signups.db"),
        # A transaction takes the write lock at its start, as taskwheel's do.
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    },
}
TASKWHEEL = {"APP": "djsignups:jobs"}
