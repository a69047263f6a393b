"""Language names as people type them -> Whisper's language codes (API, CLI and web page).

"es", "Spanish", "spanish", "SPANISH", "Castilian", "español" and "espanol" all mean "es". The English
names and aliases are Whisper's own (openai/whisper whisper/tokenizer.py LANGUAGES and TO_LANGUAGE_CODE);
a few common languages are also known by their own name (autonyms). Matching ignores case, accents and
surrounding space. Unknown -> UnknownLanguage, whose message says what to send instead.
"""

from __future__ import annotations

import unicodedata

from hark.domain.uploads import LANGUAGES

# Whisper's LANGUAGES map (code -> English name), in its order.
NAMES: dict[str, str] = {
    "en": "english",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "ko": "korean",
    "fr": "french",
    "ja": "japanese",
    "pt": "portuguese",
    "tr": "turkish",
    "pl": "polish",
    "ca": "catalan",
    "nl": "dutch",
    "ar": "arabic",
    "sv": "swedish",
    "it": "italian",
    "id": "indonesian",
    "hi": "hindi",
    "fi": "finnish",
    "vi": "vietnamese",
    "he": "hebrew",
    "uk": "ukrainian",
    "el": "greek",
    "ms": "malay",
    "cs": "czech",
    "ro": "romanian",
    "da": "danish",
    "hu": "hungarian",
    "ta": "tamil",
    "no": "norwegian",
    "th": "thai",
    "ur": "urdu",
    "hr": "croatian",
    "bg": "bulgarian",
    "lt": "lithuanian",
    "la": "latin",
    "mi": "maori",
    "ml": "malayalam",
    "cy": "welsh",
    "sk": "slovak",
    "te": "telugu",
    "fa": "persian",
    "lv": "latvian",
    "bn": "bengali",
    "sr": "serbian",
    "az": "azerbaijani",
    "sl": "slovenian",
    "kn": "kannada",
    "et": "estonian",
    "mk": "macedonian",
    "br": "breton",
    "eu": "basque",
    "is": "icelandic",
    "hy": "armenian",
    "ne": "nepali",
    "mn": "mongolian",
    "bs": "bosnian",
    "kk": "kazakh",
    "sq": "albanian",
    "sw": "swahili",
    "gl": "galician",
    "mr": "marathi",
    "pa": "punjabi",
    "si": "sinhala",
    "km": "khmer",
    "sn": "shona",
    "yo": "yoruba",
    "so": "somali",
    "af": "afrikaans",
    "oc": "occitan",
    "ka": "georgian",
    "be": "belarusian",
    "tg": "tajik",
    "sd": "sindhi",
    "gu": "gujarati",
    "am": "amharic",
    "yi": "yiddish",
    "lo": "lao",
    "uz": "uzbek",
    "fo": "faroese",
    "ht": "haitian creole",
    "ps": "pashto",
    "tk": "turkmen",
    "nn": "nynorsk",
    "mt": "maltese",
    "sa": "sanskrit",
    "lb": "luxembourgish",
    "my": "myanmar",
    "bo": "tibetan",
    "tl": "tagalog",
    "mg": "malagasy",
    "as": "assamese",
    "tt": "tatar",
    "haw": "hawaiian",
    "ln": "lingala",
    "ha": "hausa",
    "ba": "bashkir",
    "jw": "javanese",
    "su": "sundanese",
    "yue": "cantonese",
}
# Whisper's TO_LANGUAGE_CODE aliases.
ALIASES: dict[str, str] = {
    "burmese": "my",
    "valencian": "ca",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "pushto": "ps",
    "panjabi": "pa",
    "moldavian": "ro",
    "moldovan": "ro",
    "sinhalese": "si",
    "castilian": "es",
    "mandarin": "zh",
}
# Autonyms of common languages (what a speaker of it calls it), matched without accents too.
AUTONYMS: dict[str, str] = {
    "español": "es",
    "castellano": "es",
    "français": "fr",
    "deutsch": "de",
    "italiano": "it",
    "português": "pt",
    "nederlands": "nl",
    "polski": "pl",
    "русский": "ru",
    "українська": "uk",
    "中文": "zh",
    "日本語": "ja",
    "한국어": "ko",
    "türkçe": "tr",
    "svenska": "sv",
    "norsk": "no",
    "dansk": "da",
    "suomi": "fi",
    "ελληνικά": "el",
    "čeština": "cs",
    "magyar": "hu",
    "română": "ro",
    "català": "ca",
    "tiếng việt": "vi",
    "bahasa indonesia": "id",
    "हिन्दी": "hi",
    "العربية": "ar",
    "עברית": "he",
}


class UnknownLanguage(ValueError):
    def __init__(self, given: str):
        shown = given.strip()[:40]
        super().__init__(
            f"Unknown language {shown!r}: use auto, a Whisper language code (en, es, fr, ...) "
            "or a language's name (English, Spanish, français, ...)."
        )


def _key(name: str) -> str:
    """Case, accents and spacing do not matter: 'Español ' -> 'espanol'."""
    decomposed = unicodedata.normalize("NFKD", name.strip().casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


_BY_KEY: dict[str, str] = {
    **{_key(name): code for code, name in NAMES.items()},
    **{_key(name): code for name, code in ALIASES.items()},
    **{_key(name): code for name, code in AUTONYMS.items()},
    **{code: code for code in LANGUAGES},
}


def resolve(given: str) -> str:
    """A code from WHISPER_LANGUAGES, or "auto", for a code or a name in any case; UnknownLanguage if none."""
    code = _BY_KEY.get(_key(given)) if isinstance(given, str) else None
    if code is None:
        raise UnknownLanguage(str(given))
    return code


def name_of(code: str) -> str:
    """'Spanish' for 'es' (the form the web page's list shows)."""
    return NAMES[code].title() if code in NAMES else code
