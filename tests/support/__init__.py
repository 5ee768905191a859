"""What the test packages share: an MLflow URI context and a test registry (``registry``), the
project copier and Kedro runner (``project``), gunicorn and HTTP (``gunicorn``), the service's test
settings and request bodies (``serving``).

Imported as ``support.<module>`` (``tests/`` is on ``sys.path``: ``tests/conftest.py`` is a rootdir
conftest, and the benchmarks put it there). No pytest fixtures here: the conftests define those.
"""
