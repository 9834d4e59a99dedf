"""The benchmark of session-exporter: ``python -m bench`` (or ``make bench``).

Every goal is a ratio against a baseline measured in the same run, on the same machine, so
the figures hold up on a busy or slow machine. See the README's "Performance" section.
"""
