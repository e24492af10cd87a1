"""`python -m loadtests.bench.fuelcard_main ...` = `fuelcard ...` of this checkout.

The installed `fuelcard` script imports whichever checkout the venv was installed from; run as a
module from the repository root, this imports the code next to it."""

from processing.cli import app

if __name__ == "__main__":
    app(prog_name="fuelcard")
