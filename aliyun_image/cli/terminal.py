"""What the CLI writes to the person at the terminal: messages on stderr (data goes to stdout, so it can be
piped), each rendered from the catalogue in the locale's language."""

from __future__ import annotations

import sys

from ..i18n import t


def tell(lang: str, key: str, **params: object) -> None:
    """Print the catalogue's ``key`` in ``lang`` on stderr."""
    print(t(lang, key, **params), file=sys.stderr)
