"""Are exported cars complete? Export the first N toy test images with a reconstructor and print, per car, what
the GLB holds (wheel nodes, glass materials, emissive lamps, the animation clip), what had to be placed, and,
when node and the Khronos validator are installed (`make gltf-validator`), its error and warning counts."""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import torch

from benchmark.cli import TOY_RECONSTRUCTOR
from datasources.toy import ToySettings, write_split
from downstream.export import GLASS, WHEEL_NAMES, export_glb
from inverse_graphics.reconstructor import load_reconstructor, read_image, reconstruct

VALIDATOR = Path(__file__).resolve().parents[1] / "build" / "node" / "node_modules" / "gltf-validator"
SCRIPT = ("const v = require(process.argv[1]); const data = require('fs').readFileSync(process.argv[2]);"
          "v.validateBytes(new Uint8Array(data)).then(r => console.log(JSON.stringify(r.issues)));")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=str(TOY_RECONSTRUCTOR), help="reconstructor checkpoint")
    parser.add_argument("--n", type=int, default=8, help="the first N images of the toy test split")
    return parser.parse_args()


def glb_json(path: Path) -> dict:
    """The JSON chunk of a GLB (after the 12-byte header and the chunk's length and type)."""
    data = path.read_bytes()
    length, = struct.unpack_from("<I", data, 12)
    return json.loads(data[20:20 + length])


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    model = load_reconstructor(args.checkpoint)
    validate = shutil.which("node") is not None and VALIDATOR.is_dir()
    with tempfile.TemporaryDirectory() as tmp:
        images = write_split(Path(tmp) / "toy", "test", args.n, ToySettings()) / "images"
        for path in sorted(images.glob("*.png")):
            glb = Path(tmp) / f"{path.stem}.glb"
            export_glb(reconstruct(model, read_image(path)), glb)
            gltf = glb_json(glb)
            names = {node["name"]: node.get("extras", {}) for node in gltf["nodes"]}
            glass = sum(m["name"] in GLASS for m in gltf["materials"])
            lamps = [n for n, e in names.items() if e.get("part") in ("head light", "tail light")]
            placed = {n: e["placed"] for n, e in names.items() if "placed" in e}
            line = (f"{path.name}: wheels {sum(n in names for n in WHEEL_NAMES)}, glass materials {glass}, "
                    f"lamps {len(lamps)}, clips {len(gltf.get('animations', []))}, placed {placed or 'none'}")
            if validate:
                run = subprocess.run(["node", "-e", SCRIPT, str(VALIDATOR), str(glb)], capture_output=True,
                                     text=True, check=True)
                issues = json.loads(run.stdout)
                line += f"; validator: {issues['numErrors']} errors, {issues['numWarnings']} warnings"
            print(line)


if __name__ == "__main__":
    main()
