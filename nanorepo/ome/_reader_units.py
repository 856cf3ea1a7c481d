"""Physical units as image and table files spell them, converted to nanometres and seconds.

nanorepo stores lengths in nanometres and times in seconds. Instrument files spell units
in many ways: OME-XML symbols (``µm``, ``Å``), NGFF names (``micrometer``), ImageJ words
(``micron``, ``\\u00B5m``) and column headers (``x [nm]``, ``x_um``). One table here keeps
every reader converting the same way. An unknown or non-physical unit (``pixel``) converts
to ``None`` so the caller reports the size as missing instead of guessing it.
"""

from __future__ import annotations

import math

__all__ = ["length_to_nm", "power_to_mw", "time_to_s"]

_SI_PREFIX: dict[str, float] = {
    "Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3,
    "h": 1e2, "da": 1e1, "": 1.0, "d": 1e-1, "c": 1e-2, "m": 1e-3, "µ": 1e-6, "u": 1e-6,
    "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18, "z": 1e-21, "y": 1e-24,
}  # fmt: skip
_SI_NAME: dict[str, str] = {
    "yotta": "Y", "zetta": "Z", "exa": "E", "peta": "P", "tera": "T", "giga": "G", "mega": "M",
    "kilo": "k", "hecto": "h", "deca": "da", "deci": "d", "centi": "c", "milli": "m",
    "micro": "µ", "nano": "n", "pico": "p", "femto": "f", "atto": "a", "zepto": "z", "yocto": "y",
}  # fmt: skip

# Metres per unit for lengths that are not SI-prefixed metres.
_LENGTH_OTHER_M: dict[str, float] = {
    "å": 1e-10, "a": 1e-10, "angstrom": 1e-10, "ångström": 1e-10,
    "micron": 1e-6, "microns": 1e-6, "um": 1e-6, "µm": 1e-6, "μm": 1e-6,
    "in": 0.0254, "inch": 0.0254, "ft": 0.3048, "foot": 0.3048, "yd": 0.9144, "yard": 0.9144,
    "mi": 1609.344, "mile": 1609.344, "thou": 2.54e-5,
}  # fmt: skip

_TIME_OTHER_S: dict[str, float] = {
    "sec": 1.0, "second": 1.0, "seconds": 1.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0, "d": 86400.0, "day": 86400.0,
    "days": 86400.0, "msec": 1e-3, "usec": 1e-6, "µsec": 1e-6,
}  # fmt: skip


def _clean(unit: object) -> str | None:
    if unit is None:
        return None
    text = str(getattr(unit, "value", unit)).strip()
    # ImageJ writes the micro sign as an escaped "\u00B5".
    text = text.replace("\\u00B5", "µ").replace("\\u00b5", "µ").replace("μ", "µ")
    return text or None


def _prefixed(unit: str, base_symbol: str, base_name: str) -> float | None:
    """Factor of an SI-prefixed unit of ``base`` (``nm``, ``nanometer``, ``nanometre``)."""
    low = unit.lower()
    for ending in (base_name, base_name + "s", base_name.replace("er", "re"),
                   base_name.replace("er", "re") + "s"):  # fmt: skip
        if low.endswith(ending):
            prefix = low[: -len(ending)]
            if prefix in _SI_NAME:
                return _SI_PREFIX[_SI_NAME[prefix]]
            if prefix == "":
                return 1.0
    if unit.endswith(base_symbol):
        prefix = unit[: -len(base_symbol)]
        if prefix in _SI_PREFIX:
            return _SI_PREFIX[prefix]
    return None


def _tidy(x: float) -> float:
    """Drop binary rounding noise of a unit conversion (488e-9 * 1e9 == 488.00000000000006)."""
    return float(f"{x:.12g}")


def length_to_nm(value: float | None, unit: object) -> float | None:
    """Convert a length to nanometres.

    Parameters
    ----------
    value:
        The number as stored in the file.
    unit:
        Its unit: an OME symbol or enum (``µm``, ``Å``), an NGFF name (``micrometer``), an
        ImageJ word (``micron``) or ``None``.

    Returns
    -------
    float or None
        Nanometres, or ``None`` when the value or the unit is missing, not physical
        (``pixel``, ``reference frame``) or not known.
    """
    text = _clean(unit)
    if value is None or text is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    factor = _LENGTH_OTHER_M.get(text.lower()) or _LENGTH_OTHER_M.get(text)
    if factor is None:
        factor = _prefixed(text, "m", "meter")
    if factor is None:
        return None
    return _tidy(number * factor * 1e9)


def time_to_s(value: float | None, unit: object) -> float | None:
    """Convert a time to seconds (``s``, ``ms``, ``µs``, ``min``, ``h``, ``millisecond`` ...).

    Returns ``None`` when the value or unit is missing or unknown.
    """
    text = _clean(unit)
    if value is None or text is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    factor = _TIME_OTHER_S.get(text.lower())
    if factor is None:
        factor = _prefixed(text, "s", "second")
    return None if factor is None else _tidy(number * factor)


def power_to_mw(value: float | None, unit: object) -> float | None:
    """Convert a power (``W``, ``mW``, ``µW`` ...) to milliwatts; ``None`` if unknown."""
    text = _clean(unit)
    if value is None or text is None:
        return None
    factor = _prefixed(text, "W", "watt")
    if factor is None:
        return None
    return float(value) * factor * 1e3
