"""Reports: results, comparisons, checks and tuning searches as tables (rich, Markdown, CSV,
JSON) and pictures (PNG charts and traces)."""
