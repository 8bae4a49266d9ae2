"""Tests of usermgmt.core.services (a package, so module names are unique across the suite)."""
