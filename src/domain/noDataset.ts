/**
 * What a command that wrote no dataset says about its --out (`convert`, `enrich` with every row rejected, a
 * `generate` / `enrich` run or `batch collect` that made no row). An empty dataset is never written (SkyRL's
 * loader fails on one; `validate` reports it as contract/empty-file), and an existing --out is neither removed
 * nor renamed: the one there is an earlier run's, beside this run's rejects (and a run's archive), so the message
 * says plainly that it does not match them. `unlike` names what it does not match ("these rejects" where the
 * message has just named the rejects file; "this run" for a run's).
 */
export const noDatasetWritten = (out: string, earlierOut: boolean, unlike = "these rejects"): string =>
  (earlierOut
    ? `no dataset was written: the ${out} there is an earlier run's, left as it was, and does not match ${unlike}`
    : `${out} was not written`) +
  " (an empty dataset is never written: SkyRL's loader fails on one)"
