"""The HTTP edge, the only socket code: the ASGI app, AWS JSON 1.1, SigV4, ``lifecycle serve``.

``app`` is the ASGI application over an ``ExperimentService``; ``protocol``
turns request bytes into an ``invoke`` call and its answer (or error) into
AWS JSON 1.1; ``sigv4`` verifies request signatures; ``options`` holds the serve
command's flags and ``serve`` its wiring and uvicorn.
"""
