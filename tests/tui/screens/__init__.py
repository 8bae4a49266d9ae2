"""Tests of usermgmt.tui.screens (a package, so module names are unique across the suite)."""
