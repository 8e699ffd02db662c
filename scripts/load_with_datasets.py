#!/usr/bin/env python3
"""Load dataset files exactly as SkyRL does and print the rows as JSON (one per line) on stdout.

SkyRL (skyrl/train/dataset/dataset.py) picks the loader by extension (.parquet -> "parquet",
.json/.jsonl -> "json") and merges all files with concatenate_datasets. Values that Arrow changed
(datetime objects, padded keys) are printed as they came back, so a caller can compare them with
what was written. Usage: load_with_datasets.py FILE [FILE ...]
"""
import datetime
import json
import sys

import datasets


def load(path):
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


def main(paths):
    datasets.disable_progress_bars()
    merged = datasets.concatenate_datasets([load(p) for p in paths])
    for row in merged:
        sys.stdout.write(json.dumps(plain(row), ensure_ascii=False) + "\n")
    sys.stderr.write(f"datasets {datasets.__version__}: {len(merged)} rows\n")


if __name__ == "__main__":
    main(sys.argv[1:])
