#!/usr/bin/env python
"""Django's command line for the example (``python manage.py taskwheel worker``)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsignups_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
