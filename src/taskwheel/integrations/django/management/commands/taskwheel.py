"""``python manage.py taskwheel COMMAND ...``: the ``taskwheel`` command line with the
project's app (``settings.TASKWHEEL["APP"]``) and database."""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from taskwheel.integrations import django as integration


class Command(BaseCommand):  # type: ignore[misc]  # Django is untyped
    help = "Run a taskwheel command (worker, scheduler, jobs, ...) for this project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER,
                            help="the taskwheel command and its options")

    def handle(self, *args: Any, **options: Any) -> None:
        from taskwheel.cli.main import main

        configured = integration._settings()
        if "APP" in configured:
            os.environ.setdefault("TASKWHEEL_APP", str(configured["APP"]))
        os.environ.setdefault("TASKWHEEL_DATABASE_URL", integration.database_url())
        main(list(options["arguments"]))
