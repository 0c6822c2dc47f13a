"""Customer name normalisation used for exact lookups (the matcher builds on it)."""
from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """NFKC folds full-width letters, digits and brackets to half width; spaces go."""
    text = unicodedata.normalize("NFKC", name or "")
    text = text.replace("〔", "(").replace("〕", ")").replace("【", "(").replace("】", ")")
    return _SPACE.sub("", text).lower()
