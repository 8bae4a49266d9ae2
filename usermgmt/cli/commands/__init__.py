"""One module per noun, each with ``app = typer.Typer(...)``; registered in ``app.SUB_APPS``."""
