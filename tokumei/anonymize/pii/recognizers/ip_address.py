"""IP_ADDRESS: IPv4 and IPv6 addresses, validated with the standard library."""

from __future__ import annotations

import ipaddress

from .base import JpPatternRecognizer

_V4 = r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"
IPV4_REGEX = rf"(?<![0-9A-Za-z.]){_V4}(?![0-9A-Za-z])(?!\.[0-9])"
IPV6_REGEX = (
    rf"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_V4}|[0-9A-Fa-f]{{0,4}})"
    r"(?![0-9A-Za-z:])"
)


class JpIpRecognizer(JpPatternRecognizer):
    """IPv4 dotted quads and IPv6 (incl. '::' forms and IPv4-mapped)."""

    ENTITY = "IP_ADDRESS"
    PATTERNS = (("ipv4", IPV4_REGEX, 0.5), ("ipv6", IPV6_REGEX, 0.5))
    CONTEXT = ("ip", "アドレス", "address", "接続元")
    NEGATIVE_CONTEXT = ("ver", "バージョン", "version")

    def validate_result(self, pattern_text: str) -> bool:
        """A parseable address; a bare '::' or a clock time is not one."""
        try:
            addr = ipaddress.ip_address(pattern_text)
        except ValueError:
            return False
        return not (addr.version == 6 and int(addr) == 0)
