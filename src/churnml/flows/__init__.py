"""Flows: one module per command, the only code that reads the config and calls the I/O and MLflow layers."""
