"""``python -m churnml``: the same entry point as the ``churnml`` console script."""

from churnml.cli import main

if __name__ == "__main__":
    main()
