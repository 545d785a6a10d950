"""Evaluation: metrics, plots, reports."""
