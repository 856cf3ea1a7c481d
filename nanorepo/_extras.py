"""Which extra a part of nanorepo needs, said clearly when it is missing.

``pip install nanorepo`` is the library, the client and the CLI for reading and discussing
data from anywhere; the catalog and the service need ``[server]``, the research environment
``[hub]``, the viewer ``[napari]``. A subpackage that needs an extra calls :func:`require`
first, so importing it without the extra raises :class:`~nanorepo.errors.MissingExtra`
naming the extra to install, instead of a bare ``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

from importlib import import_module

from nanorepo.errors import MissingExtra

__all__ = ["require"]


def require(part: str, extra: str, *modules: str) -> None:
    """Import ``modules`` (top-level distributions' modules) or raise :class:`MissingExtra`.

    Parameters
    ----------
    part:
        The nanorepo part that needs them, as users name it (``nanorepo.service``).
    extra:
        The extra that installs them (``server``, ``hub``, ``napari``).
    """
    for name in modules:
        try:
            import_module(name)
        except ImportError as exc:
            if exc.name is not None and exc.name.split(".")[0] != name.split(".")[0]:
                raise  # the package is there but broken: its own error is the useful one
            raise MissingExtra(part, extra, name) from exc
