"""Keep tokens, passwords and keys out of bundles.

ReproZip records every environment variable and argument of the traced run. A bundle
is meant to be published, so before anything is written studypack drops variables
whose *name* says they are secret (``*TOKEN*``, ``*PASSWORD*``, ``AWS_*`` …) or whose
*value* looks like a credential (a GitHub token, a private key, a URL with a password,
a long random string), redacts such values wherever else they appear (arguments,
stdout/stderr, git diff), and tells the user what it removed. An allow-list in the
spec (``[environment] allow_env``) keeps a variable the user vouches for.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

REDACTED = "[REDACTED]"

SECRET_NAME_PATTERNS = [
    "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*PASSPHRASE*", "*_PASS", "PASS",
    "*KEY", "*KEY_*", "*_KEY*", "*APIKEY*", "*CREDENTIAL*", "*AUTH*", "*COOKIE*",
    "*SESSION*", "*PRIVATE*", "*_PAT", "AWS_*", "AZURE_*", "GCP_*", "GOOGLE_APPLICATION_*",
    "GITHUB_*", "GH_*", "GITLAB_*", "CI_JOB_*", "HF_*", "HUGGING*", "OPENAI_*", "ANTHROPIC_*",
    "ZENODO_*", "NPM_CONFIG__AUTH*", "*DATABASE_URL*", "*_DSN", "SSH_AUTH_SOCK",
    "SSH_AGENT_PID", "KRB5*", "VAULT_*", "DOCKER_AUTH_CONFIG", "TWINE_*", "PGPASS*",
]

# Names that match a pattern above but are known to be harmless (and that a replay may
# need): session bookkeeping of desktops, shells and R, keyboard settings, regions.
HARMLESS_NAMES = {"XAUTHORITY", "KEYTIMEOUT", "GPG_TTY", "GH_PAGER", "AWS_CA_BUNDLE",
                  "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "SSH_AUTH_SOCK_DIR",
                  "R_SESSION_TMPDIR", "R_SESSION_INITIALIZED", "DESKTOP_SESSION",
                  "XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS",
                  "XDG_SESSION_DESKTOP", "GDMSESSION", "SESSION_MANAGER",
                  "DBUS_SESSION_BUS_ADDRESS", "XKB_DEFAULT_LAYOUT", "GNOME_KEYRING_CONTROL",
                  "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
                  "KMP_AFFINITY", "TF_CPP_MIN_LOG_LEVEL", "SSH_AUTH_SOCK_PATH"}

SECRET_VALUE_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),                              # AWS access key id
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),                    # GitHub tokens
    re.compile(r"github_pat_[A-Za-z0-9_]{30,}"),
    re.compile(r"glpat-[A-Za-z0-9_-]{20,}"),                      # GitLab
    re.compile(r"xox[abprs]-[A-Za-z0-9-]{10,}"),                  # Slack
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),                         # OpenAI/Anthropic-style
    re.compile(r"hf_[A-Za-z0-9]{30,}"),                           # Hugging Face
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),  # JWT
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),               # user:password@ in URLs
]

# A long unbroken run of letters and digits mixing classes: an API key or token.
_RANDOM_LOOKING = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]{32,}(?![A-Za-z0-9+/=_-])")

# Command-line flags whose value is a secret: --token X, --password=X, -p X is too vague.
SECRET_FLAG = re.compile(r"^--?[A-Za-z0-9_-]*(token|secret|password|passwd|api[-_]?key|"
                         r"access[-_]?key|auth|credential)[A-Za-z0-9_-]*$", re.IGNORECASE)


def name_is_secret(name: str) -> bool:
    upper = name.upper()
    if upper in HARMLESS_NAMES:
        return False
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_NAME_PATTERNS)


_DIGEST_LENGTHS = {32, 40, 56, 64, 96, 128}   # md5, sha1/git, sha224, sha256, sha384, sha512


def _looks_like_path(token: str) -> bool:
    if token.startswith(("/", "./", "../", "~/")) or re.search(
            r"/[^/]*\.[A-Za-z0-9]{1,6}$", token):
        return True
    # Part of a path cut at a dot (".cache/pypoetry/virtualenvs/study-Xk3pQ2rT-py3"): most
    # of its folders are plain lowercase names, which random keys are not.
    parts = [p for p in token.split("/") if p]
    plain = sum(bool(re.fullmatch(r"[a-z][a-z0-9_-]*", p)) for p in parts)
    return len(parts) >= 3 and "+" not in token and "=" not in token and plain * 2 >= len(parts)


def _looks_random(token: str) -> bool:
    if len(token) < 32:
        return False
    if len(token) in _DIGEST_LENGTHS and re.fullmatch(r"[0-9a-f]+", token):
        return False  # checksums and commit ids are published on purpose
    if "/" in token and _looks_like_path(token):
        return False  # a long file path is not a key
    classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return classes >= 3 or (classes == 2 and len(token) >= 40 and not token.isalpha())


def _is_path_list(value: str) -> bool:
    """PATH, PYTHONPATH, VIRTUAL_ENV…: one or more folders, separated by ':'."""
    entries = [e for e in value.split(":") if e]
    return bool(entries) and all(e.startswith(("/", "~", "./", "../", "$")) for e in entries)


def value_is_secret(value: str) -> bool:
    if any(p.search(value) for p in SECRET_VALUE_PATTERNS):
        return True
    if _is_path_list(value):   # a random-looking folder name is not a key
        return False
    return any(_looks_random(m.group(0)) for m in _RANDOM_LOOKING.finditer(value))


@dataclass
class Scrubber:
    """Remembers what it removed so the same values can be redacted everywhere."""

    allow: set[str] = field(default_factory=set)
    dropped: dict[str, str] = field(default_factory=dict)   # name -> reason
    _values: set[str] = field(default_factory=set)
    redacted_args: int = 0

    def scrub_environment(self, environ: dict[str, str]) -> dict[str, str]:
        kept = {}
        for name, value in environ.items():
            if name in self.allow:
                kept[name] = value
            elif name_is_secret(name):
                self._forget(name, value, "its name looks like a secret")
            elif value_is_secret(value):
                self._forget(name, value, "its value looks like a credential")
            elif any(secret in value for secret in self._values):
                self._forget(name, value, "its value was given as a secret argument")
            else:
                kept[name] = value
        return kept

    def _forget(self, name: str, value: str, reason: str) -> None:
        self.dropped[name] = reason
        if len(value) >= 6:
            self._values.add(value)

    def scrub_argv(self, argv: list[str]) -> list[str]:
        out: list[str] = []
        secret_next = False
        for arg in argv:
            if secret_next:
                self._values.add(arg) if len(arg) >= 6 else None
                out.append(REDACTED)
                self.redacted_args += 1
                secret_next = False
                continue
            flag, eq, value = arg.partition("=")
            if eq and SECRET_FLAG.match(flag):
                self._values.add(value) if len(value) >= 6 else None
                out.append(f"{flag}={REDACTED}")
                self.redacted_args += 1
                continue
            if SECRET_FLAG.match(arg):
                secret_next = True
                out.append(arg)
                continue
            scrubbed = self.scrub_text(arg)
            if scrubbed != arg:
                self.redacted_args += 1
            out.append(scrubbed)
        return out

    def scrub_text(self, text: str) -> str:
        """Redact every value already known to be secret and every credential shape."""
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        for pattern in SECRET_VALUE_PATTERNS:
            text = pattern.sub(REDACTED, text)
        return _RANDOM_LOOKING.sub(
            lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text)

    def scrub_bytes(self, data: bytes) -> bytes:
        text = data.decode("utf-8", errors="surrogateescape")
        return self.scrub_text(text).encode("utf-8", errors="surrogateescape")

    def known_values(self) -> set[str]:
        return set(self._values)

    def summary(self) -> list[str]:
        """Lines telling the user what was removed (never the values)."""
        lines = [f"dropped environment variable {name} ({reason})"
                 for name, reason in sorted(self.dropped.items())]
        if self.redacted_args:
            lines.append(f"redacted {self.redacted_args} command-line argument(s) that "
                         "looked like credentials")
        return lines
