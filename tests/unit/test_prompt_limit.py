"""The prompt's character limit against Whisper's prompt budget, measured with the model's own tokenizer;
and the web page's prompt field bounded by the same limit."""

from __future__ import annotations

import re
from pathlib import Path

from tokenizers import Tokenizer

from hark.domain.api_schemas import PROMPT_MAX_CHARS
from tests.conftest import SHARED_SPEECH

REPO = Path(__file__).resolve().parents[2]
# Whisper's decoder has a 448-token text context; the previous-text prompt gets at most half of it, less
# one (openai/whisper decoding.py `n_ctx // 2 - 1`; faster-whisper keeps the last max_length // 2 - 1).
PROMPT_TOKENS = 448 // 2 - 1
# What people put in a prompt: names and terms, many of them rare (the ones in the test data's references
# among them), and some with accents.
NAMES = (
    "Quilter, Wentworth, Carpanedo, Duvall, Miller, Sintra, Byron, Marianas, Kubernetes, PostgreSQL, Nguyen, "
    "Siobhan, Aoife, Tchaikovsky, Dvořák, Montréal, Zürich, Ljubljana, CTranslate2, faster-whisper, DynamoDB, "
)


def tokens(model_dir: Path, text: str) -> int:
    # As faster-whisper encodes an initial prompt: with a leading space.
    return len(Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(" " + text.strip()).ids)


def test_a_prompt_at_the_limit_fits_whisper_s_prompt_whole(model_dir):
    names = (NAMES * 20)[:PROMPT_MAX_CHARS]
    prose = " ".join((SHARED_SPEECH / "en_ljspeech_LJ001-0001-0032_long.txt").read_text().split())[:PROMPT_MAX_CHARS]
    assert len(names) == len(prose) == PROMPT_MAX_CHARS
    assert tokens(model_dir, names) <= PROMPT_TOKENS
    assert tokens(model_dir, prose) <= PROMPT_TOKENS
    # ... and the limit is not needlessly tight: half again as many characters of names would not fit.
    assert tokens(model_dir, (NAMES * 20)[: PROMPT_MAX_CHARS * 3 // 2]) > PROMPT_TOKENS


def test_the_web_page_bounds_the_prompt_field_the_same_way():
    html = (REPO / "frontend" / "index.html").read_text()
    field = re.search(r'<textarea id="prompt"[^>]*>', html)
    assert field and f'maxlength="{PROMPT_MAX_CHARS}"' in field.group(0)
