"""Numbers and missing values as people read them: the one formatter of every output.

The terminal's tables, the Markdown and HTML pages, the figures' labels and the messages
all format through these functions, so a figure reads the same everywhere: ``12.3 s``,
``41,200 samples/s``, ``0.9812``, and ``-`` where nothing was measured. :func:`plain` is
the other direction: any value as strict JSON (numpy scalars unwrapped, NaN as null).
"""

from __future__ import annotations

import math
from typing import Any

#: What a missing value looks like in every table.
MISSING = "-"


def missing(value: Any) -> bool:
    """True for "not measured": None, NaN, pandas' NA and NaT, an empty string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd  # only ever loaded already where its NA can occur
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: present
        return False


def number(value: Any, unit: str = "", *, signed: bool = False) -> str:
    """A value with its unit for tables and messages: ``12.3 s``, ``41,200 samples/s``,
    ``0.52 ms``, ``1,234.5 MB``, ``3.1e+09 FLOP/s``, ``0.9812``; whole counts without a
    unit get thousands separators (``7,850``); :data:`MISSING` when not measured."""
    if missing(value):
        return MISSING
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    sign = "+" if signed else ""
    if unit == "s":
        digits = 2 if abs(value) < 10 else (1 if abs(value) < 100 else 0)
        return f"{value:{sign}.{digits}f} s"
    if unit == "samples/s":
        return f"{value:{sign},.0f} samples/s"
    if unit == "ms":
        return f"{value:{sign}.3g} ms"
    if unit == "MB":
        return f"{value:{sign},.1f} MB"
    if unit in ("FLOP/s", "FLOPs"):
        return f"{value:{sign}.3g} {unit}"
    if value.is_integer() and abs(value) >= 1000:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.4f}"


def spec(value: Any, format_spec: str) -> str:
    """``format(value, format_spec)``, or :data:`MISSING` when not measured."""
    if missing(value):
        return MISSING
    return format(value, format_spec)


def text(value: Any) -> str:
    """A value as display text: :data:`MISSING` when not measured; a whole float (a count
    read from a column with empty cells) without its ``.0``."""
    if missing(value):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def count(value: int, singular: str, plural: str = "") -> str:
    """``1 run``, ``3 runs``, ``2 directories`` (with ``plural``)."""
    return f"{value} {singular if value == 1 else plural or singular + 's'}"


def seconds(value: float) -> str:
    """A time for a value label: ``1.23 s``, ``12.3 s``, ``123 s``."""
    return number(value, "s")


def ratio(value: float) -> str:
    """A ratio: ``×1.07``; :data:`MISSING` when unknown."""
    return MISSING if missing(value) else f"×{value:.2f}"


def percent(fraction: float, *, signed: bool = False) -> str:
    """``12.3%`` (``+12.3%`` signed); :data:`MISSING` when unknown."""
    if missing(fraction):
        return MISSING
    return f"{fraction * 100:{'+' if signed else ''}.1f}%"


def interval(low: float, high: float) -> str:
    """A ratio's confidence interval: ``[×0.95, ×1.12]``; "" when unknown."""
    if missing(low) or missing(high):
        return ""
    return f"[×{low:.2f}, ×{high:.2f}]"


def p_value(value: float) -> str:
    """``p=0.0079``, ``p<0.001``: a p-value for messages and figures."""
    if missing(value):
        return MISSING
    return "p<0.001" if value < 0.001 else f"p={value:.2g}"


def threshold(value: float) -> str:
    """A threshold as the user would type it: ``10``, ``0.005``, ``2.5``."""
    # Rounding first hides float noise such as 0.1 * 100 == 10.000000000000002.
    return f"{round(value, 12):.12g}"


def first_error(errors, limit: int | None = None) -> str:
    """The first non-empty error, on one line; cut to ``limit`` characters (figures)."""
    for error in errors:
        error = " ".join(str(error).split())
        if error:
            if limit is not None and len(error) > limit:
                error = error[: limit - 1] + "…"
            return error
    return ""


def plain(value: Any) -> Any:
    """``value`` as strict-JSON values: numpy scalars unwrapped, NaN/inf and NA as None,
    tuples as lists, dict keys as strings; :func:`json.dumps` with ``allow_nan=False``
    accepts the result."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # a numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, str | int | float | bool) and missing(value):
        return None
    return value
