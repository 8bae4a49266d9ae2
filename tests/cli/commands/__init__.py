"""Tests of usermgmt.cli.commands (a package, so module names are unique across the suite)."""
