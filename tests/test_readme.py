"""The Python imports the README shows users keep working."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_imports_resolve():
    lines = re.findall(r"^from napari_bnadapt[\w.]* import .+$", README.read_text(), re.M)
    assert len(lines) >= 4
    for line in lines:
        exec(line, {})
