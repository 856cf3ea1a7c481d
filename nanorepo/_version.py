"""The package version, in a module of its own so that any part can import it without
importing the package's public face (and what that loads on first use)."""

from __future__ import annotations

__version__ = "0.1.0"
