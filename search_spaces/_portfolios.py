"""Starting configurations per family, learned offline by ``python -m benchmarks.build_portfolio``
(provenance below); enqueued after each family's defaults (``search_spaces._portfolio``).
Generated: edit by re-running the script, not by hand."""

PROVENANCE = {}

PORTFOLIOS = {}
