"""Metrics, splits, threshold optimisation and augmentation."""
