"""usermgmt: user management with one core and three faces (CLI, TUI, REST API)."""

__version__ = "0.1.0"
