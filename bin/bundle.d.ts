// Types of what scripts import from bin/bundle.js (plain JavaScript: the CLI's entry, run before any bundle).
export declare const familyOf: (args: ReadonlyArray<string>) => string
export declare const runtimeFlags: (family: string) => {
  readonly beforeInit: ReadonlyArray<string>
  readonly afterInit: ReadonlyArray<string>
}
