"""The Textual console (`usermgmt tui`): an operator's home over the core services.

Importing this package imports nothing heavy; ``usermgmt.tui.app`` pulls in Textual.
"""
