"""Static HTML pages for customer success managers: an index, one page per CSM, one brief per account.

``render_report(scores, drivers, ledger, out_dir)`` writes ``index.html``, ``csm/<slug>.html`` and
``accounts/<slug>.html``. Templates are jinja2 with autoescaping on; pages need no network and no
JavaScript library (the CSM table sorts with a few lines of inline vanilla JS).
"""

from churnml.report.render import iter_pages, render_report, slugify

__all__ = ["iter_pages", "render_report", "slugify"]
