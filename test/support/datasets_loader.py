"""One long-lived loader for the test suite (test/support/python.ts): imports HuggingFace `datasets` once,
then answers requests with scripts/load_with_datasets.py's own `loaded` (the load SkyRL does), so a test
file pays the import (~2 s of CPU) once rather than per load.

Each stdin line is a request, {"files": [...], "decode": bool}; each answer is one stdout line,
{"rows": [...]} or {"error": "<the exception's traceback>"}. It prints {"ready": "<datasets version>"}
once ready, or {"missing": "..."} and exits when this Python has no `datasets`; it exits at the end of its
input (when the test worker exits).
"""
import json
import pathlib
import sys
import traceback

try:
    import datasets
except ImportError as e:  # not this Python: the caller tries the next one, or skips the round trip
    sys.stdout.write(json.dumps({"missing": str(e)}) + "\n")
    sys.exit(0)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import load_with_datasets  # noqa: E402

datasets.disable_progress_bars()


def answer(line):
    request = json.loads(line)
    try:
        return {"rows": load_with_datasets.loaded(datasets, request["files"], request["decode"])}
    except Exception:  # the test reads the failure (e.g. features that cannot be aligned)
        return {"error": traceback.format_exc()}


def main():
    sys.stdout.write(json.dumps({"ready": datasets.__version__}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(line), ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
