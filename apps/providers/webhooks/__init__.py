"""Provider webhooks. The pure parsers live in ``parsers`` and are re-exported here."""

from .parsers import meta_route_keys, parse_gupshup, parse_gupshup_partner, parse_meta

__all__ = ["meta_route_keys", "parse_gupshup", "parse_gupshup_partner", "parse_meta"]
