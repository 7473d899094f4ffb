/**
 * A schema of ours compiled for a message the server takes thousands of times a second (the
 * statistics report: every volunteer, every second, docs/design.md §5.4). Zod's parse copies
 * the payload field by field, with a result object per field; at 10,000 reports a second that
 * was a tenth of the server's time and much of its garbage (docs/benchmarks.md, "Statistics
 * checked in place").
 * Here the Zod schema stays the one definition: it is turned into JSON Schema
 * (`z.toJSONSchema`) and compiled by Ajv into a function that checks the parsed JSON in place
 * and allocates nothing when it passes. Unknown keys are dropped from the payload itself, as
 * Zod's object drops them from its copy.
 *
 * Ajv only ever says yes faster: whatever it refuses goes to Zod, whose message is the one the
 * volunteer hears, and whose verdict stands (so the two can disagree only by Ajv accepting what
 * Zod refuses, which compiled-schema.test.ts looks for over many random payloads).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { validate } from '@meshgrad/core';
import { z } from 'zod';

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const ajv = new Ajv2020({
  // JSON cannot carry NaN, but 1e400 parses to Infinity: refused, as Zod's number refuses it.
  strictNumbers: true,
  removeAdditional: 'all',
  allErrors: false,
  // String lengths in UTF-16 units and regular expressions without the `u` flag, as Zod has them.
  // (Ajv calls the first option deprecated and says so through its logger at construction; its
  // strict mode still throws on a schema it cannot compile, which is all the logger would add.)
  unicode: false,
  unicodeRegExp: false,
  logger: false,
});

/** Zod types whose JSON Schema says exactly what Zod accepts. */
const EXACT_TYPES = new Set(['object', 'string', 'number', 'boolean', 'array', 'optional', 'enum']);
/** Zod checks likewise (`z.toJSONSchema` silently leaves out refinements, which are not here). */
const EXACT_CHECKS = new Set([
  'min_length',
  'max_length',
  'greater_than',
  'less_than',
  'string_format/regex',
  'number_format/safeint',
]);

interface ZodInternals {
  readonly _zod: {
    readonly def: {
      readonly type: string;
      readonly checks?: ReadonlyArray<{ readonly _zod: { readonly def: ZodCheckDef } }>;
      readonly shape?: Record<string, unknown>;
      readonly catchall?: unknown;
      readonly element?: unknown;
      readonly innerType?: unknown;
    };
  };
}
interface ZodCheckDef {
  readonly check: string;
  readonly format?: string;
}

/** Throws unless every part of `schema` is one whose JSON Schema is exact (see `compileSchema`). */
function assertExact(schema: unknown, at: string): void {
  const def = (schema as ZodInternals)._zod.def;
  if (!EXACT_TYPES.has(def.type))
    throw new Error(`${at}: a Zod ${def.type} has no exact JSON Schema`);
  if (def.type === 'object' && def.catchall !== undefined) {
    throw new Error(`${at}: an object that keeps or refuses unknown keys has no exact JSON Schema`);
  }
  for (const c of def.checks ?? []) {
    const name = c._zod.def.format ? `${c._zod.def.check}/${c._zod.def.format}` : c._zod.def.check;
    if (!EXACT_CHECKS.has(name))
      throw new Error(`${at}: the check ${name} has no exact JSON Schema`);
  }
  for (const [key, child] of Object.entries(def.shape ?? {})) assertExact(child, `${at}.${key}`);
  if (def.element !== undefined) assertExact(def.element, `${at}[]`);
  if (def.innerType !== undefined) assertExact(def.innerType, at);
}

/**
 * The check of `schema` as a function. Throws when the schema holds anything whose JSON Schema
 * would accept more than Zod does (a refinement, a transform, a strict object, a custom type):
 * such a schema has no compiled form and keeps `validate`.
 */
export function compileSchema<T>(schema: z.ZodType<T>): (payload: unknown) => Checked<T> {
  assertExact(schema, '(payload)');
  const check = ajv.compile(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }));
  return (payload) =>
    check(payload) ? { ok: true, value: payload as T } : validate(schema, payload);
}
