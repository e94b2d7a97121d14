"""Property tests and fuzzing of everything a client or another process can send.

Every property runs a bounded number of examples, derandomized (``FUZZ`` in
``strategies.py``), so a run in CI is the same run as on a laptop. The long, open-ended run
is atheris' (``python -m tests.fuzz.atheris_codec``, see docs/fuzzing.md), not the suite.
"""
