"""Part-swap synthesis (METHOD §6): the target wearing every DB person's parts, made offline from
the DB avatar bank's cross-driven renders (docs/synthesis.md)."""
