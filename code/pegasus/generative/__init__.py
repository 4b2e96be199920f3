"""The generative avatar (METHOD §5): two training stages in one run folder (:mod:`.stages`),
the normal loss's targets (:mod:`.normals`), composed codes and the identity lock
(:mod:`.control`), and what ``pegasus test`` writes of it (:mod:`.outputs`; docs/generative.md)."""
