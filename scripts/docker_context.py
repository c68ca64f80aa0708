"""Copy exactly the files `docker build .` would send (the build context) into a directory.

.dockerignore is applied with docker's own matching rules (`docker.utils.build.exclude_paths` from the PyPI
package `docker`, in the test extra), so CI can build the wheel from what the image really gets.

Usage:
    python scripts/docker_context.py OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from docker.utils.build import exclude_paths

ROOT = Path(__file__).resolve().parents[1]


def context_files(root: Path = ROOT) -> list[str]:
    """The files of the build context, relative to `root`, as docker would send them."""
    patterns = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in patterns if p.strip() and not p.lstrip().startswith("#")]
    return sorted(p for p in exclude_paths(str(root), patterns) if (root / p).is_file())


def main(out: Path) -> None:
    files = context_files()
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, out / name)
    print(f"{len(files)} files of the Docker build context copied to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
