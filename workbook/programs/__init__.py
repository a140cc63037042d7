"""Programs that run inside containers, one file each, mounted or copied into the container from here.

Each runs on a stock image (`python:3.11-slim`, say), so it uses the standard library only and never
imports the workbook; the unit tests import it to run its functions in-process.
"""

from pathlib import Path

FOLDER = Path(__file__).parent  # where the programs are, to mount one: -v {FOLDER / "x.py"}:/x.py:ro
