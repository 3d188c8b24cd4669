"""Pure webhook parsers: a provider callback body in, normalized events out.

No database, no settings, no network. Unknown fields and types become ``OtherEvent``; only a
body that is structurally not a webhook raises ``ParseError``.
"""

from ._common import parse_timestamp
from .gupshup import parse_gupshup
from .gupshup_partner import parse_gupshup_partner
from .meta import meta_route_keys, parse_meta

__all__ = ["meta_route_keys", "parse_gupshup", "parse_gupshup_partner", "parse_meta", "parse_timestamp"]
