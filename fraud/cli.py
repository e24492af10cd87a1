"""Scaffold (issue 7 in progress): `fuelcard fraud ...` commands."""

import typer

app = typer.Typer(help="Fraud rules, the scoring worker and the security console.", no_args_is_help=True)
