"""Modelling: backtests over time, LightGBM with calibration, baselines, tuning, tracking."""
