"""Where files shipped with Tandem are: the source tree, or the PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def root() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def sql_dir() -> Path:
    return root() / "sql"


def panel_dir() -> Path:
    """Built panel assets (frontend/dist); may not exist in a source checkout without a build."""
    return root() / "frontend" / "dist"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))
