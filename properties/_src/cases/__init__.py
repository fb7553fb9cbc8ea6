"""The cases: each property on each tier, shapes changing between calls, the metamorphic relations, the serving loop."""
