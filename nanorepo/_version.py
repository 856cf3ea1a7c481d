"""The package version, in a module of its own so that any part can import it without
importing the package's public face (and what that loads on first use).

Written by the build from extension/package.json (the one version source of the Python and
the npm package; pyproject.toml's hatch-nodejs-version): change the version there.
"""

from __future__ import annotations

__version__ = "0.1.0"
