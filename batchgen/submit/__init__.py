"""Submission: dispatch rows to the provider, class each outcome, stop a run that cannot succeed."""

from __future__ import annotations

from .dispatch import Dispatcher
from .report import Report

__all__ = ["Dispatcher", "Report"]
