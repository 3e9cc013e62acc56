"""The Graph REST face of the sandbox tenant (``/v1.0``): users, calendars, events, calendarView and
``$batch``, answered the way Microsoft Graph answers them, from the shared tenant store.

Modules: ``face`` (HTTP: bearer tokens, the request log, Graph's headers), ``pipeline`` (one request
through throttling and injected faults), ``batch`` (``$batch``), ``handlers`` (routing and the
operations, shared by plain requests and batch parts), ``convert`` (item ↔ event JSON, time zones),
``odata`` (``$filter``/``$expand``/``$select``/``$orderby``), ``csdl`` (bodies held against Graph's CSDL),
``errors`` (Graph's error JSON) and ``connection`` (dropping a connection for the reset faults).
"""
