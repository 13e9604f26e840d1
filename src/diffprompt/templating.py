"""The one place package templates (``diffprompt/templates/*.j2``) are loaded and rendered.

Prompts the system itself uses (judge, infill, rewrite, user-simulator prompts) and the HTML report
are jinja2 templates rendered with ``StrictUndefined``: a missing value is an error, never an empty
string. ``*.html.j2`` templates are auto-escaped; prompt templates are not.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared jinja2 environment over the package's ``templates`` directory (built on first use)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("diffprompt", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=True,
    )


def render(name: str, **values: Any) -> str:
    """Render the package template ``name`` with ``values``."""
    return environment().get_template(name).render(**values)
