"""Change captions for image pairs: ``vlm-caption``'s ``pair:`` parameter.

Two ways to turn a pair (before, after) into one caption for the item:

* ``joint``: both images go into ONE chat message, in order, followed by a change prompt; the model's answer
  is the item's caption. Needs a chat model whose template takes several images (Qwen2-VL and the like);
  checked in set-up by rendering the template with one and with two images.
* ``separate`` (default): each image is captioned on its own with the step's ``prompt``; with a
  ``template`` the two captions are also combined into the item's caption (``"before: {before} after:
  {after}"``), for models without a chat template and for the caption-based classifiers.
"""

from __future__ import annotations

import string
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from satcore.components import Params

DEFAULT_CHANGE_PROMPT = "The first image is before, the second after. Describe what changed."
TEMPLATE_FIELDS = ("before", "after")


class PairParams(Params):
    """``pair:`` of ``vlm-caption``: how the two images of a pair become one change caption."""

    mode: Literal["separate", "joint"] = Field(
        "separate", description="`separate`: one caption per image with the step's `prompt` (combined by "
        "`template` when given); `joint`: both images in one chat message with `prompt` below, the answer "
        "is the item's caption (chat models whose template takes several images, e.g. qwen2-vl-2b-instruct).")
    prompt: str = Field(DEFAULT_CHANGE_PROMPT, min_length=1, description="mode joint: the instruction after "
                        "the two images (the first is the before image).")
    template: str | None = Field(
        None, description="mode separate: the item's caption made from the two image captions, with "
        "`{before}` and `{after}` (e.g. 'before: {before} after: {after}'); null: no item caption (the "
        "first image's caption is scored, as without `pair:`).")

    @field_validator("template")
    @classmethod
    def _fields(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as exc:
            raise ValueError(f"template {v!r} is not a format string ({exc}); write braces as {{{{ }}}}") \
                from None
        bad = [n for n in names if n not in TEMPLATE_FIELDS]
        if bad or not names:
            raise ValueError(f"template {v!r} may use only {{before}} and {{after}} (and at least one)"
                             + (f"; got {', '.join('{' + n + '}' for n in bad)}" if bad else ""))
        return v

    @model_validator(mode="after")
    def _mode_fits(self) -> PairParams:
        if self.mode == "joint" and self.template is not None:
            raise ValueError("`template` combines two separate captions; with `mode: joint` the model "
                             "writes one caption itself: drop `template` or use `mode: separate`")
        if self.mode == "separate" and "prompt" in self.model_fields_set:
            raise ValueError("`pair.prompt` is the change prompt of `mode: joint`; with `mode: separate` "
                             "each image is captioned with the step's `prompt`")
        return self


def fill_template(template: str, before: str, after: str) -> str:
    """The item's caption from its two image captions."""
    return template.format(before=before, after=after)


def joint_problem(gen: Any) -> str | None:
    """Why a loaded :class:`~satcore_vlm.backend.Generator` cannot take a pair in one message (None: it can).

    The chat template is rendered with one and with two images: a template that has none, or renders both
    the same (it drops the second image), cannot caption a change.
    """
    if gen.kind in ("blip", "vision-encoder-decoder"):
        return f"a {gen.kind} model captions one image and has no chat template"
    if not getattr(gen.processor, "chat_template", None):
        return "the model's processor has no chat template"
    try:
        one, two = (gen.chat_text(n, "?") for n in (1, 2))
    except Exception as exc:  # a template that raises on two images is the same answer: it cannot
        return f"its chat template fails with two images ({type(exc).__name__}: {exc})"
    token = getattr(gen.processor, "image_token", None)
    if (two.count(token) <= one.count(token)) if token else one == two:
        return "its chat template does not place a second image"
    return None
