"""`magvit data inspect PATH`: videos, classes, frames, sizes and unreadable files of a dataset."""

from __future__ import annotations

import json

from magvit.core.data.inventory import inspect_videos


def register(sub) -> None:
    p = sub.add_parser("data", help="look at video datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ins = dsub.add_parser("inspect", help="count videos, classes, frames and resolutions; "
                                          "list files that cannot be read")
    ins.add_argument("path", help="a folder of videos (class = sub-folder) or one video file")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    ins.set_defaults(func=run_inspect)


def run_inspect(args) -> int:
    report = inspect_videos(args.path).to_dict()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    frames = report["frames"]
    print(f"{report['path']}: {report['videos']} videos, {report['readable']} readable, "
          f"{len(report['classes'])} classes")
    if report["classes"]:
        print("classes: " + ", ".join(f"{name} ({n})" for name, n in report["classes"].items()))
    if report["readable"]:
        print(f"frames: {frames['min']} to {frames['max']} per video "
              f"(mean {frames['mean']:g}, total {frames['total']})")
        for key in ("resolutions", "fps", "codecs"):
            print(f"{key}: " + ", ".join(f"{value} ({n})" for value, n in report[key].items()))
    if report["unreadable"]:
        print(f"unreadable ({len(report['unreadable'])}):")
        for item in report["unreadable"]:
            print(f"  {item['error']}")
    return 0
