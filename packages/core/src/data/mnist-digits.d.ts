/** One module per digit; the `mnist` package stores each as `{ "data": [...] }`. */
export interface DigitModule {
  readonly default: { readonly data: readonly number[] };
}

/** Imports the `mnist` package's ten per-digit JSON files, digits 0..9 in order. */
export function importDigitModules(): Promise<readonly DigitModule[]>;
