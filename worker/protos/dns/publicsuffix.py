"""Registered domain of a name from the Public Suffix List
(https://publicsuffix.org/list/), as Go's ``golang.org/x/net/publicsuffix``
``EffectiveTLDPlusOne`` computes it for Packetbeat (ICANN and private
sections, exception and wildcard rules, the default rule ``*``).

The list is read from the operating system's copy (Debian/Ubuntu package
``publicsuffix``). Without it only the default rule applies: the public
suffix is the last label (``www.example.co.uk`` -> ``co.uk``), which is right
for every generic TLD and wrong under multi-label suffixes.
"""
from __future__ import annotations

import logging
import os

DEFAULT_PATHS = (
    "/usr/share/publicsuffix/public_suffix_list.dat",
    "/usr/share/publicsuffix/effective_tld_names.dat",
)
log = logging.getLogger("packetbeat.dns")


class PublicSuffixList:
    """Rules of one list. ``PublicSuffixList.load()`` reads the system copy."""
    __slots__ = ("rules", "wildcards", "exceptions", "source", "_cache")

    def __init__(self, lines=(), source: str = ""):
        self.rules: set[str] = set()
        self.wildcards: set[str] = set()     # "*.ck" is stored as "ck"
        self.exceptions: set[str] = set()    # "!www.ck" is stored as "www.ck"
        self.source = source
        self._cache: dict[str, str | None] = {}
        for line in lines:
            rule = line.strip().split(None, 1)[0] if line.strip() else ""
            if not rule or rule.startswith("//"):
                continue
            rule = _ascii(rule)
            if rule is None:
                continue
            if rule.startswith("!"):
                self.exceptions.add(rule[1:])
            elif rule.startswith("*."):
                self.wildcards.add(rule[2:])
            else:
                self.rules.add(rule)

    @classmethod
    def load(cls, paths=DEFAULT_PATHS) -> "PublicSuffixList":
        for path in paths:
            if os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8") as f:
                        return cls(f, path)
                except (OSError, UnicodeDecodeError) as exc:
                    log.warning("cannot read the public suffix list %s: %s", path, exc)
        log.warning("no public suffix list found (%s); dns.question.registered_domain uses "
                    "the default rule only", ", ".join(paths))
        return cls()

    def public_suffix(self, domain: str) -> str:
        labels = domain.split(".")
        n = len(labels)
        suffix = 0                       # labels in the public suffix
        for i in range(1, n + 1):
            cand = ".".join(labels[n - i:])
            if cand in self.exceptions:
                suffix = i - 1
                break
            if cand in self.rules:
                suffix = i
            elif i > 1 and ".".join(labels[n - i + 1:]) in self.wildcards:
                suffix = i
        if suffix == 0:
            return labels[-1]
        return ".".join(labels[n - suffix:])

    def registered_domain(self, domain: str) -> str | None:
        """eTLD+1 of ``domain`` (no trailing dot), or None where Go's
        ``EffectiveTLDPlusOne`` returns an error (empty label, or the name
        is itself a public suffix)."""
        cache = self._cache
        if domain in cache:
            return cache[domain]
        result = None
        if domain and not domain.startswith(".") and not domain.endswith(".") and ".." not in domain:
            suffix = self.public_suffix(domain)
            if len(domain) > len(suffix):
                i = len(domain) - len(suffix) - 1
                if domain[i] == ".":
                    result = domain[domain.rfind(".", 0, i) + 1:]
        if len(cache) >= 65536:
            cache.clear()
        cache[domain] = result
        return result


def _ascii(rule: str) -> str | None:
    """A rule in the ASCII (punycode) form names have on the wire."""
    if rule.isascii():
        return rule
    prefix = ""
    if rule[0] in "!*":
        prefix, rule = (rule[:2], rule[2:]) if rule.startswith("*.") else (rule[0], rule[1:])
    try:
        return prefix + ".".join(p.encode("idna").decode("ascii") for p in rule.split("."))
    except UnicodeError:
        return None
