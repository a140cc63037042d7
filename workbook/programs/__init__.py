"""Programs that run inside containers, one file each, mounted or copied into the container from here.

Each runs with its image's Python and never imports the workbook: on a stock image (`python:3.11-slim`,
say) with the standard library only; versioned_service.py on lab 06's image, whose app.py it extends.
The unit tests import them to run their functions in-process (tests/unit/test_programs_stand_alone.py
checks what each imports).
"""

from pathlib import Path

FOLDER = Path(__file__).parent  # where the programs are, to mount one: -v {FOLDER / "x.py"}:/x.py:ro
