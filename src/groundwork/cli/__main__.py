"""``python -m groundwork.cli``: the same as the ``groundwork`` command."""

from groundwork.cli import app

app()
