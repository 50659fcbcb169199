"""The bundled demo knowledge base: help-centre articles of Northwind Shop, a fictional online
shop."""

from pathlib import Path

HELP_CENTRE = Path(__file__).parent / "help_centre"
