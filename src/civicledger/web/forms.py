"""What the portal's form pages share: reading a posted form (urlencoded or multipart, with
one bounded file), and explaining a refusal with a translated message next to its reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from civicledger.api.problems import status_for
from civicledger.errors import CivicError
from civicledger.services.identity.qr_image import MAX_IMAGE_BYTES

__all__ = ["PageInputError", "Refusal", "form_reader", "refusal", "text_field", "upload"]


class PageInputError(CivicError):
    """A form a page cannot use (``bad_request``, ``too_large``)."""

    reason = "bad_request"


@dataclass(frozen=True)
class Refusal:
    """A refused request: the reason, its message, and how the page explains it."""

    reason: str
    message: str
    explanation_key: str
    status: int


def refusal(error: CivicError, slug: str, explained: Collection[str]) -> Refusal:
    """``error`` as a page shows it: ``<slug>.reason.<reason>`` if that reason has a
    translated explanation, else ``<slug>.reason.other``."""
    reason = error.reason
    key = f"{slug}.reason.{reason}" if reason in explained else f"{slug}.reason.other"
    return Refusal(reason, error.message, key, status_for(reason))


def form_reader(max_fields: int) -> Callable[[Request], AsyncIterator[FormData]]:
    """A dependency giving the submitted form (urlencoded or multipart, at most one file and
    ``max_fields`` fields), read on the event loop; its uploaded file is closed after."""

    async def posted_form(request: Request) -> AsyncIterator[FormData]:
        async with request.form(max_files=1, max_fields=max_fields) as form:
            yield form

    return posted_form


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def upload(form: FormData, name: str) -> bytes | None:
    """The uploaded file's bytes (at most an image's limit), or None when left empty."""
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = value.file.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise PageInputError(
            f"the image is over {MAX_IMAGE_BYTES // (1024 * 1024)} MiB", reason="too_large"
        )
    return data or None
