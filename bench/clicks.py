"""Interactive correction through the real server: a simulated annotator clicks, the twin answers.

    python bench/clicks.py [--generated 2] [--clicks 10] [--model ct_organs] [--faint kidney_left]

Starts ``monailabel start_server --conf interactive true`` on a datastore of the held-out sample CT
cases (never trained or validated on by the shipped models) plus ``--generated`` new phantom cases
(unseen seeds). Per case: the auto model (``/infer/<model>``) and the twin's auto mode
(``/infer/<model>_deepedit`` without clicks) are scored; then, starting from the twin's auto answer,
the simulated annotator (:func:`lib.interactive.simulation.next_click` on the label the viewer shows:
the deepest voxel of the largest error region of any label (``--annotator largest``, the default) or
of the label with the lowest Dice (``worst``); a foreground click for a miss, a background click for a
false positive) clicks up to ``--clicks`` times, each click sent as 3D Slicer's SmartEdit sends it
(every label's landmarks, ``background`` for background clicks, ``label`` the segment clicked on)
through the plugin's client.

``--faint LABEL`` adds, for every case, a copy in which that structure's contrast to its surroundings
is scaled by ``--faint-factor`` (:func:`lib.interactive.simulation.make_faint`): a structure the model
misses, the case clicks are for.

Prints one JSON summary: per case the mean Dice over the labels after each click (and each label's
Dice before and after the clicks), NoC@85 / NoC@90 (clicks until the mean Dice reaches 0.85 / 0.90; 0
if the auto answer already does, ``--clicks`` + 1 if never),
the clicks after which the mean Dice fell and the largest fall, the click latencies (client wall time
and the server's breakdown); over all cases the medians and means, the mean Dice over the cases after
each click and the clicks after which that mean fell.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.infer_latency import HELD_OUT, generator  # noqa: E402
from lib.interactive.guidance import BACKGROUND  # noqa: E402
from lib.interactive.simulation import Click, make_faint, next_click  # noqa: E402
from lib.metrics.dice import dice  # noqa: E402
from lib.planning.presets import TWIN_SUFFIX, get_preset  # noqa: E402
from tests.server import SAMPLE_CT, Server, copy_datastore, slicer_client_module  # noqa: E402

GENERATED_SEEDS = 901  # first anatomy seed of the generated cases (the sample data uses 131-287)


def add_generated(studies: Path, count: int) -> list[str]:
    """Write ``count`` new phantom cases (sample-like grids, unseen seeds) into ``studies``."""
    gen, names = generator(), []
    for k in range(count):
        spacing = (0.8 + 0.05 * k, 0.8 + 0.05 * k, (5.0, 3.0, 2.5)[k % 3])
        hu, label, affine = gen.generate_ct_case(GENERATED_SEEDS + k, spacing, z_extent=80.0)
        name = f"gen_{k:03d}.nii.gz"
        nib.save(nib.Nifti1Image(hu, affine), studies / name)
        nib.save(nib.Nifti1Image(label, affine), studies / "labels" / "final" / name)
        names.append(name)
    return names


def add_faint(studies: Path, names: list[str], label: int, factor: float) -> list[str]:
    """A copy of each case with structure ``label`` made faint (same label file)."""
    out = []
    for name in names:
        image = nib.load(studies / name)
        truth = read_label(str(studies / "labels" / "final" / name))
        data = np.asarray(image.dataobj).astype(np.float32)[None]
        faint = make_faint(data, truth == label, factor, truth == 0)[0]
        copy = f"faint_{name}"
        nib.save(nib.Nifti1Image(np.round(faint).astype(np.int16), image.affine), studies / copy)
        nib.save(nib.Nifti1Image(truth, image.affine), studies / "labels" / "final" / copy)
        out.append(copy)
    return out


def label_dice(pred: np.ndarray, truth: np.ndarray, labels: dict[str, int]) -> dict[str, float]:
    return {name: float(dice(pred == v, truth == v)) for name, v in labels.items()}


def mean_dice(pred: np.ndarray, truth: np.ndarray, labels: dict[str, int]) -> float:
    return float(np.mean(list(label_dice(pred, truth, labels).values())))


def read_label(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj).astype(np.uint8)


def rounded(scores: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 4) for name, value in scores.items()}


def annotator_click(
    shown: np.ndarray, truth: np.ndarray, labels: dict[str, int], annotator: str
) -> Click | None:
    """The simulated click (:func:`next_click`): ``"largest"`` corrects the largest error region over all
    labels; ``"worst"`` corrects the largest error region of the label with the lowest Dice (the organ an
    annotator sees is wrong first), else, if that label has no region to click, over all labels.

    >>> truth = np.array([1, 1, 1, 1, 0, 2, 2, 0]); shown = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    >>> labels = {"big": 1, "small": 2}
    >>> [annotator_click(shown, truth, labels, a).label for a in ("largest", "worst")]
    ['big', 'small']
    """
    if annotator == "worst":
        scores = label_dice(shown, truth, labels)
        worst = min(scores, key=scores.__getitem__)
        click = next_click(shown, truth, {worst: labels[worst]})
        if click is not None:
            return click
    return next_click(shown, truth, labels)


def noc(curve: list[float], threshold: float, max_clicks: int) -> int:
    """Clicks until ``curve`` (Dice after 0, 1, ... clicks) first reaches ``threshold``; ``max_clicks``
    + 1 when it never does.

    >>> noc([0.8, 0.86, 0.91], 0.85, 2), noc([0.8, 0.84], 0.9, 1)
    (1, 2)
    """
    return next((i for i, d in enumerate(curve) if d >= threshold), max_clicks + 1)


def run_case(
    client, image: str, truth: np.ndarray, model: str, labels: dict[str, int], clicks: int, annotator: str
) -> dict:
    """The auto model, the twin's auto mode, then ``clicks`` simulated clicks on one image."""
    auto_file, _ = client.infer(model, image, {"result_extension": ".nii.gz"})
    twin = model + TWIN_SUFFIX
    start_file, _ = client.infer(twin, image, {"result_extension": ".nii.gz", "reset_state": True})
    shown = read_label(start_file)
    first = rounded(label_dice(shown, truth, labels))
    curve = [mean_dice(shown, truth, labels)]
    points: dict[str, list[list[int]]] = {name: [] for name in [*labels, BACKGROUND]}
    latencies, server, kinds = [], [], []
    for _ in range(clicks):
        click = annotator_click(shown, truth, labels, annotator)
        if click is None:
            break
        segment = click.label if click.kind == "foreground" else BACKGROUND
        points[segment].append(list(click.point))
        params = {**points, "label": segment, "result_extension": ".nii.gz"}
        t = time.perf_counter()
        result, reply = client.infer(twin, image, params)
        latencies.append(time.perf_counter() - t)
        server.append(reply.get("latencies", {}))
        kinds.append(click.kind)
        shown = read_label(result)
        curve.append(mean_dice(shown, truth, labels))
    falls = [i for i in range(1, len(curve)) if curve[i] < curve[i - 1] - 1e-9]
    drops = [curve[i - 1] - curve[i] for i in falls]
    return {
        "auto_model_dice": mean_dice(read_label(auto_file), truth, labels),
        "twin_auto_dice": curve[0],
        "dice_after_clicks": [round(d, 6) for d in curve],
        "label_dice_before_clicks": first,
        "label_dice_after_clicks": rounded(label_dice(shown, truth, labels)),
        "click_kinds": kinds,
        "noc85": noc(curve, 0.85, clicks),
        "noc90": noc(curve, 0.90, clicks),
        "clicks_after_which_dice_fell": falls,
        "largest_fall": max(drops, default=0.0),
        "click_seconds": [round(s, 3) for s in latencies],
        "server_latencies": server,
    }


def mean_curve(cases: list[dict]) -> list[float]:
    """The mean over ``cases`` of the Dice after each click; a case whose annotator stopped early keeps
    its last Dice.

    >>> mean_curve([{"dice_after_clicks": [0.5, 0.7]}, {"dice_after_clicks": [0.9]}])
    [0.7, 0.8]
    """
    curves = [c["dice_after_clicks"] for c in cases]
    n = max(len(curve) for curve in curves)
    padded = [curve + curve[-1:] * (n - len(curve)) for curve in curves]
    return [round(statistics.mean(column), 6) for column in zip(*padded, strict=True)]


def summarise(cases: list[dict]) -> dict:
    """Means and medians over ``cases`` (results of :func:`run_case`)."""
    every = [s for c in cases for s in c["click_seconds"]]
    curve = mean_curve(cases)
    return {
        "cases": len(cases),
        "auto_model_dice_mean": statistics.mean(c["auto_model_dice"] for c in cases),
        "twin_auto_dice_mean": statistics.mean(c["twin_auto_dice"] for c in cases),
        "dice_after_3_clicks_mean": statistics.mean(
            c["dice_after_clicks"][min(3, len(c["dice_after_clicks"]) - 1)] for c in cases
        ),
        "dice_after_all_clicks_mean": statistics.mean(c["dice_after_clicks"][-1] for c in cases),
        "noc85_mean": statistics.mean(c["noc85"] for c in cases),
        "noc90_mean": statistics.mean(c["noc90"] for c in cases),
        "noc90_median": statistics.median(c["noc90"] for c in cases),
        "mean_dice_after_clicks": curve,
        "clicks_after_which_mean_dice_fell": [i for i in range(1, len(curve)) if curve[i] < curve[i - 1]],
        "cases_where_dice_fell": sum(bool(c["clicks_after_which_dice_fell"]) for c in cases),
        "largest_fall": max(c["largest_fall"] for c in cases),
        "click_seconds_median": statistics.median(every) if every else None,
        "click_seconds_max": max(every) if every else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ct_organs", help="built-in model whose twin is clicked")
    parser.add_argument(
        "--generated", type=int, default=2, help="new phantom cases besides the held-out ones"
    )
    parser.add_argument("--clicks", type=int, default=10, help="clicks per case at most")
    parser.add_argument("--faint", help="also a copy of every case with this label made faint")
    parser.add_argument("--faint-factor", type=float, default=0.2, help="contrast kept by --faint")
    parser.add_argument(
        "--annotator",
        choices=("largest", "worst"),
        default="largest",
        help="click the largest error of any label, or the lowest-Dice label's largest error",
    )
    args = parser.parse_args()
    labels = get_preset(args.model).labels
    client_module = slicer_client_module()
    with tempfile.TemporaryDirectory(prefix="clicks-") as tmp_dir:
        tmp = Path(tmp_dir)
        studies = copy_datastore(SAMPLE_CT, tmp / "studies", HELD_OUT)
        names = HELD_OUT + add_generated(studies, args.generated)
        if args.faint:
            names += add_faint(studies, names, labels[args.faint], args.faint_factor)
        conf = {"models": args.model, "interactive": "true"}
        server = Server(studies, tmp / "models", tmp / "server.log", conf=conf)
        try:
            client = client_module.MONAILabelClient(server.url, tmpdir=str(tmp / "client"))
            cases = {}
            for name in names:
                image = name.removesuffix(".nii.gz")
                truth = read_label(str(studies / "labels" / "final" / name))
                cases[image] = run_case(client, image, truth, args.model, labels, args.clicks, args.annotator)
        finally:
            server.stop()
    groups = {"sample": [c for n, c in cases.items() if not n.startswith("faint_")]}
    if args.faint:
        groups["faint"] = [c for n, c in cases.items() if n.startswith("faint_")]
    summary = {
        "bench": "clicks",
        "date": datetime.date.today().isoformat(),
        "model": args.model,
        "max_clicks": args.clicks,
        "annotator": args.annotator,
        "faint": {"label": args.faint, "factor": args.faint_factor} if args.faint else None,
        **{group: summarise(members) for group, members in groups.items()},
        "per_case": cases,
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
