"""Static HTML pages for customer success managers: a book of business per CSM and a brief per account."""

from churnml.pages.render import render_pages

__all__ = ["render_pages"]
