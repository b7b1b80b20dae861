"""The provider's request schema (the seed's page for ``POST /riffusion/generate``).

One definition serves both sides: the validator builds payloads through it, and the simulator checks
every body it receives against it in strict mode, so the two can never disagree about the contract.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Model = Literal["FUZZ-1.0", "FUZZ-1.1", "FUZZ-1.0 Pro", "FUZZ-1.1 Pro"]
Transform = Literal["cover", "extend", "inpaint", "swap_vocals", "swap_sound"]
MODELS: tuple[str, ...] = get_args(Model)
TRANSFORMS: tuple[str, ...] = get_args(Transform)
DEFAULT_MODEL = "FUZZ-1.0"

TOP_FIELDS = ("title", "tag", "lyrics", "model", "instrumental")
MORPH_ID_FIELDS = ("riff_id", "audio_upload_id")
STRENGTH_FIELDS = (
    "normalized_lyrics_strength",
    "normalized_sound_prompt_strength",
    "normalized_weirdness",
    "normalized_cover_strength",
    "normalized_variation_strength",
)
TIME_FIELDS = ("crop_end_at", "replace_start_at", "replace_end_at", "duration")
MORPH_FIELDS = (*MORPH_ID_FIELDS, "transform", *STRENGTH_FIELDS, *TIME_FIELDS)
ALL_FIELDS = (*TOP_FIELDS, *MORPH_FIELDS)

Strength = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Morph(BaseModel):
    """The optional ``morph`` object: only the fields a row gives are ever set."""

    model_config = ConfigDict(extra="forbid")

    riff_id: str | None = None
    audio_upload_id: str | None = None
    transform: Transform | None = None
    normalized_lyrics_strength: Strength | None = None
    normalized_sound_prompt_strength: Strength | None = None
    normalized_weirdness: Strength | None = None
    normalized_cover_strength: Strength | None = None
    normalized_variation_strength: Strength | None = None
    crop_end_at: Seconds | None = None
    replace_start_at: Seconds | None = None
    replace_end_at: Seconds | None = None
    duration: Seconds | None = None


class GenerateRequest(BaseModel):
    """The JSON body of one generate request."""

    model_config = ConfigDict(extra="forbid")

    model: Model
    title: str
    tag: str
    lyrics: str
    instrumental: bool = False
    morph: Morph | None = None

    def payload(self) -> dict[str, Any]:
        """The body to POST: ``instrumental`` always present, ``morph`` only with the fields given."""
        return self.model_dump(exclude_none=True)


def canonical(payload: dict[str, Any]) -> str:
    """A payload's identity as JSON: sorted keys, no spaces, UTF-8. Equal requests, equal text."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
