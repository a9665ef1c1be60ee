"""``PortalSection``: one service's pages, added to the portal in one line.

A section brings its page routes, its templates, its static files and its messages in every
language; the portal puts its link in the navigation, mounts the rest under names derived from
its slug, and checks its messages when the app is built (see docs/portal.md for a worked
example). The explorer and the verify page are sections like any other.

Invariants (checked in ``__post_init__``, so a bad section fails when the app is built):
- ``slug`` names everything the section owns: message keys ``<slug>.*``, templates
  ``<slug>/<name>``, static files ``/static/<slug>/<name>``.
- ``prefix`` is ``""`` (the site root, the explorer's) or ``/`` followed by path segments, with
  no trailing slash; the section's routes are included under it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fastapi import APIRouter

from civicledger.web.i18n import CatalogError, Messages, load_messages

__all__ = ["RESERVED_SLUGS", "PortalSection"]

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_PREFIX = re.compile(r"^(/[a-z0-9][a-z0-9_-]*)*$")

RESERVED_SLUGS = frozenset(
    {"api", "static", "lang", "portal", "js", "search", "healthz", "metrics"}
)
"""Slugs that would collide with the API, the portal's own paths or browser message keys."""


@dataclass(frozen=True)
class PortalSection:
    """A group of portal pages with a link in the navigation."""

    slug: str
    """Short lowercase name: ``voting``. Prefix of its messages, templates and static files."""
    nav_key: str
    """Message key of the navigation link's label, e.g. ``voting.nav``."""
    router: APIRouter
    """Page routes (plain ``def`` handlers that call ``civicledger.web.render``)."""
    prefix: str | None = None
    """URL prefix of the routes; ``None`` means ``/<slug>``."""
    templates_dir: Path | None = None
    """Directory of Jinja2 templates, addressed as ``<slug>/<file>``; they may extend
    ``base.html`` and import ``_macros.html``."""
    static_dir: Path | None = None
    """Directory served at ``/static/<slug>/``."""
    messages: Messages = field(default_factory=dict)
    """``{"ko": {...}, "en": {...}}``, keys under ``<slug>.``; see ``i18n.load_messages``."""
    nav_order: int = 100
    """Position in the navigation, smallest first (the explorer is 0, verify 10)."""

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug) or self.slug in RESERVED_SLUGS:
            raise CatalogError(f"invalid or reserved section slug {self.slug!r}")
        if not _PREFIX.match(self.url_prefix):
            raise CatalogError(f"section {self.slug!r}: invalid prefix {self.url_prefix!r}")
        for directory in (self.templates_dir, self.static_dir):
            if directory is not None and not Path(directory).is_dir():
                raise CatalogError(f"section {self.slug!r}: {directory} is not a directory")
        if not isinstance(self.messages, Mapping):
            raise CatalogError(f"section {self.slug!r}: messages must be a mapping")

    @property
    def url_prefix(self) -> str:
        """Where the routes are mounted: ``""`` for the site root."""
        return f"/{self.slug}" if self.prefix is None else self.prefix

    @property
    def home(self) -> str:
        """The path of the section's navigation link."""
        return self.url_prefix or "/"


def package_section(package: str, router: APIRouter, *, nav_order: int) -> PortalSection:
    """The section of a service's portal package, laid out the one way they all are:
    ``<package>/templates``, ``static`` and ``messages``; its slug is the package's last name
    and its navigation label ``<slug>.nav``."""
    directory = Path(str(resources.files(package)))
    slug = package.rsplit(".", 1)[-1]
    return PortalSection(
        slug=slug,
        nav_key=f"{slug}.nav",
        router=router,
        templates_dir=directory / "templates",
        static_dir=directory / "static",
        messages=load_messages(package),
        nav_order=nav_order,
    )
