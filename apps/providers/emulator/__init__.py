"""A stand-in for Meta's WhatsApp Cloud API (Graph API) used by the demo, end-to-end tests and
benchmarks. It is deliberately independent of Parley's own provider code so that it stays an
honest fake: it only knows Meta's wire formats (see ``protocol.md``).

Entry points: :func:`apps.providers.emulator.server.create_app` and the ``cloudapi_emulator``
management command.
"""
