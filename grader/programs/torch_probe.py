"""Which torch this Python holds, which CUDA it was built for, and every installed distribution.

Prints one line: PROBE_MARK followed by a JSON object {"torch": version, "cuda": torch.version.cuda,
"distributions": ["name==version", ...]}, or {"error": "...", "distributions": [...]} when torch does not
import. The grader passes this file's text to the image's own Python as `python -c TEXT` (CpuOnlyTorch in
grader/checks/on_gpu.py; chapter 8 of the workbook does the same), so it uses the standard library only,
plus torch where there is one, and never imports the grader.
"""

import importlib.metadata
import json

PROBE_MARK = "TORCH-PROBE "  # grader.gpu_variant.probe_report finds the report line by it


def report() -> dict:
    """torch's version and CUDA build (or why torch does not import), and the installed distributions."""
    found = {}
    try:
        import torch

        found["torch"] = str(torch.__version__)
        found["cuda"] = torch.version.cuda
    except Exception as err:  # missing or broken alike: the report says which
        found["error"] = f"{type(err).__name__}: {err}"
    distributions = importlib.metadata.distributions()
    found["distributions"] = sorted(
        {f"{d.metadata['Name']}=={d.version}" for d in distributions if d.metadata.get("Name")}
    )
    return found


def main() -> None:
    print(PROBE_MARK + json.dumps(report()))


if __name__ == "__main__":
    main()
