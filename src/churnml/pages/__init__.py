"""CSM pages: static HTML rendered from the scores (``render_pages``)."""
