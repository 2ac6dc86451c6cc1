"""uws: the IVOA UWS 1.1 interface (and VOSI) of every app, at /<app>/jobs, /<app>/availability
and /<app>/capabilities. The same jobs as /function/jobs; XML documents, text errors
(caesar_faas/uws/routes.py lists the resources)."""

try:  # OpenFaaS image: the shared package is copied next to this file (function.caesar_faas)
    from .caesar_faas.uws.answers import endpoint
    from .caesar_faas.uws.routes import route
except ImportError:  # local gateway and tests: the package is importable from the repo root
    from caesar_faas.uws.answers import endpoint
    from caesar_faas.uws.routes import route

handle = endpoint(route)
