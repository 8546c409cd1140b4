"""Reports: plots (PNG) and the static HTML report with metrics."""
