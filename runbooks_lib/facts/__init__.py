"""Facts: read one thing's state with one command and parse it with a pure function.

Each module names a thing inspected (``os_release``, ``sysctl``, ``swap`` ...) and offers
``command(...)`` (the shell that reads it, per distro family where they differ) and ``parse*``
functions (pure, unit-tested on captured and written outputs: tests/fixtures/facts/PROVENANCE.md).
:mod:`runbooks_lib.facts.script` runs many facts in one SSH round trip.
"""
