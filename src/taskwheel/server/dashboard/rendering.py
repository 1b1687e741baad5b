"""The dashboard's templates (Jinja2, autoescaped) and the filters they use."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from taskwheel.server.dashboard import views

HERE = Path(__file__).parent
STATIC = HERE / "static"

templates = Jinja2Templates(directory=HERE / "templates")
# The templates ship with the package and never change while a server runs: without
# this, every render stats its template file (and the live feed renders three
# fragments a second while a tab watches).
templates.env.auto_reload = False
templates.env.filters.update(
    age=views.age, when=views.when, as_json=views.as_json, first_line=views.first_line)
templates.env.globals.update(FAILED={status.value for status in views.FAILED_STATUSES})


def fragment(template: str, **context: object) -> str:
    """A template rendered alone (a live fragment: no request, no page around it)."""
    return templates.env.get_template(template).render(**context)
