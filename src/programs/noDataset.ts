/**
 * What a command that wrote no dataset says about its --out (`convert`, `enrich` with every row rejected). An
 * empty dataset is never written (SkyRL's loader fails on one; `validate` reports it as contract/empty-file), and
 * an existing --out is neither removed nor renamed: the one there is an earlier run's, beside this run's rejects,
 * so the message says plainly that it does not match them.
 */
export const noDatasetWritten = (out: string, earlierOut: boolean): string =>
  (earlierOut
    ? `no dataset was written: the ${out} there is an earlier run's, left as it was, and does not match these rejects`
    : `${out} was not written`) +
  " (an empty dataset is never written: SkyRL's loader fails on one)"
