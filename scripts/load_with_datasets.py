#!/usr/bin/env python3
"""Load dataset files exactly as SkyRL does and print the rows as JSON (one per line) on stdout.

SkyRL (skyrl/train/dataset/dataset.py) picks the loader by extension (.parquet -> "parquet",
.json/.jsonl -> "json") and merges all files with concatenate_datasets. Values that Arrow changed
(datetime objects, padded keys) are printed as they came back, so a caller can compare them with
what was written. With --decode, each row is printed as an environment sees it after
`plan_from_extras` (the decoding the README documents; the test suite checks the README holds this
very function). Usage: load_with_datasets.py [--decode] FILE [FILE ...]; bad usage exits 2.
"""
import argparse
import datetime
import json
import os
import sys


# --- plan_from_extras (README "Row layout") ---
def plan_from_extras(extras):
    """A row's plan as an environment needs it: the JSON-encoded parts decoded."""
    def json_list(value):
        # depends_on / derived_params: JSON text ("[1,2]"); rows written before that have a list, older ones nothing.
        return json.loads(value) if isinstance(value, str) else list(value or [])

    gt = extras["reward_spec"]["ground_truth"]
    steps = [
        {
            **s,
            "params": json.loads(s["params"]),
            # Rows written before param provenance lack these: every param literal, the tool name as call name.
            "call_name": s.get("call_name") or s["tool"],
            "depends_on": json_list(s.get("depends_on")),
            "derived_params": json_list(s.get("derived_params")),
        }
        for s in gt["tool_sequence"]
    ]
    tool_schemas = json.loads(gt.get("tool_schemas") or "{}")
    metadata = json.loads(extras["extra_info"]["task_metadata"])
    # None: the prompt's tools are unknown (no list, or the plan's tools filled in for a row that had none).
    unknown = not gt.get("available_tools") or metadata.get("available_tools_source") == "plan"
    available_tools = None if unknown else gt["available_tools"]
    return steps, gt["success"]["must_call_tool"], gt["max_turns"], tool_schemas, available_tools, metadata
# --- end plan_from_extras ---


def load(datasets, path):
    kind = "parquet" if path.endswith(".parquet") else "json"
    return datasets.load_dataset(kind, data_files=path, split="train")


def plain(value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return {"__arrow_changed__": "datetime", "value": value.isoformat()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def decoded(row):
    steps, must_call_tool, max_turns, tool_schemas, available_tools, metadata = plan_from_extras(row)
    return {"steps": steps, "must_call_tool": must_call_tool, "max_turns": max_turns,
            "tool_schemas": tool_schemas, "available_tools": available_tools, "metadata": metadata}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="load_with_datasets.py",
        description="Load dataset files exactly as SkyRL does (HuggingFace datasets, concatenated in order) "
        "and print the rows as JSON, one per line, on stdout.",
    )
    parser.add_argument("--decode", action="store_true",
                        help="print each row as an environment sees it after plan_from_extras")
    parser.add_argument("files", nargs="+", metavar="FILE", help="a .json, .jsonl or .parquet dataset file")
    args = parser.parse_args(argv)
    missing = [f for f in args.files if not os.path.isfile(f)]
    if missing:
        parser.error("no such file: " + ", ".join(missing))
    return args


def loaded(datasets, files, decode):
    """The files' rows as SkyRL loads them (concatenated in order), each as printed (or decoded with --decode)."""
    merged = datasets.concatenate_datasets([load(datasets, p) for p in files])
    return [plain(decoded(row) if decode else row) for row in merged]


def main(argv):
    args = parse_args(argv)
    import datasets  # seconds to import: after the arguments are checked, so --help and usage errors are quick

    datasets.disable_progress_bars()
    rows = loaded(datasets, args.files, args.decode)
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    sys.stderr.write(f"datasets {datasets.__version__}: {len(rows)} rows\n")


if __name__ == "__main__":
    main(sys.argv[1:])
