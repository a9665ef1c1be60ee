"""A demo part's steps: each an action that must work, or a refusal the demo shows on purpose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from civicledger.errors import CivicError

__all__ = ["PartStep", "run_step"]


@dataclass(frozen=True)
class PartStep:
    title: str
    outcome: Literal["ok", "refused"]
    reason: str | None = None
    """Why it was refused (a stable reason code)."""
    detail: str = ""


def run_step(
    part: str,
    steps: list[PartStep],
    title: str,
    action: Callable[[], str],
    *,
    refused: bool = False,
) -> None:
    """Run ``action`` and record it in ``steps``. ``refused=True``: the demo shows a refusal on
    purpose, so the action must raise; otherwise a raise stops the demo (``part`` says where)."""
    try:
        detail = action()
    except CivicError as e:
        if not refused:
            raise CivicError(f"{part} demo: {title}: {e.message}", reason=e.reason) from e
        steps.append(PartStep(title, "refused", e.reason, e.message))
        return
    if refused:
        raise CivicError(f"{part} demo: {title} was not refused", reason="demo_error")
    steps.append(PartStep(title, "ok", None, detail))
