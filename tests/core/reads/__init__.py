"""Tests of usermgmt.core.reads (a package, so module names are unique across the suite)."""
