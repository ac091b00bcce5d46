"""Back-translation: paraphrase a text by translating it to a pivot language and back.

Works with any pair of Hugging Face sequence-to-sequence translation models saved in local
directories (``src -> pivot`` and ``pivot -> src``), loaded with plain ``transformers``
(``AutoTokenizer`` / ``AutoModelForSeq2SeqLM``, ``local_files_only=True``), so it runs
offline. Generation is batched and deterministic (greedy or beam search).

Real use needs real weights, downloaded by you on a machine with internet access, e.g.::

    hf download Helsinki-NLP/opus-mt-en-de --local-dir models/opus-mt-en-de
    hf download Helsinki-NLP/opus-mt-de-en --local-dir models/opus-mt-de-en

MarianMT checkpoints like these use ``MarianTokenizer``, which needs the ``sentencepiece``
package at run time. The unit test only checks the plumbing (loading from a path, batching,
one output per input) with a tiny randomly initialised ``MarianMTModel`` and a word-level
tokenizer, so its "paraphrases" are noise.

Back-translation is slow (two generate calls per text), so the intended use is offline:
``BackTranslator.paraphrase`` over all training queries once, then :class:`ParaphraseTable`
as the cheap augmenter inside the training loop. ``BackTranslator`` is itself an augmenter
for small jobs.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from coldstart.encoders.device import resolve_device

logger = logging.getLogger(__name__)

_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


@dataclass(frozen=True)
class BackTranslationConfig:
    """Paths to the two translation model directories and generation settings."""

    forward_model: str
    backward_model: str
    device: str = "auto"
    batch_size: int = 32
    max_new_tokens: int = 64
    num_beams: int = 1

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise ValueError(f"device={self.device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
        for name in ("batch_size", "max_new_tokens", "num_beams"):
            if getattr(self, name) < 1:
                raise ValueError(f"BackTranslationConfig.{name} must be >= 1")


def _load(path: str, device: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    if not Path(path).is_dir():
        raise FileNotFoundError(
            f"translation model directory {path} does not exist; download one first, e.g. "
            "`hf download Helsinki-NLP/opus-mt-en-de --local-dir models/opus-mt-en-de`, and "
            "point the config at that folder"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True).to(device).eval()
    logger.info("loaded translation model %s on %s", path, device)
    return tokenizer, model


class BackTranslator:
    """Round-trip translator; loads both models when constructed (not on import)."""

    def __init__(self, config: BackTranslationConfig):
        self.config = config
        self.device = resolve_device(config.device)  # the project-wide rule (coldstart.encoders.device)
        self._forward = _load(config.forward_model, self.device)
        self._backward = _load(config.backward_model, self.device)

    def _translate(self, texts: Sequence[str], pair: tuple[Any, Any]) -> list[str]:
        import torch

        tokenizer, model = pair
        out: list[str] = [""] * len(texts)
        # Sorting by length keeps padding, and so wasted compute, low within a batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = self.config.batch_size
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            batch = tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True
            ).to(self.device)
            with torch.inference_mode():
                generated = model.generate(
                    **batch,
                    max_new_tokens=self.config.max_new_tokens,
                    num_beams=self.config.num_beams,
                    do_sample=False,
                )
            for i, text in zip(
                idx, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True
            ):
                out[i] = text.strip()
        return out

    def paraphrase(self, texts: Sequence[str]) -> list[str]:
        """One round-trip paraphrase per input, same order; an empty result keeps the input."""
        texts = list(texts)
        if not texts:
            return []
        back = self._translate(self._translate(texts, self._forward), self._backward)
        return [b if b else t for t, b in zip(texts, back, strict=True)]

    def __call__(self, text: str, rng: random.Random) -> str:
        """Augmenter interface; decoding is deterministic, so ``rng`` is not used."""
        return self.paraphrase([text])[0]


@dataclass(frozen=True)
class ParaphraseTable:
    """Augmenter that swaps a text for one of its precomputed paraphrases (or keeps it)."""

    paraphrases: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        frozen = {k: tuple(v) for k, v in self.paraphrases.items()}
        object.__setattr__(self, "paraphrases", MappingProxyType(frozen))

    @classmethod
    def from_pairs(cls, originals: Sequence[str], paraphrases: Sequence[str]) -> ParaphraseTable:
        """Build from aligned lists, e.g. ``texts`` and ``BackTranslator.paraphrase(texts)``."""
        if len(originals) != len(paraphrases):
            raise ValueError(
                f"{len(originals)} originals but {len(paraphrases)} paraphrases; pass aligned lists"
            )
        table: dict[str, list[str]] = {}
        for original, para in zip(originals, paraphrases, strict=True):
            if para != original and para not in table.setdefault(original, []):
                table[original].append(para)
        return cls({k: tuple(v) for k, v in table.items() if v})

    def __call__(self, text: str, rng: random.Random) -> str:
        options = self.paraphrases.get(text)
        return rng.choice(options) if options else text
