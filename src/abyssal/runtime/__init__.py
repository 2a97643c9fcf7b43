"""Long-running stages: sequencer, engine host, projections."""
