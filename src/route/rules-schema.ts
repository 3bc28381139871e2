/**
 * The schema of `routing` in the configuration: an ordered list of rules, first match wins
 * (docs/routing.md). Shape errors are zod's, with the key path; what zod cannot see (regexes
 * that do not compile, unknown keywords, bad statuses and dates, a list that does not end with
 * a rule matching everything) is checked here with a message that names the rule.
 * `routingReferenceIssues` checks the names a rule refers to (stores, destinations), which
 * live elsewhere in the configuration.
 */
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { sopClassUidOf } from '../dicom/sop-classes.js';
import { normalizePrefix } from '../store/keys.js';
import { AddressSet } from '../net/cidr.js';
import { ROUTE_KEYWORDS, isRouteKeyword } from './keywords.js';
import { conditionProblem, type ValueCondition } from './value-match.js';

const scalar = z.union([z.string(), z.number()]);

const operatorCondition = z
  .object({
    regex: z.string().min(1).optional(),
    ignoreCase: z.boolean().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    from: scalar.optional(),
    to: scalar.optional(),
    present: z.boolean().optional(),
  })
  .strict();

const valueCondition = z.union([scalar, z.array(scalar).min(1), operatorCondition], {
  error: 'expected a value, a list of values, or {regex}, {min, max}, {from, to}, {present}',
});

const oneOrMore = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
  error: 'expected a string or a non-empty list of strings',
});

const matchSchema = z
  .object({
    callingAe: valueCondition.optional(),
    calledAe: valueCondition.optional(),
    /** IP addresses and CIDR ranges (src/net/cidr.ts). */
    address: oneOrMore.optional(),
    modality: valueCondition.optional(),
    /** Storage SOP Class UIDs or keywords (src/dicom/sop-classes.ts). */
    sopClass: oneOrMore.optional(),
    /** Attributes by keyword (src/route/keywords.ts). */
    tags: z.record(z.string(), valueCondition).optional(),
  })
  .strict();

const label = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

const ruleSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[\x20-\x7e]+$/, 'printable ASCII'),
    match: matchSchema.default({}),
    action: z.enum(['accept', 'reject']),
    /** reject: the C-STORE-RSP status, four hex digits. */
    status: z
      .string({ error: 'expected the status as a quoted string of four hex digits, e.g. "A700"' })
      .optional(),
    /** reject: why, for the log. */
    reason: z.string().min(1).optional(),
    /** accept: the store's name (`default` unless given). */
    store: z.string().min(1).optional(),
    /** accept: a key prefix inside the store. */
    prefix: z.string().optional(),
    /** accept: the notify destinations to tell. */
    destinations: z.array(z.string().min(1)).optional(),
    /** accept: labels recorded with the instance. */
    labels: z.array(label).optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const fail = (path: (string | number)[], message: string): void => {
      ctx.addIssue({ code: 'custom', path, message: `rule "${rule.name}": ${message}` });
    };
    for (const problem of ruleProblems(rule)) fail(problem.path, problem.message);
  });

export const rulesSchema = z.array(ruleSchema).superRefine((rules, ctx) => {
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const first = seen.get(r.name);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'name'],
        message: `rule "${r.name}": the name is already used by rule ${first}`,
      });
    } else {
      seen.set(r.name, i);
    }
  });
  const last = rules[rules.length - 1];
  if (last && !matchesEverything(last.match)) {
    ctx.addIssue({
      code: 'custom',
      path: [rules.length - 1, 'match'],
      message:
        `rule "${last.name}" is the last rule but does not match everything ` +
        `(it tests ${Object.keys(last.match).join(', ')}); end the list with a rule whose match is {}`,
    });
  }
});

export const routingSchema = z
  .object({
    rules: rulesSchema.min(1, 'at least one rule (the last one matching everything)'),
  })
  .strict();

export type RoutingConfig = z.infer<typeof routingSchema>;
export type RuleConfig = z.infer<typeof ruleSchema>;
export type MatchConfig = z.infer<typeof matchSchema>;

export function matchesEverything(match: MatchConfig): boolean {
  const { tags, ...rest } = match;
  return Object.values(rest).every((v) => v === undefined) && Object.keys(tags ?? {}).length === 0;
}

interface Problem {
  path: (string | number)[];
  message: string;
}

/** What zod's shape checks cannot see in one rule. */
function ruleProblems(rule: RuleConfig): Problem[] {
  const out: Problem[] = [];
  const m = rule.match;
  const check = (path: (string | number)[], cond: ValueCondition | undefined, vr: string) => {
    const p = cond === undefined ? undefined : conditionProblem(cond, vr);
    if (p) out.push({ path, message: p });
  };
  check(['match', 'callingAe'], m.callingAe, 'AE');
  check(['match', 'calledAe'], m.calledAe, 'AE');
  check(['match', 'modality'], m.modality, 'CS');
  for (const [keyword, cond] of Object.entries(m.tags ?? {})) {
    if (!isRouteKeyword(keyword)) {
      out.push({
        path: ['match', 'tags', keyword],
        message: `"${keyword}" is not a keyword routing can test (see docs/routing.md for the list)`,
      });
    } else {
      check(['match', 'tags', keyword], cond, ROUTE_KEYWORDS[keyword][1]);
    }
  }
  for (const entry of listOf(m.address)) {
    try {
      AddressSet.parse([entry]);
    } catch (err) {
      out.push({ path: ['match', 'address'], message: (err as Error).message });
    }
  }
  for (const s of listOf(m.sopClass)) {
    if (sopClassUidOf(s) === undefined) {
      out.push({
        path: ['match', 'sopClass'],
        message: `"${s}" is neither a UID nor a Storage SOP Class keyword (PS3.6 Annex A)`,
      });
    }
  }
  const only = (keys: readonly (keyof RuleConfig)[], action: string) => {
    for (const k of keys) {
      if (rule[k] !== undefined)
        out.push({ path: [k], message: `${k} is only for action: ${action}` });
    }
  };
  if (rule.action === 'reject') {
    only(['store', 'prefix', 'destinations', 'labels'], 'accept');
    if (rule.status === undefined) {
      out.push({ path: ['status'], message: 'action reject needs a status, e.g. "A700"' });
    } else {
      const p = statusProblem(rule.status);
      if (p) out.push({ path: ['status'], message: p });
    }
  } else {
    only(['status', 'reason'], 'reject');
    if (rule.prefix !== undefined) {
      try {
        normalizePrefix(rule.prefix);
      } catch (err) {
        out.push({ path: ['prefix'], message: (err as Error).message });
      }
    }
  }
  return out;
}

export function listOf(v: string | readonly string[] | undefined): readonly string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : v;
}

/**
 * The failure statuses a C-STORE SCP may answer (PS3.4 B.2.3, Table B.2-1, and the general
 * ones of PS3.7 Annex C that PS3.7 9.1.1.1.9 lists for C-STORE). Warnings (B000, B006, B007)
 * are refused on purpose: they tell the sender the instance was stored, and a reject stores
 * nothing, so the sender would delete the only copy.
 */
const FAILURES = new Set([0x0110, 0x0111, 0x0117, 0x0122, 0x0124, 0x0210, 0x0211, 0x0212]);

function statusProblem(status: string): string | undefined {
  if (!/^[0-9A-Fa-f]{4}$/.test(status)) return `status "${status}" is not four hex digits`;
  const n = parseStatus(status);
  const failure =
    FAILURES.has(n) ||
    (n >= 0xa700 && n <= 0xa7ff) ||
    (n >= 0xa900 && n <= 0xa9ff) ||
    (n >= 0xc000 && n <= 0xcfff);
  if (failure) return undefined;
  const kind =
    n === 0 ? 'success' : n >= 0xb000 && n <= 0xbfff ? 'a warning' : 'not a C-STORE failure';
  return (
    `status "${status}" is ${kind}; a reject answers a failure: ` +
    '0110, 0111, 0117, 0122, 0124, 0210-0212, A700-A7FF, A900-A9FF or C000-CFFF (PS3.4 B.2.3)'
  );
}

export function parseStatus(status: string): number {
  return parseInt(status, 16);
}

/**
 * Names a rule refers to that the rest of the configuration must define. Paths are relative
 * to `routing`; config.ts adds them to its own issues. A set left undefined is not checked
 * (destinations do not exist yet).
 */
export function routingReferenceIssues(
  rules: readonly RuleConfig[],
  known: { stores?: readonly string[]; destinations?: readonly string[] },
): Problem[] {
  const out: Problem[] = [];
  rules.forEach((r, i) => {
    if (r.action !== 'accept') return;
    const store = r.store ?? 'default';
    if (known.stores && !known.stores.includes(store)) {
      out.push({
        path: ['rules', i, 'store'],
        message: `rule "${r.name}": no store named "${store}" (stores: ${known.stores.join(', ')})`,
      });
    }
    for (const d of r.destinations ?? []) {
      if (known.destinations && !known.destinations.includes(d)) {
        out.push({
          path: ['rules', i, 'destinations'],
          message: `rule "${r.name}": no destination named "${d}"`,
        });
      }
    }
  });
  return out;
}

/**
 * Validates `routing` on its own (for `route test --rules FILE`); throws GW_ERR_CONFIG
 * listing every problem with its key path, the rule's name beside its index.
 */
export function parseRouting(
  raw: unknown,
  source: string,
  known: { stores?: readonly string[]; destinations?: readonly string[] } = {},
): RoutingConfig {
  const result = routingSchema.safeParse(raw);
  const issues = result.success
    ? routingReferenceIssues(result.data.rules, known)
    : result.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message }));
  if (result.success && issues.length === 0) return result.data;
  const lines = issues.map(
    (i) => `  ${routingPathLabel(['routing', ...i.path], raw)}: ${i.message}`,
  );
  throw new GatewayError('GW_ERR_CONFIG', `invalid ${source}:\n${lines.join('\n')}`);
}

/** `routing.rules.1.match` -> `routing.rules.1(mammo).match`: a rule is known by its name. */
export function routingPathLabel(path: readonly PropertyKey[], rawRouting: unknown): string {
  const rules = (rawRouting as { rules?: unknown } | null)?.rules;
  return path
    .map((p, i) => {
      const rule =
        typeof p === 'number' && path[i - 1] === 'rules' && Array.isArray(rules)
          ? rules[p]
          : undefined;
      const name = (rule as { name?: unknown } | undefined)?.name;
      return typeof name === 'string' ? `${String(p)}(${name})` : String(p);
    })
    .join('.');
}
