"""The documentation: its reference pages written from settings.py and the catalog (current, every setting
described), the site built by MkDocs in strict mode (every link and anchor found), a README of one screen's worth."""
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from veza_synthetics import catalog, reference
from veza_synthetics.profile_model import SECTIONS

REPO = Path(__file__).resolve().parents[1]


def test_the_reference_pages_are_current():
    for name, text in reference.pages(catalog.load()).items():
        assert (REPO / "docs" / "reference" / name).read_text() == text, f"regenerate: veza-synth reference ({name})"


def test_every_setting_says_what_it_changes():
    undescribed = [f"{section}.{f.name}" for section, cls in SECTIONS.items()
                   for f in fields(cls) if not reference.describe(cls).get(f.name)]
    assert not undescribed, f"a comment beside or above each in settings.py: {undescribed}"


def test_the_site_builds_strict(tmp_path):
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "checks" / "index.html").is_file()


def test_the_readme_is_one_screen_and_points_at_the_site():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for page in ("docs/ways/laptop.md", "docs/ways/nightly.md", "docs/ways/gate.md", "docs/ways/serve.md"):
        assert page in readme and (REPO / page).is_file(), page
