"""`make chapter`: one notebook run headless by papermill, its executed copy and plots kept."""

from __future__ import annotations

import nbformat
import pytest

from workbook import run_chapter


def notebook(path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell(
        'import os\nQUICK = os.environ.get("WORKBOOK_QUICK", "0") == "1"\nREPEATS = 1 if QUICK else 5'
    )
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters] + [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)


PLOT = (
    "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\nimport matplotlib.pyplot as plt\n"
)


def test_a_chapter_runs_with_its_parameters_and_its_plots_are_saved(tmp_path):
    chapter = tmp_path / "03-demo.ipynb"
    notebook(chapter, 'print(f"QUICK={QUICK} REPEATS={REPEATS}")', PLOT + "plt.plot([1, 2, 3]); plt.show()")
    code, executed, figures, _ = run_chapter.run(
        chapter, quick=True, out_dir=tmp_path / "out", parameters={"REPEATS": 7}
    )
    assert code == 0
    printed = nbformat.read(executed, as_version=4).cells[2].outputs[0]["text"]
    assert printed.strip() == "QUICK=True REPEATS=7"  # --quick reached the kernel; -p overrode the cell's value
    assert [f.name for f in figures] == ["figure-01.png"]
    assert figures[0].read_bytes().startswith(b"\x89PNG")


def test_a_failing_cell_gives_exit_1_and_keeps_what_ran(tmp_path, capsys):
    chapter = tmp_path / "05-broken.ipynb"
    notebook(chapter, 'print("before")', 'raise RuntimeError("the engine went away")', 'print("never")')
    code, executed, figures, _ = run_chapter.run(chapter, quick=False, out_dir=tmp_path / "out")
    assert code == 1 and executed.exists() and figures == []
    assert "RuntimeError: the engine went away" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["3", "03", "03-layer-caching"])
def test_a_chapter_is_found_by_number_or_name(name):
    assert run_chapter.find_chapter(name).name == "03-layer-caching.ipynb"


@pytest.mark.parametrize("name", ["42", "layer-caching", ""])
def test_an_unknown_chapter_is_exit_2_naming_the_chapters(name, capsys):
    assert run_chapter.main([name]) == 2
    assert "the chapters are: 00-setup-check, 01-containers-vs-vms" in capsys.readouterr().err


def test_a_malformed_parameter_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        run_chapter.main(["03", "-p", "not a parameter"])
    assert stopped.value.code == 2
    assert "is not NAME=VALUE" in capsys.readouterr().err
