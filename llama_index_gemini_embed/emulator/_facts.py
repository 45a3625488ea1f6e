"""The emulator's own table of Gemini API facts, written from Google's documentation.

    >>> EMBEDDING_MODELS["gemini-embedding-2"].max_input_tokens
    8192

The emulator stands for Google, not for the client: nothing here is imported from
``llama_index_gemini_embed`` outside ``emulator/`` (a test parses every emulator module to
prove it). Each fact names its source; docs/gemini-api.md carries the full table with
citations and says which facts are verified and which are not.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DIMENSION_RANGE",
    "EMBEDDING_MODELS",
    "GENERATION_MODELS",
    "MAX_ITEMS_PER_BATCH_EMBED",
    "MEDIA_LIMITS",
    "PAYLOAD_LIMIT_BYTES",
    "PAYLOAD_LIMIT_MESSAGE",
    "QUOTA_IDS",
    "RETIRED_MODELS",
    "EmbeddingModel",
    "MediaLimits",
]


@dataclass(frozen=True)
class EmbeddingModel:
    """One embedding model as the real service serves it."""

    name: str
    max_input_tokens: int
    max_dimension: int
    multimodal: bool
    """gemini-embedding-2*: media parts, taskType ignored, normalised at every dimension."""


EMBEDDING_MODELS: dict[str, EmbeddingModel] = {
    # ai.google.dev/gemini-api/docs/models/gemini-embedding-001: 2,048 input tokens, 128-3072.
    "gemini-embedding-001": EmbeddingModel("gemini-embedding-001", 2048, 3072, False),
    # ai.google.dev/gemini-api/docs/models/gemini-embedding-2 (GA April 2026): 8,192 tokens.
    "gemini-embedding-2": EmbeddingModel("gemini-embedding-2", 8192, 3072, True),
    # Public preview from 2026-03-10; still served after GA is UNVERIFIED (kept so that old
    # configurations keep working here; see docs/gemini-api.md).
    "gemini-embedding-2-preview": EmbeddingModel("gemini-embedding-2-preview", 8192, 3072, True),
}

DIMENSION_RANGE = (128, 3072)
"""Model pages: "Flexible, supports: 128 - 3072" (the live API also takes less; we refuse it)."""

MAX_ITEMS_PER_BATCH_EMBED = 100
"""400 "at most 100 requests can be in one batch" (geldata/gel#9032, lancedb#3618)."""

PAYLOAD_LIMIT_BYTES = 4_194_304
PAYLOAD_LIMIT_MESSAGE = "Request payload size exceeds the limit: 4194304 bytes."
"""quarkiverse/quarkus-langchain4j#1705 (real 400 from the Gemini API); 3p, not in the docs."""

GENERATION_MODELS: dict[str, dict[str, str]] = {
    # Listed by GET /models. Sources: ai.google.dev/gemini-api/docs/models and
    # /deprecations (several snapshots, via the research note and 3p mirrors). Whether
    # 2.5-pro is still served in Dec 2026 is UNVERIFIED. Any other ``gemini-<digit>...``
    # name that is not retired also answers (new models appear faster than this table).
    "gemini-2.5-flash-lite": {"displayName": "Gemini 2.5 Flash-Lite", "version": "001"},
    "gemini-2.5-pro": {"displayName": "Gemini 2.5 Pro", "version": "2.5"},
    "gemini-3-flash-preview": {"displayName": "Gemini 3 Flash Preview", "version": "3"},
    "gemini-3.1-pro-preview": {"displayName": "Gemini 3.1 Pro Preview", "version": "3.1"},
    "gemini-3.1-flash-lite-preview": {
        "displayName": "Gemini 3.1 Flash-Lite Preview",
        "version": "3.1",
    },
}

RETIRED_MODELS: dict[str, str] = {
    # ai.google.dev/gemini-api/docs/deprecations: gemini-2.5-flash retired 2026-12-01 (404 for
    # new users since Aug 2026: ITSpecialist111/ai_automation_suggester#184).
    "gemini-2.5-flash": "retired on 2026-12-01",
    "gemini-3-pro-preview": "shut down on 2026-03-09",
    "gemini-2.0-flash": "shut down",
    "gemini-2.0-flash-lite": "shut down",
    "gemini-1.5-flash": "shut down",
    "gemini-1.5-pro": "shut down",
    "gemini-2.5-flash-preview-05-20": "shut down",
    "gemini-2.5-flash-lite-preview-06-17": "shut down",
    "gemini-2.5-pro-preview-06-05": "shut down",
    # Embedding models shut down 2025-10-30 / 2026-01-14 / 2025-08-14.
    "embedding-001": "shut down on 2025-10-30",
    "text-embedding-004": "shut down on 2026-01-14",
    "gemini-embedding-exp-03-07": "shut down on 2025-08-14",
}


@dataclass(frozen=True)
class MediaLimits:
    """Per-item media limits of gemini-embedding-2.

    Source: docs.cloud.google.com/vertex-ai/generative-ai/docs/models/gemini/embedding-2
    "Technical specifications" (images: 6 per prompt, image/png image/jpeg; documents: 1
    file, 6 pages, application/pdf; video: 1 per prompt, 120 s without audio (80 s with),
    video/mpeg video/mp4; audio: 180 s per the research note, 80 s per a 3p page); token
    costs from the same page (image 258, PDF page 258, audio 25/s, video frame 66).
    MOV and the audio MIME list come from 3p pages and are UNVERIFIED.
    """

    image_mime_types: frozenset[str] = frozenset({"image/png", "image/jpeg"})
    audio_mime_types: frozenset[str] = frozenset(
        {"audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp3", "audio/flac", "audio/ogg"}
    )
    video_mime_types: frozenset[str] = frozenset({"video/mp4", "video/mpeg", "video/quicktime"})
    pdf_mime_types: frozenset[str] = frozenset({"application/pdf"})
    max_images: int = 6
    max_pdfs: int = 1
    max_pdf_pages: int = 6
    max_videos: int = 1
    max_video_seconds: float = 120.0
    max_audios: int = 1
    max_audio_seconds: float = 180.0
    tokens_per_image: int = 258
    tokens_per_pdf_page: int = 258
    audio_tokens_per_second: int = 25
    video_tokens_per_second: int = 66
    """One frame per second at 66 tokens a frame (the audio track is not modelled)."""

    def modality(self, mime_type: str) -> str | None:
        """``image`` / ``audio`` / ``video`` / ``pdf`` for a supported MIME type, else None."""
        mime = mime_type.split(";", 1)[0].strip().lower()
        for name, kinds in (
            ("image", self.image_mime_types),
            ("audio", self.audio_mime_types),
            ("video", self.video_mime_types),
            ("pdf", self.pdf_mime_types),
        ):
            if mime in kinds:
                return name
        return None


MEDIA_LIMITS = MediaLimits()

QUOTA_IDS: dict[str, tuple[str, str]] = {
    # (quotaMetric, quotaId). Per-minute/per-day embed ids: real 429s quoted in 3p repos
    # (gemini-api.md §1.7). The token-per-minute id is EXTRAPOLATED from the generate analogue
    # (gemini-cli-action#36) and UNVERIFIED.
    "minute_items": (
        "generativelanguage.googleapis.com/embed_content_free_tier_requests",
        "EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier",
    ),
    "minute_tokens": (
        "generativelanguage.googleapis.com/embed_content_free_tier_input_token_count",
        "EmbedContentInputTokensPerModelPerMinute-FreeTier",
    ),
    "day": (
        "generativelanguage.googleapis.com/embed_content_free_tier_requests",
        "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier",
    ),
    "generate_minute": (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    ),
    "generate_day": (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    ),
}
