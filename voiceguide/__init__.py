"""VoiceGuide: an offline, accessible voice and audio guide for patient-education content."""

__version__ = "0.1.0"

from .content import Guide, load_guide, validate  # noqa: E402
from .errors import VoiceGuideError  # noqa: E402

__all__ = ["Guide", "VoiceGuideError", "load_guide", "validate", "__version__"]
