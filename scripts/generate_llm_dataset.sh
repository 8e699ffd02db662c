#!/usr/bin/env bash
# generate_llm_dataset.sh: turn environment variables into one `skyrl generate` call.
#
# Every knob is validated here first; the values are then passed to `skyrl generate` as explicit flags
# and the knob variables are removed from the child's environment, so what was validated is what runs
# (no env fallback inside the generator can pick up something else). The generator's exit code is passed
# through (the script `exec`s it). Run `scripts/generate_llm_dataset.sh --help` for the variables.
#
# Portable to macOS's bash 3.2: no associative arrays, mapfile, ${var,,}, [[ -v ]], negative indices or
# &>>; arrays that may be empty are expanded as "${a[@]+"${a[@]}"}" (set -u safe).
set -u
unset CDPATH

PROG=generate_llm_dataset.sh
EX_OK=0
EX_USAGE=64
EX_CONFIG=78

# Defaults: the same values `skyrl generate` uses (test/wrapper.test.ts checks that they agree).
D_N_SAMPLES=10
D_OPENAI_MODEL=gpt-5-mini
D_OPENAI_BACKEND=responses
D_OPENAI_REASONING_EFFORT=high
D_COMPLEXITIES=simple:1,moderate:2,complex:1
D_MAX_TURNS=8
D_MAX_TOOLS=5
D_SEED=7
D_CONCURRENCY=4
D_MAX_ATTEMPTS=3
D_OPENAI_MAX_OUTPUT_TOKENS=32000
D_OPENAI_TIMEOUT=600
D_OPENAI_MAX_RETRIES=4
D_DATA_SOURCE=synthetic/llm
D_SKYRL_LLM=openai
D_SKYRL_LOG_FORMAT=pretty
D_RESUME=0

usage() {
  cat <<EOF
Usage: $PROG [--dry-run] [--verbose] [--help] OUTPUT_PATH

Makes a SkyRL dataset (env_class MCPToolEnv) by running \`skyrl generate\` with OpenAI, configured
from environment variables. OUTPUT_PATH ends in .json, .jsonl or .parquet; raw model answers are
archived in raw_llm/ next to it (or RAW_DIR).

Options:
  --dry-run   call no model: print the work plan, one request and the cost estimate (no key needed)
  --verbose   debug logs (skyrl --log-level debug) and print the command that is run
  --help, -h  this text
  --          end of options (for an OUTPUT_PATH that starts with -)

Environment (an empty value counts as unset):
  OPENAI_API_KEY            required (not for --dry-run or SKYRL_LLM=replay); never printed
  OPENAI_BASE_URL           OpenAI-compatible endpoint, an http(s) URL   (default: api.openai.com)
  N_SAMPLES                 valid rows to make, positive integer          (default: $D_N_SAMPLES)
  OPENAI_MODEL              model name                                    (default: $D_OPENAI_MODEL)
  OPENAI_BACKEND            responses | chat                              (default: $D_OPENAI_BACKEND)
  OPENAI_REASONING_EFFORT   minimal | low | medium | high                 (default: $D_OPENAI_REASONING_EFFORT)
  DOMAINS                   comma list of task domains                    (default: six finance domains)
  COMPLEXITIES              simple|moderate|complex[:weight],...          (default: $D_COMPLEXITIES)
  MAX_TURNS                 most agent turns per task, integer >= 2       (default: $D_MAX_TURNS)
  MAX_TOOLS                 most tool calls per plan, positive integer    (default: $D_MAX_TOOLS)
  SEED                      work-plan seed, non-negative integer          (default: $D_SEED)
  CONCURRENCY               samples in flight, positive integer           (default: $D_CONCURRENCY)
  MAX_ATTEMPTS              attempts per sample, positive integer         (default: $D_MAX_ATTEMPTS)
  OPENAI_RPM                requests per minute, positive integer         (default: no pacing)
  OPENAI_TPM                tokens per minute, positive integer           (default: no pacing)
  MAX_COST_USD              stop new calls past this spend, number > 0    (default: no cap)
  OPENAI_MAX_OUTPUT_TOKENS  output token limit per call, positive integer (default: $D_OPENAI_MAX_OUTPUT_TOKENS)
  OPENAI_TIMEOUT            seconds per HTTP attempt, number > 0          (default: $D_OPENAI_TIMEOUT)
  OPENAI_MAX_RETRIES        retries per call, non-negative integer        (default: $D_OPENAI_MAX_RETRIES)
  SKYRL_INVENTORY           tool inventory file                           (default: bundled finance inventory)
  SERVERS                   comma list of inventory servers to offer      (default: all)
  DATA_SOURCE               data_source column value                      (default: $D_DATA_SOURCE)
  RAW_DIR                   archive root for raw answers                  (default: raw_llm/ next to OUTPUT_PATH)
  RESUME                    1 to continue the last unfinished run, or 0   (default: $D_RESUME)
  SKYRL_LLM                 openai | replay (recorded answers, offline)   (default: $D_SKYRL_LLM)
  SKYRL_REPLAY_DIR          recorded answers for SKYRL_LLM=replay         (default: bundled data/replay)
  SKYRL_LOG_FORMAT          pretty | json (logs go to stderr)             (default: $D_SKYRL_LOG_FORMAT)

The environment class is always MCPToolEnv; it cannot be changed here.

Exit codes:
  0   success
  64  usage error (unknown option, missing or bad OUTPUT_PATH)
  78  missing or invalid configuration (a variable above, node, or an unbuilt project)
  *   any other non-zero code is skyrl generate's own (1 failure, 2 usage, 130 interrupted,
      143 terminated by SIGTERM)
EOF
}

usage_error() {
  printf '%s: %s\n' "$PROG" "$1" >&2
  printf 'Usage: %s [--dry-run] [--verbose] [--help] OUTPUT_PATH  (see --help)\n' "$PROG" >&2
  exit "$EX_USAGE"
}

# ---------------------------------------------------------------------------------------------- arguments
dry_run=0
verbose=0
output=""
have_output=0
while [ "$#" -gt 0 ]; do
  case $1 in
    --help | -h)
      usage
      exit "$EX_OK"
      ;;
    --dry-run) dry_run=1 ;;
    --verbose) verbose=1 ;;
    --)
      shift
      break
      ;;
    -?*) usage_error "unknown option: $1" ;;
    *)
      [ "$have_output" = 0 ] || usage_error "more than one OUTPUT_PATH: '$output' and '$1'"
      output=$1
      have_output=1
      ;;
  esac
  shift
done
while [ "$#" -gt 0 ]; do
  [ "$have_output" = 0 ] || usage_error "more than one OUTPUT_PATH: '$output' and '$1'"
  output=$1
  have_output=1
  shift
done
[ "$have_output" = 1 ] || usage_error "missing OUTPUT_PATH"
[ -n "$output" ] || usage_error "OUTPUT_PATH is empty"
case $(printf '%s' "$output" | tr '[:upper:]' '[:lower:]') in
  *.json | *.jsonl | *.parquet) ;;
  *) usage_error "OUTPUT_PATH must end in .json, .jsonl or .parquet: '$output'" ;;
esac
[ ! -d "$output" ] || usage_error "OUTPUT_PATH is a directory: '$output'"
# A path starting with - must not look like a flag to the generator.
case $output in
  -*) output=./$output ;;
esac

# ---------------------------------------------------------------------------------------------- checks
problems=0
bad() {
  printf '%s: %s\n' "$PROG" "$1" >&2
  problems=$((problems + 1))
}

# Non-empty digits only, at most 15 of them (well inside bash 3.2's 64-bit arithmetic).
is_uint() {
  case $1 in
    '' | *[!0-9]*) return 1 ;;
  esac
  [ "${#1}" -le 15 ]
}

# A plain decimal number: digits with at most one dot (12, 0.5, .5, 3.).
is_decimal() {
  case $1 in
    '' | . | *[!0-9.]* | *.*.*) return 1 ;;
  esac
  [ "${#1}" -le 20 ]
}

has_nonzero_digit() {
  case $1 in
    *[1-9]*) return 0 ;;
  esac
  return 1
}

# check_int NAME VALUE MIN: VALUE is an integer >= MIN (MIN is 0, 1 or 2).
check_int() {
  if ! is_uint "$2"; then
    if [ "$3" = 0 ]; then
      bad "$1 must be a non-negative integer, got '$2'"
    else
      bad "$1 must be an integer >= $3, got '$2'"
    fi
  elif [ "$((10#$2))" -lt "$3" ]; then
    bad "$1 must be an integer >= $3, got '$2'"
  fi
}

# check_positive_number NAME VALUE
check_positive_number() {
  if ! is_decimal "$2" || ! has_nonzero_digit "$2"; then
    bad "$1 must be a number greater than 0, got '$2'"
  fi
}

# check_choice NAME VALUE CHOICE...
check_choice() {
  local name=$1 value=$2 choice
  shift 2
  for choice in "$@"; do
    [ "$value" = "$choice" ] && return 0
  done
  bad "$name must be one of: $*; got '$value'"
}

trim() {
  local t=$1
  t=${t#"${t%%[![:space:]]*}"}
  t=${t%"${t##*[![:space:]]}"}
  printf '%s' "$t"
}

# check_list NAME VALUE: a comma list with at least one non-empty entry.
check_list() {
  local saved_ifs=$IFS entries entry
  IFS=,
  set -f
  entries=0
  for entry in $2; do
    [ -n "$(trim "$entry")" ] && entries=$((entries + 1))
  done
  set +f
  IFS=$saved_ifs
  [ "$entries" -gt 0 ] || bad "$1 must be a comma list with at least one entry, got '$2'"
}

# COMPLEXITIES: name[:weight],... with names simple|moderate|complex, weights >= 0, one of them > 0.
check_complexities() {
  local saved_ifs=$IFS positive ok part name weight
  IFS=,
  set -f
  positive=0
  ok=1
  for part in $1; do
    part=$(trim "$part")
    [ -n "$part" ] || continue
    name=$(trim "${part%%:*}")
    weight=1
    case $part in
      *:*:*)
        ok=0
        continue
        ;;
      *:*) weight=$(trim "${part#*:}") ;;
    esac
    case $name in
      simple | moderate | complex) ;;
      *) ok=0 ;;
    esac
    if is_decimal "$weight"; then
      has_nonzero_digit "$weight" && positive=1
    else
      ok=0
    fi
  done
  set +f
  IFS=$saved_ifs
  if [ "$ok" = 0 ] || [ "$positive" = 0 ]; then
    bad "COMPLEXITIES must look like simple:2,moderate:1,complex:1 (names simple, moderate, complex; weights >= 0, at least one > 0), got '$1'"
  fi
}

has_space() {
  case $1 in
    *[[:space:]]*) return 0 ;;
  esac
  return 1
}

# Read every knob (empty = unset = default).
n_samples=${N_SAMPLES:-$D_N_SAMPLES}
model=${OPENAI_MODEL:-$D_OPENAI_MODEL}
backend=${OPENAI_BACKEND:-$D_OPENAI_BACKEND}
effort=${OPENAI_REASONING_EFFORT:-$D_OPENAI_REASONING_EFFORT}
domains=${DOMAINS:-}
complexities=${COMPLEXITIES:-$D_COMPLEXITIES}
max_turns=${MAX_TURNS:-$D_MAX_TURNS}
max_tools=${MAX_TOOLS:-$D_MAX_TOOLS}
seed=${SEED:-$D_SEED}
concurrency=${CONCURRENCY:-$D_CONCURRENCY}
max_attempts=${MAX_ATTEMPTS:-$D_MAX_ATTEMPTS}
rpm=${OPENAI_RPM:-}
tpm=${OPENAI_TPM:-}
max_cost=${MAX_COST_USD:-}
max_output_tokens=${OPENAI_MAX_OUTPUT_TOKENS:-$D_OPENAI_MAX_OUTPUT_TOKENS}
timeout=${OPENAI_TIMEOUT:-$D_OPENAI_TIMEOUT}
retries=${OPENAI_MAX_RETRIES:-$D_OPENAI_MAX_RETRIES}
inventory=${SKYRL_INVENTORY:-}
servers=${SERVERS:-}
data_source=${DATA_SOURCE:-$D_DATA_SOURCE}
raw_dir=${RAW_DIR:-}
resume=${RESUME:-$D_RESUME}
llm=${SKYRL_LLM:-$D_SKYRL_LLM}
replay_dir=${SKYRL_REPLAY_DIR:-}
log_format=${SKYRL_LOG_FORMAT:-$D_SKYRL_LOG_FORMAT}
base_url=${OPENAI_BASE_URL:-}

check_int N_SAMPLES "$n_samples" 1
if [ -z "$(trim "$model")" ] || has_space "$model"; then bad "OPENAI_MODEL must be a model name without spaces, got '$model'"; fi
check_choice OPENAI_BACKEND "$backend" responses chat
check_choice OPENAI_REASONING_EFFORT "$effort" minimal low medium high
[ -z "$domains" ] || check_list DOMAINS "$domains"
check_complexities "$complexities"
check_int MAX_TURNS "$max_turns" 2
check_int MAX_TOOLS "$max_tools" 1
check_int SEED "$seed" 0
check_int CONCURRENCY "$concurrency" 1
check_int MAX_ATTEMPTS "$max_attempts" 1
[ -z "$rpm" ] || check_int OPENAI_RPM "$rpm" 1
[ -z "$tpm" ] || check_int OPENAI_TPM "$tpm" 1
[ -z "$max_cost" ] || check_positive_number MAX_COST_USD "$max_cost"
check_int OPENAI_MAX_OUTPUT_TOKENS "$max_output_tokens" 1
check_positive_number OPENAI_TIMEOUT "$timeout"
check_int OPENAI_MAX_RETRIES "$retries" 0
if [ -n "$inventory" ] && { [ ! -f "$inventory" ] || [ ! -r "$inventory" ]; }; then
  bad "SKYRL_INVENTORY is not a readable file: '$inventory'"
fi
[ -z "$servers" ] || check_list SERVERS "$servers"
[ -n "$(trim "$data_source")" ] || bad "DATA_SOURCE must not be blank"
if [ -n "$raw_dir" ] && [ -e "$raw_dir" ] && [ ! -d "$raw_dir" ]; then
  bad "RAW_DIR exists and is not a directory: '$raw_dir'"
fi
case $(printf '%s' "$resume" | tr '[:upper:]' '[:lower:]') in
  1 | true | yes) resume=1 ;;
  0 | false | no) resume=0 ;;
  *) bad "RESUME must be 1 or 0 (true/false, yes/no), got '$resume'" ;;
esac
check_choice SKYRL_LOG_FORMAT "$log_format" pretty json
case $llm in
  openai | replay) ;;
  *) bad "SKYRL_LLM must be openai or replay, got '$llm' (for --llm auto run skyrl generate directly)" ;;
esac
if [ -n "$replay_dir" ] && [ ! -e "$replay_dir" ]; then
  bad "SKYRL_REPLAY_DIR does not exist: '$replay_dir'"
fi
if [ -n "$base_url" ]; then
  case $base_url in
    http://[!/]* | https://[!/]*)
      if has_space "$base_url"; then bad "OPENAI_BASE_URL must be an http(s) URL without spaces, got '$base_url'"; fi
      ;;
    *) bad "OPENAI_BASE_URL must be an http(s) URL (http://host[:port]/path), got '$base_url'" ;;
  esac
fi
# The key: checked only when a model will be called; its value is never printed.
if [ "$dry_run" = 0 ] && [ "$llm" = openai ]; then
  key=${OPENAI_API_KEY:-}
  if [ -z "$(trim "$key")" ]; then
    bad "OPENAI_API_KEY is not set (or empty); export it, or use --dry-run to preview without a key"
  elif has_space "$key"; then
    bad "OPENAI_API_KEY contains whitespace (a copy-paste error?)"
  fi
  key=""
fi

# ---------------------------------------------------------------------------------------------- project
# Find the project from this script's own location (following symlinks to the script itself), without
# resolving directory symlinks, so a project path with spaces is used as given.
src=${BASH_SOURCE[0]}
while [ -L "$src" ]; do
  link_dir=$(cd -- "$(dirname -- "$src")" && pwd)
  src=$(readlink -- "$src")
  case $src in
    /*) ;;
    *) src=$link_dir/$src ;;
  esac
done
script_dir=$(cd -- "$(dirname -- "$src")" && pwd)
project_dir=$(dirname -- "$script_dir")
skyrl_bin=$project_dir/bin/skyrl.js

if ! command -v node >/dev/null 2>&1; then
  bad "node is not on PATH (Node >= 20.18.1 is needed)"
elif [ ! -f "$skyrl_bin" ] || [ ! -f "$project_dir/dist/bin.js" ]; then
  bad "skyrl is not built in '$project_dir': run npm ci (or npm run build) there"
fi

if [ "$problems" -gt 0 ]; then
  printf '%s: %s configuration problem(s); nothing was started (see --help)\n' "$PROG" "$problems" >&2
  exit "$EX_CONFIG"
fi

# ---------------------------------------------------------------------------------------------- run
global=()
[ "$verbose" = 0 ] || global+=(--log-level debug)
global+=(--log-format "$log_format")

args=(--out "$output" -n "$n_samples"
  --model "$model" --backend "$backend" --reasoning-effort "$effort"
  --complexities "$complexities" --max-turns "$max_turns" --max-tools "$max_tools" --seed "$seed"
  --concurrency "$concurrency" --max-attempts "$max_attempts"
  --max-output-tokens "$max_output_tokens" --timeout "$timeout" --retries "$retries"
  --data-source "$data_source" --llm "$llm")
[ -z "$domains" ] || args+=(--domains "$domains")
[ -z "$rpm" ] || args+=(--rpm "$rpm")
[ -z "$tpm" ] || args+=(--tpm "$tpm")
[ -z "$max_cost" ] || args+=(--max-cost "$max_cost")
[ -z "$inventory" ] || args+=(--inventory "$inventory")
[ -z "$servers" ] || args+=(--servers "$servers")
[ -z "$raw_dir" ] || args+=(--raw-dir "$raw_dir")
if [ "$llm" = replay ] && [ -n "$replay_dir" ]; then args+=(--replay-dir "$replay_dir"); fi
[ "$resume" = 0 ] || args+=(--resume)
[ "$dry_run" = 0 ] || args+=(--dry-run)

# Nothing but the flags above configures the run: drop the generator's env fallbacks, also those this script
# has no variable for (NEAR_DUP ... SKYRL_BATCH_*: they reached generate unchecked; run skyrl generate for them).
unset N_SAMPLES OPENAI_MODEL OPENAI_BACKEND OPENAI_REASONING_EFFORT DOMAINS COMPLEXITIES MAX_TURNS \
  MAX_TOOLS SEED CONCURRENCY MAX_ATTEMPTS OPENAI_RPM OPENAI_TPM MAX_COST_USD OPENAI_MAX_OUTPUT_TOKENS \
  OPENAI_TIMEOUT OPENAI_MAX_RETRIES SKYRL_INVENTORY SERVERS SKYRL_SERVERS DATA_SOURCE RAW_DIR RESUME \
  SKYRL_LLM SKYRL_REPLAY_DIR SKYRL_LOG_FORMAT \
  NEAR_DUP PERSONAS SUBJECTS AS_OF MAX_PROMPT_TOKENS SKYRL_BATCH_ENDPOINT SKYRL_BATCH_MAX_REQUESTS \
  SKYRL_BATCH_MAX_TOKENS SKYRL_BATCH_POLL_INTERVAL SKYRL_BATCH_REPAIRS
[ -n "$base_url" ] || unset OPENAI_BASE_URL

if [ "$verbose" = 1 ]; then
  printf '%s: running:' "$PROG" >&2
  printf ' %q' node "$skyrl_bin" "${global[@]+"${global[@]}"}" generate "${args[@]}" >&2
  printf '\n' >&2
fi
exec node "$skyrl_bin" "${global[@]+"${global[@]}"}" generate "${args[@]}"
