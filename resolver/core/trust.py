"""Where the validator's trust starts: `dnssec.trust_anchor_file`, else the bundled root keys.

Read once when the resolver starts (as the root hints are), so a missing or malformed file is
one configuration error naming `dnssec.trust_anchor_file`, never a surprise at the first
query. The negative trust anchors are not here: they change at run time (`Context`).
"""

from __future__ import annotations

from resolver.config import ConfigError, DnssecConfig
from resolver.dnssec import TrustAnchorError, TrustAnchors, default_anchors, parse_trust_anchors


def load_trust_anchors(dnssec: DnssecConfig) -> TrustAnchors:
    """The configured anchors: the file's DS/DNSKEY records, or the IANA root KSKs."""
    path = dnssec.trust_anchor_file
    if path is None:
        return default_anchors()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(f"dnssec.trust_anchor_file: {path}: cannot read: {reason}") from None
    try:
        return parse_trust_anchors(text, str(path))
    except TrustAnchorError as error:
        raise ConfigError(f"dnssec.trust_anchor_file: {error}") from None
