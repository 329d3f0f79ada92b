"""What several test modules share: sample files, report and API shortcuts,
the live server and the browser's helpers, test receivers.

Fixtures live in the ``conftest.py`` beside the tests that use them; plain
functions and constants live here, so that no test module imports another.
"""
