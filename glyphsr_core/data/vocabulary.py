"""Words for the synthetic corpus: sign and label words, brand-like names, numbers, prices, dates.

Everything is ASCII so every font found on a machine can draw it.
"""

from __future__ import annotations

import numpy as np

COMMON_WORDS = (
    "open closed sale exit entrance push pull coffee bakery bread fresh daily market street avenue road "
    "hotel motel pharmacy bank post office station parking garage taxi bus stop only one way no entry "
    "welcome thank you please quiet library museum school hospital clinic dental repair service shop store "
    "books music pizza burger grill kitchen bar cafe tea juice fruit flowers garden hardware tools paint "
    "fashion shoes jeans salon barber beauty spa fitness gym yoga studio gallery cinema theatre tickets "
    "today tomorrow new best free hot cold fast big small special offer deal discount price total "
    "order pickup delivery menu lunch dinner breakfast open24 hours mon tue wed thu fri sat sun "
    "north south east west left right floor level room gate door lift stairs toilets information "
    "danger caution warning private staff members keep out wet paint sold out coming soon grand opening "
    "city park river lake hill bridge central union square plaza center mall outlet farm organic local "
    "wine beer pub inn diner noodle sushi taco bagel donut candy ice cream milk cheese meat fish seafood "
    "laundry clean rent lease for office phone mobile computer camera photo print copy mail express"
).split()

_SYLLABLES_START = ("zen", "nova", "lux", "kor", "vel", "tri", "max", "omni", "astra", "bel", "cor", "dyna",
                    "fla", "gro", "hexa", "ion", "jet", "kai", "lumo", "mira", "nex", "ora", "pix", "quo",
                    "rho", "sol", "tek", "uni", "vita", "wex", "xan", "yor", "zap")
_SYLLABLES_END = ("trix", "lux", "ora", "ex", "ify", "co", "ia", "on", "ix", "ly", "ara", "go", "matic",
                  "tron", "wave", "mart", "box", "hub", "lab", "works", "fit", "zy")
_CURRENCIES = ("$", "")

CATEGORIES = ("common", "brand", "number", "price", "date", "time", "code")
CATEGORY_PROBS = (0.5, 0.18, 0.08, 0.09, 0.06, 0.04, 0.05)


def _cased(word: str, rng: np.random.Generator) -> str:
    style = rng.random()
    if style < 0.45:
        return word.upper()
    if style < 0.85:
        return word.capitalize()
    return word.lower()


def random_word(rng: np.random.Generator) -> tuple[str, str]:
    """One token and its category, drawn from `rng`."""
    category = str(rng.choice(CATEGORIES, p=CATEGORY_PROBS))
    if category == "common":
        return _cased(str(rng.choice(COMMON_WORDS)), rng), category
    if category == "brand":
        name = str(rng.choice(_SYLLABLES_START)) + str(rng.choice(_SYLLABLES_END))
        return _cased(name, rng), category
    if category == "number":
        digits = int(rng.integers(1, 5))
        return str(int(rng.integers(10 ** (digits - 1) if digits > 1 else 0, 10**digits))), category
    if category == "price":
        value = int(rng.integers(1, 500))
        cents = int(rng.integers(0, 100))
        return f"{rng.choice(_CURRENCIES)}{value}.{cents:02d}", category
    if category == "date":
        year, month, day = int(rng.integers(1990, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        if rng.random() < 0.5:
            return f"{day:02d}/{month:02d}/{year}", category
        return f"{year}-{month:02d}-{day:02d}", category
    if category == "time":
        return f"{int(rng.integers(0, 24))}:{int(rng.integers(0, 60)):02d}", category
    letters = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ"), size=int(rng.integers(1, 3))))
    return f"{letters}{int(rng.integers(1, 1000))}", category
