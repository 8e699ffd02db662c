/**
 * A run's archive as tests read it, in either layout: the session logs (`archive_01.jsonl`, one record a
 * line with its call's name first; `.jsonl.gz`: one gzip member a record) or the per-call files of older
 * versions (`task_0007_c02.json(.gz)`). Read independently of src/services/runArchive.ts.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"

export interface ArchiveRecord {
  /** The call's name: `task_0007_c02.json`. */
  readonly file: string
  /** The file holding it, relative to the run directory (`archive_01.jsonl`, or the per-call file). */
  readonly log: string
  readonly record: any
}

/** The text of a file, gunzipped when it ends in .gz. */
export const readMaybeGz = (file: string): string => {
  const bytes = readFileSync(file)
  return file.endsWith(".gz") ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8")
}

/** The records of one archive log (lines that are not a complete record are skipped). */
export const logRecords = (file: string): Array<any> =>
  readMaybeGz(file).split("\n").flatMap((line) => {
    try {
      return line === "" ? [] : [JSON.parse(line)]
    } catch {
      return []
    }
  })

/** Every archived call of a run directory, in name order. */
export const archiveRecords = (runDir: string): Array<ArchiveRecord> =>
  readdirSync(runDir).sort().flatMap((f): Array<ArchiveRecord> => {
    if (/^task_\d+_c\d+\.json(\.gz)?$/.test(f)) {
      return [{ file: f.replace(/\.gz$/, ""), log: f, record: JSON.parse(readMaybeGz(join(runDir, f))) }]
    }
    if (!/^archive_\d+\.jsonl(\.gz)?$/.test(f)) return []
    return logRecords(join(runDir, f)).map((record) => ({ file: record.name as string, log: f, record }))
  }).sort((a, b) => a.file.localeCompare(b.file))

/**
 * Whether `ref` (a row's or reject's `raw_output_path`, relative to `base`) names an archived call that
 * is there: `<log>#<name>` with the log holding a record of that name, or a per-call file.
 */
export const archiveHolds = (base: string, ref: string): boolean => {
  const [file, name] = ref.split("#")
  if (!existsSync(join(base, file))) return false
  return name === undefined || logRecords(join(base, file)).some((r) => r.name === name)
}
