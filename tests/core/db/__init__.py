"""Tests of usermgmt.core.db (a package, so module names are unique across the suite)."""
