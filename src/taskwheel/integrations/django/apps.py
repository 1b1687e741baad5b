"""The Django application of the integration: points the taskwheel app at the project's
database when Django starts (see `taskwheel.integrations.django.app`)."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class TaskwheelConfig(AppConfig):  # type: ignore[misc]  # Django is untyped
    name = "taskwheel.integrations.django"
    label = "taskwheel"
    verbose_name = "taskwheel"

    def ready(self) -> None:
        if "APP" in getattr(settings, "TASKWHEEL", {}):
            from taskwheel.integrations.django import app

            app()
