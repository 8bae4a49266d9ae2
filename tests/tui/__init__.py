"""Console tests (a package, so module names are unique across the suite)."""
