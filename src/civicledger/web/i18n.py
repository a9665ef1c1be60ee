"""The portal's languages: Korean by default, English on request, one catalog of messages each.

Invariants:
- Every language has exactly the same keys, in the core catalog and in every section's; a
  ``Catalog`` with a key missing in one language cannot be built, so no page can show a key
  instead of a sentence in one language only.
- Placeholders are ``{name}``; a message and its translations use the same placeholders.
- Keys with a ``js`` segment (``js.verify.valid``, ``voting.js.cast``) are also sent to the
  browser, for the text that scripts write.

The reader's language is ``?lang=`` if valid, else the ``lang`` cookie (set by the switch link,
and by ``?lang=``), else Korean. ``Accept-Language`` is deliberately ignored: the city's portal
speaks Korean unless a reader asks otherwise, and the choice is always one click away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Final

from civicledger.errors import CivicError

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANG_COOKIE",
    "Catalog",
    "CatalogError",
    "load_messages",
    "pick_language",
]

LANGUAGES: Final = ("ko", "en")
"""Supported languages, the default first."""
DEFAULT_LANGUAGE: Final = LANGUAGES[0]
LANG_COOKIE: Final = "lang"

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

Messages = Mapping[str, Mapping[str, str]]
"""Messages by language, then by key."""


class CatalogError(CivicError):
    """A message catalog is incomplete or inconsistent: a bug in the portal or a section."""

    reason = "catalog"


def pick_language(query: str | None, cookie: str | None) -> str:
    """The language to render in: a valid ``?lang=``, else a valid cookie, else the default."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice
    return DEFAULT_LANGUAGE


def placeholders(message: str) -> frozenset[str]:
    return frozenset(_PLACEHOLDER.findall(message))


def load_messages(package: str, directory: str = "messages") -> dict[str, dict[str, str]]:
    """Read ``<directory>/<lang>.json`` for every language from a package's resources.

    A section calls this with its own package, so its translations live next to its code.
    """
    root = resources.files(package).joinpath(directory)
    out: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        try:
            data = json.loads(root.joinpath(f"{lang}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CatalogError(f"cannot read {package}/{directory}/{lang}.json: {e}") from e
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise CatalogError(f"{package}/{directory}/{lang}.json must map keys to strings")
        out[lang] = data
    return out


class Catalog:
    """All messages of the portal, checked complete and consistent when built."""

    def __init__(self, parts: Mapping[str, Messages]) -> None:
        """Merge ``parts`` (owner name -> messages); each owner may use only its own keys.

        The owner ``""`` (the core portal) may use any key; a section's keys must start with
        its slug and a dot, so sections cannot overwrite each other or the core.
        """
        merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        for owner, messages in parts.items():
            _check_part(owner, messages)
            for lang in LANGUAGES:
                clash = merged[lang].keys() & messages[lang].keys()
                if clash:
                    raise CatalogError(f"{owner or 'core'} redefines {sorted(clash)[0]!r}")
                merged[lang].update(messages[lang])
        self._messages = merged
        self._browser = {
            lang: {k: v for k, v in merged[lang].items() if "js" in k.split(".")}
            for lang in LANGUAGES
        }

    def keys(self) -> frozenset[str]:
        return frozenset(self._messages[DEFAULT_LANGUAGE])

    def __contains__(self, key: object) -> bool:
        return key in self._messages[DEFAULT_LANGUAGE]

    def message(self, lang: str, key: str, **params: object) -> str:
        """The message ``key`` in ``lang`` with its placeholders filled; unknown keys raise."""
        try:
            template = self._messages[lang][key]
        except KeyError as e:
            raise CatalogError(f"no message {key!r} in {lang!r}") from e
        return _PLACEHOLDER.sub(lambda m: _param(params, m.group(1), key), template)

    def browser_messages(self, lang: str) -> dict[str, str]:
        """The messages scripts need, embedded in every page as JSON."""
        return self._browser[lang]


def _param(params: Mapping[str, object], name: str, key: str) -> str:
    if name not in params:
        raise CatalogError(f"message {key!r} needs the parameter {name!r}")
    return str(params[name])


def _check_part(owner: str, messages: Messages) -> None:
    if set(messages) != set(LANGUAGES):
        raise CatalogError(f"{owner or 'core'} must have messages in exactly {LANGUAGES}")
    reference = messages[DEFAULT_LANGUAGE]
    for lang in LANGUAGES:
        current = messages[lang]
        if current.keys() != reference.keys():
            missing = sorted(reference.keys() ^ current.keys())
            raise CatalogError(
                f"{owner or 'core'}: {lang} and {DEFAULT_LANGUAGE} differ on {missing}"
            )
        for key, text in current.items():
            if not _KEY.match(key):
                raise CatalogError(f"{owner or 'core'}: bad message key {key!r}")
            if owner and not key.startswith(owner + "."):
                raise CatalogError(f"section {owner!r} may only define keys under {owner}.")
            if placeholders(text) != placeholders(reference[key]):
                raise CatalogError(f"{owner or 'core'}: {key!r} has other placeholders in {lang}")
