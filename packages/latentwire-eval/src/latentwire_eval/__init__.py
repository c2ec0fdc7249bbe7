"""LatentWire evaluation: metrics, baselines, statistics and reports."""
