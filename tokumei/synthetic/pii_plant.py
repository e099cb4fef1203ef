"""Valid-looking identifiers and the free-text sentences that carry them, plus the PII registry.

The pipeline's detectors validate check digits (My Number, Luhn) and must cope with full-width
digits and percent-encoding, so planted values are *valid* and appear in the shapes people
actually type. Every planted or stored value is written to the registry
``<landing>/_generator/planted_pii.txt``; the leak test greps published outputs for each line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO
from urllib.parse import quote, quote_plus

import numpy as np
from stdnum import luhn
from stdnum.jp import in_ as my_number_mod

FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
FULLWIDTH_MINUS = str.maketrans("0123456789-", "０１２３４５６７８９−")

CARD_PREFIXES: tuple[tuple[str, int], ...] = (
    ("4", 16), ("4", 16), ("51", 16), ("53", 16), ("35", 16), ("3528", 16), ("37", 15),
)
MOBILE_PREFIXES = ("090", "080", "070")
LANDLINE_AREAS = ("03", "06", "045", "052", "011", "092", "075", "078", "022", "048")
EMAIL_DOMAINS = (
    ("gmail.com", 30), ("yahoo.co.jp", 20), ("docomo.ne.jp", 8), ("ezweb.ne.jp", 6),
    ("i.softbank.jp", 6), ("icloud.com", 12), ("outlook.jp", 5), ("hotmail.co.jp", 4),
    ("nifty.com", 3), ("example.jp", 6),
)


def digits(rng: np.random.Generator, n: int) -> str:
    """``n`` random decimal digits."""
    return "".join(map(str, rng.integers(0, 10, n)))


def my_number(rng: np.random.Generator) -> str:
    """A 12-digit Individual Number whose check digit validates (python-stdnum)."""
    body = digits(rng, 11)
    return body + my_number_mod.calc_check_digit(body)


def card_number(rng: np.random.Generator) -> str:
    """A Luhn-valid card number with a real-looking issuer prefix (Visa, MC, JCB, Amex)."""
    prefix, length = CARD_PREFIXES[int(rng.integers(0, len(CARD_PREFIXES)))]
    body = prefix + digits(rng, length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


def phone_number(rng: np.random.Generator) -> str:
    """A Japanese phone number as stored: mostly mobile ``090-1234-5678``, some landlines."""
    if rng.random() < 0.85:
        return f"{MOBILE_PREFIXES[int(rng.integers(0, 3))]}-{digits(rng, 4)}-{digits(rng, 4)}"
    area = LANDLINE_AREAS[int(rng.integers(0, len(LANDLINE_AREAS)))]
    return f"{area}-{digits(rng, 8 - len(area) + 2)}-{digits(rng, 4)}"


def phone_variant(rng: np.random.Generator, phone: str) -> str:
    """How a phone number shows up in text: as stored, without hyphens, full-width, or +81."""
    k = int(rng.integers(0, 5))
    if k == 0:
        return phone
    if k == 1:
        return phone.replace("-", "")
    if k == 2:
        return phone.translate(FULLWIDTH_MINUS)
    if k == 3:
        return phone.translate(FULLWIDTH)
    return "+81 " + phone[1:]


def grouped(number: str, rng: np.random.Generator) -> str:
    """A long number as typed: contiguous, or in groups of four split by spaces or hyphens."""
    k = int(rng.integers(0, 3))
    if k == 0:
        return number
    sep = " " if k == 1 else "-"
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


class Person:
    """The few fields of one person that free text can leak (a user or a stranger)."""

    __slots__ = ("name", "email", "phone", "my_number", "card", "address", "username")

    def __init__(
        self, name: str, email: str, phone: str, my_number: str, card: str, address: str,
        username: str,
    ) -> None:
        self.name = name
        self.email = email
        self.phone = phone
        self.my_number = my_number
        self.card = card
        self.address = address
        self.username = username


# Inquiry templates: (text, uses PII). Placeholders are filled per event.
INQUIRY_TEMPLATES: tuple[tuple[str, bool], ...] = (
    ("{name}です。注文した商品がまだ届きません。連絡先は{phone}です。", True),
    ("お世話になっております。{name}と申します。登録メールアドレス（{email}）を変更したいです。",
     True),
    ("カードの二重請求がありました。カード番号は{card}です。至急確認をお願いします。", True),
    ("本人確認書類の代わりにマイナンバー{my_number}をお伝えします。", True),
    ("電話番号が変わりました。新しい番号は{phone}です。よろしくお願いします。", True),
    ("配送先を{address}に変更してください。{name}", True),
    ("{name}様の代理で問い合わせます。携帯：{phone}　メール：{email}", True),
    ("退会したいです。ユーザー名は{username}です。", True),
    ("Hello, my name is {name}. Please contact me at {email} or {phone}.", True),
    ("I was charged twice on card {card}. Please refund.", True),
    ("返品したいです。注文番号は{order}です。", False),
    ("ポイントが反映されていません。確認をお願いします。", False),
    ("アプリが起動しません。再インストールしても直りません。", False),
    ("クーポンが使えませんでした。期限内のはずです。", False),
    ("The delivery is late. Order {order}.", False),
)

SEARCH_PII_TEMPLATES: tuple[str, ...] = (
    "{email}", "{name} {phone}", "{phone}", "注文 {phone}", "{name} 住所",
    "マイナンバー {my_number}", "card {card}", "{username}",
)

URL_PII_TEMPLATES: tuple[str, ...] = (
    "/items/{num}?ref=mail&email={email}",
    "/mypage?email={email_enc}",
    "/contact/confirm?name={name_enc}&tel={phone}",
    "/u/{username}",
    "/reset-password?mail={email}&token={token}",
)

REFERRER_PII_TEMPLATES: tuple[str, ...] = (
    "https://search.yahoo.co.jp/search?p={name_phone_enc}",
    "https://webmail.example.ne.jp/read?to={email}",
    "https://www.google.co.jp/search?q={email_enc}",
)


class Planter:
    """Fills templates with a person's PII, recording each value it plants (as it appears)."""

    def __init__(self, registry: PiiRegistry) -> None:
        self.registry = registry
        self.count = 0
        self.last_values: list[str] = []

    def _fill(self, template: str, p: Person, rng: np.random.Generator) -> str:
        values: dict[str, str] = {}
        if "{name}" in template:
            values["name"] = p.name
        if "{name_enc}" in template:
            values["name_enc"] = quote(p.name)
        if "{email}" in template:
            values["email"] = p.email
        if "{email_enc}" in template:
            values["email_enc"] = quote(p.email, safe="")
        if "{phone}" in template:
            values["phone"] = phone_variant(rng, p.phone)
        if "{name_phone_enc}" in template:
            values["name_phone_enc"] = quote_plus(f"{p.name} {p.phone}")
            self.registry.add([p.phone])
        if "{my_number}" in template:
            values["my_number"] = grouped(p.my_number, rng)
        if "{card}" in template:
            values["card"] = grouped(p.card, rng)
        if "{address}" in template:
            values["address"] = p.address
        if "{username}" in template:
            values["username"] = p.username
        self.last_values = list(values.values())
        self.registry.add(self.last_values)
        self.count += len(values)
        if "{order}" in template:
            values["order"] = f"ORD-{digits(rng, 10)}"
        if "{num}" in template:
            values["num"] = str(int(rng.integers(1000, 999_999)))
        if "{token}" in template:
            values["token"] = "".join(f"{b:02x}" for b in rng.bytes(16))
        return template.format(**values)

    def inquiry(self, p: Person, rng: np.random.Generator) -> str:
        """An inquiry text; about two in three carry PII of ``p``."""
        template, _ = INQUIRY_TEMPLATES[int(rng.integers(0, len(INQUIRY_TEMPLATES)))]
        return self._fill(template, p, rng)

    def search(self, p: Person, rng: np.random.Generator) -> str:
        """A search query someone pasted their own details into."""
        template = SEARCH_PII_TEMPLATES[int(rng.integers(0, len(SEARCH_PII_TEMPLATES)))]
        return self._fill(template, p, rng)

    def url_path(self, p: Person, rng: np.random.Generator) -> str:
        """A path + query carrying PII (mail links, forms submitted with GET, profile slugs)."""
        template = URL_PII_TEMPLATES[int(rng.integers(0, len(URL_PII_TEMPLATES)))]
        return self._fill(template, p, rng)

    def referrer(self, p: Person, rng: np.random.Generator) -> str:
        """A referrer carrying PII (a search engine query, a webmail reading pane)."""
        template = REFERRER_PII_TEMPLATES[int(rng.integers(0, len(REFERRER_PII_TEMPLATES)))]
        return self._fill(template, p, rng)


class PiiRegistry:
    """Append-only list of raw PII values for the leak test, streamed so memory stays flat."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self.lines = 0

    def add(self, values: Iterable[str | None]) -> None:
        """Record values (``None`` and blanks skipped); duplicates are harmless for a grep list."""
        kept = [v for v in values if v]
        if kept:
            self._fh.write("\n".join(kept))
            self._fh.write("\n")
            self.lines += len(kept)

    def close(self) -> None:
        self._fh.close()
