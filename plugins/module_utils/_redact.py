# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Masking secrets in text that a module returns or logs (an installer's output, its log): the known key/value
forms (``-password=x``, ``Senha: x``, ``spring.datasource.password=x``, ``"databasePassword": "x"``, a password in
a URL or a JDBC query) and every literal secret value the caller knows (the install's database passwords).

Line by line: a line keeps everything but the secret, so error lines stay useful. Standard library only.
"""

from __future__ import annotations

import re

MASK = "********"
# A literal secret shorter than this is masked only where a key names it: masking every "abc" in a text would
# make it unreadable and tell a reader which short strings are the password.
MIN_LITERAL = 4

_KEY_WORDS = r"password|passwd|passphrase|senha|secret|segredo|token|pwd"
# a key naming a secret: databasePassword, spring.datasource.password, -password, --senha, DB_PASS...
_SECRET_KEY_RE = re.compile(rf"(?:{_KEY_WORDS})|(?:^|[_.-])pass$", re.IGNORECASE)
# key = value, key: value, "key": "value"; the key may be a flag (-password=x) or a dotted property
_KEY_VALUE_RE = re.compile(
    rf"""(?P<key>["']?(?:[-\w.]*(?:{_KEY_WORDS})[-\w.]*|[-\w.]*[_.-]pass)["']?\s*[=:]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s"',;&]+)""",
    re.IGNORECASE,
)
# -password x / --senha x (a flag followed by its value)
_FLAG_VALUE_RE = re.compile(rf"(?P<key>(?<![\w-])-{{1,2}}(?:{_KEY_WORDS}|pass)\s+)(?P<value>[^\s-]\S*)", re.IGNORECASE)
# scheme://user:password@host
_URL_USERINFO_RE = re.compile(r"(?P<key>://[^\s:/@]+:)(?P<value>[^\s@/]+)(?=@)")


def is_secret_key(name):
    """Whether a configuration key names a secret (``databasePassword``, ``spring.datasource.password``)."""
    return bool(_SECRET_KEY_RE.search(str(name or "")))


def _mask_value(match):
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 and value[-1] == value[0] else ""
    return match.group("key") + (quote + MASK + quote if quote else MASK)


def redact(text, secrets=()):
    """``text`` with every known secret masked (see the module's docstring); ``secrets``: literal values to mask
    wherever they appear. None stays None."""
    if text is None:
        return None
    literals = sorted({str(s) for s in secrets if s is not None and len(str(s)) >= MIN_LITERAL}, key=len, reverse=True)
    out = []
    for line in str(text).split("\n"):
        for literal in literals:
            line = line.replace(literal, MASK)
        line = _URL_USERINFO_RE.sub(_mask_value, line)
        line = _KEY_VALUE_RE.sub(_mask_value, line)
        line = _FLAG_VALUE_RE.sub(_mask_value, line)
        out.append(line)
    return "\n".join(out)


def redact_lines(lines, secrets=()):
    """A list of lines, each redacted (see ``redact``)."""
    return [redact(line, secrets) for line in lines or []]
