"""Drawing examples: which shapes a run draws, valid updates for each tier, and updates that break one rule."""
