"""Assemble the real focus-series corpus (``docs/latent-training-series.json``) into one folder per series.

Each series folder gets ``stack.tif`` (z, y, x) and ``meta.json`` (series, modality, fold, focus_plane, z
positions and pixel size where known, repository, commit, file, licence and the SHA-256 of ``stack.tif``).
Series held in ``../shared/data`` are copied from there; the others are read from local snapshots of their
repositories (``git`` directories, e.g. those brought by a mirror of NEUBIAS/training-resources and
david-hoffman/pyOTF), at the commit the list names.

    python scripts/build_corpus.py OUT --data ../shared/data --repo NEUBIAS/training-resources=GIT_DIR
        [--repo david-hoffman/pyOTF=GIT_DIR]

A series whose source is missing is skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import tifffile

from latent_focus.io import read_stack

LIST = Path(__file__).resolve().parents[1] / "docs" / "latent-training-series.json"
#: series kept in ../shared/data: series name -> folder
SHARED = {
    "dfnn_micro": "dfnn_lightsheet_microtubules", "dfnn_mito": "dfnn_lightsheet_mitochondria",
    "epfl_bead": "bead_widefield_epfl", "neubias_conf_pair": "neubias_confocal_nucleus_hoechst_pair",
    "neubias_wf": "neubias_widefield_nucleus_hoechst", "psf_confocal": "psf_confocal_beads_mpicbg",
    "psf_lattice": "psf_lattice_bead", "yeast_evolve_A": "baby_brightfield_yeast_evolve_testA",
    "yeast_evolve_G": "baby_brightfield_yeast_evolve_testG_tp1",
    "yeast_prime_A": "baby_brightfield_yeast_prime95b_testA",
    "yeast_prime_C": "baby_brightfield_yeast_prime95b_testC_tp1",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _from_repo(git_dir: Path, commit: str, file: str) -> np.ndarray:
    blob = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{file}"], capture_output=True,
                          check=True).stdout
    data = tifffile.imread(io.BytesIO(blob))
    if data.ndim != 3:
        raise ValueError(f"{file} has shape {data.shape}; expected (z, y, x)")
    return data


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path, required=True, help="the shared data folder")
    p.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME=GIT_DIR")
    args = p.parse_args(argv)
    repos = dict(r.split("=", 1) for r in args.repo)
    for entry in json.loads(LIST.read_text()):
        name, folder = entry["series"], args.out / entry["series"]
        folder.mkdir(parents=True, exist_ok=True)
        stack_file = folder / "stack.tif"
        if name in SHARED:
            shutil.copyfile(args.data / SHARED[name] / "stack.tif", stack_file)
        elif entry["repository"] in repos:
            file = entry["file"].split(" ")[0]
            tifffile.imwrite(stack_file, _from_repo(Path(repos[entry["repository"]]), entry["commit"], file))
        else:
            print(f"{name}: skipped ({entry['repository']} not given)")
            folder.rmdir()
            continue
        stack = read_stack(stack_file)
        z = stack.z_um
        meta = {**entry, "stack_sha256": _sha(stack_file), "planes": stack.n_planes,
                "z_um": None if z is None or not np.all(np.isfinite(z)) else [float(v) for v in z],
                "pixel_size_um": stack.pixel_size_um}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        same = "same stack as listed" if meta["stack_sha256"] == entry["stack_sha256"] else "re-encoded TIFF"
        print(f"{name}: {stack.data.shape} focus {entry['focus_plane']} ({same})")


if __name__ == "__main__":
    main()
