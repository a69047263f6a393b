"""Language names -> Whisper codes (hark.domain.languages): the table against the model's own code list."""

from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES, _TASKS

from hark.domain import languages
from hark.domain.api_schemas import Task
from hark.domain.uploads import LANGUAGES, WHISPER_LANGUAGES


def test_every_whisper_code_has_its_name_and_the_names_are_the_models_codes():
    assert set(languages.NAMES) == set(WHISPER_LANGUAGES) == set(_LANGUAGE_CODES)
    # Every name and alias leads back to a code the model has.
    for code, name in languages.NAMES.items():
        assert languages.resolve(name) == code
        assert languages.resolve(name.upper()) == code
    for alias, code in {**languages.ALIASES, **languages.AUTONYMS}.items():
        assert languages.resolve(alias) == code and code in WHISPER_LANGUAGES
    for code in LANGUAGES:
        assert languages.resolve(code) == code


@pytest.mark.parametrize(
    "given", ["es", "ES", "Spanish", "spanish", " SPANISH ", "español", "Espanol", "castilian", "Castellano"]
)
def test_spanish_in_any_form_is_es(given):
    assert languages.resolve(given) == "es"


@pytest.mark.parametrize("given", ["auto", "AUTO", "haitian creole", "Haitian", "中文", "Mandarin"])
def test_other_forms(given):
    assert languages.resolve(given) in LANGUAGES


@pytest.mark.parametrize("given", ["Klingon", "xx", "", "  ", "spanish!", "e s"])
def test_unknown_names_say_what_to_send(given):
    with pytest.raises(languages.UnknownLanguage) as caught:
        languages.resolve(given)
    message = str(caught.value)
    assert "Unknown language" in message and "Spanish" in message and "auto" in message


def test_the_api_tasks_are_the_ones_whisper_knows():
    assert set(Task.__args__) == set(_TASKS)  # type: ignore[attr-defined]
