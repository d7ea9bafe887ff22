"""Jinja2 templates of the children each Kind owns (``<kind>/*.yaml.j2``), shipped in the wheel as package data.

The folder stays at the top of the repository so that the architecture is visible; it installs as
``croupier.templates`` (see ``[tool.setuptools.package-dir]``), so an installed operator finds its templates without a
checkout or a ``CROUPIER_OPERATOR_TEMPLATES_DIR``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def directory() -> Path:
    """The installed templates folder (the repository's ``templates/`` in an editable install)."""
    root = files(__name__)
    # Jinja2's FileSystemLoader needs a real folder: a wheel installs into one (never a zip import).
    if not isinstance(root, Path):
        raise RuntimeError(f"{__name__} is not installed as a folder ({root!r}); Jinja2 needs one")
    return root
