"""A Django view whose signups send a welcome email through taskwheel, enqueued in the
request's transaction (``transaction.atomic``) with the signup row.

    python manage.py taskwheel migrate     # taskwheel's tables, in Django's database
    python manage.py runserver
    python manage.py taskwheel worker      # runs the welcome jobs
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

import taskwheel

jobs = taskwheel.App(name="django-signups")


@jobs.task
def send_welcome(email: str) -> str:
    return f"welcome sent to {email}"


def sign_up(request: HttpRequest) -> JsonResponse:
    email = request.GET.get("email", "")
    if request.method != "POST" or "@" not in email:
        return JsonResponse({"error": "POST /signups?email=<an address>"}, status=400)
    try:
        with transaction.atomic():  # the signup and its job commit together, or neither
            welcome = send_welcome.enqueue(email, using=connection)
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE IF NOT EXISTS signups (email TEXT PRIMARY KEY)")
                cursor.execute("INSERT INTO signups (email) VALUES (%s)", [email])
    except IntegrityError:
        return JsonResponse({"error": f"{email} has signed up already"}, status=409)
    return JsonResponse({"email": email, "welcome_job": welcome.id}, status=201)


urlpatterns = [path("signups", sign_up)]
