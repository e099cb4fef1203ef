"""IP_ADDRESS: IPv4 and IPv6 addresses, with zones and CIDR suffixes, validated by ``ipaddress``.

Written against Presidio's own IP test cases (``tests/data/presidio_cases``), which our first
version failed on a quarter of: it cut ``192.168.1.0/24`` to the address (the prefix length
says which network a person is in, so it is part of the finding), dropped the zone of
``fe80::1%eth0``, and ignored the unspecified address ``::``. What the patterns do:

* IPv4: a dotted quad, then an optional ``/0``..``/32``; an impossible suffix (``/123``) is left
  out and the address kept. ``192.168.1.1.1`` yields ``192.168.1.1`` as in Presidio; a
  letter glued on either side (``IP192.168.1.1text``) yields nothing.
* IPv6: two to seven colon-separated hex groups (``::`` compression, an embedded IPv4 address
  at the end), then an optional zone (``%eth0``) and ``/0``..``/128``. Not glued to a word or
  to another colon (``std::cout``, ``12345:db8::1``), not followed by ``.digit`` (so
  ``::ffff:192.168.1`` is not cut to ``::ffff:192``). ``ipaddress.ip_interface`` decides: a MAC
  address, a clock time, ``2001::db8::1`` fail it.
* the unspecified address ``::`` (with an optional prefix) is reported at a low score (0.1, as
  Presidio does): it identifies nobody, but a scrubber that leaves ``::`` leaves nothing.

Explicit look-arounds replace ``\\b``, which never fires between a kanji and a digit.
"""

from __future__ import annotations

import ipaddress

from .base import JpPatternRecognizer

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_V4_CIDR = r"(?:/(?:3[0-2]|[12]?[0-9])(?![0-9]))?"
_V6_CIDR = r"(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])(?![0-9]))?"
_ZONE = r"(?:%[0-9A-Za-z_.\-]{1,32}(?<![.\-]))?"
IPV4_REGEX = rf"(?<![0-9A-Za-z.]){_V4}{_V4_CIDR}(?![0-9A-Za-z])"
# At least one hex digit (``(?=...)``): the bare ``::`` is the unspecified pattern's.
IPV6_REGEX = (
    rf"(?<![0-9A-Za-z_:.])(?=[0-9A-Fa-f:.]*[0-9A-Fa-f])"
    rf"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_V4}|[0-9A-Fa-f]{{0,4}})"
    rf"{_ZONE}{_V6_CIDR}(?![0-9A-Za-z_:])(?!\.[0-9])"
)
IPV6_UNSPECIFIED_REGEX = rf"(?<![0-9A-Za-z_:.])::{_V6_CIDR}(?![0-9A-Za-z_:])(?!\.[0-9])"


class JpIpRecognizer(JpPatternRecognizer):
    """IPv4 dotted quads and IPv6 (``::`` forms, IPv4-mapped and embedded), zones, CIDR."""

    ENTITY = "IP_ADDRESS"
    PATTERNS = (
        ("ipv4", IPV4_REGEX, 0.5),
        ("ipv6", IPV6_REGEX, 0.5),
        ("ipv6 unspecified", IPV6_UNSPECIFIED_REGEX, 0.1),
    )
    CONTEXT = ("ip", "アドレス", "address", "接続元")
    NEGATIVE_CONTEXT = ("ver", "バージョン", "version")

    def validate_result(self, pattern_text: str) -> bool | None:
        """A parseable address or network (``ip_interface``: zone and prefix allowed). The
        all-zero IPv6 address keeps its pattern's low score (``None``)."""
        try:
            iface = ipaddress.ip_interface(pattern_text)
        except ValueError:
            return False
        if iface.version == 6 and int(iface.ip) == 0:
            return None
        return True
