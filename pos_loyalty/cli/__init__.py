"""The `pos-loyalty` command line: one typer app, one module per command group."""

from pos_loyalty.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
