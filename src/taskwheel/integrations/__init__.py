"""taskwheel inside web applications: FastAPI (``integrations.fastapi``, the
``fastapi`` extra) and any ASGI application (``integrations.asgi``). A WSGI application
needs nothing of its own: see ``examples/wsgi_signups``."""
