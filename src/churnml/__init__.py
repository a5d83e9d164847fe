"""churnml: which B2B SaaS accounts will churn or expand in the next 90 days, and why."""

__version__ = "0.1.0"
