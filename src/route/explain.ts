/**
 * Why an instance goes where it goes: every rule up to the one that matched, each condition
 * with the value it saw. `route test` prints this; it decides as `route` does (a test checks
 * that they agree) but evaluates every condition of a rule instead of stopping at the first
 * that fails, so the output shows everything that was looked at.
 */
import { sopClassKeywordOf } from '../dicom/sop-classes.js';
import { GatewayError } from '../errors.js';
import type { CompiledRules, RouteDecision, Seen } from './compile.js';
import type { RouteFacts } from './facts.js';

export interface ConditionTrace {
  readonly field: string;
  readonly expected: string;
  readonly seen: Seen;
  readonly ok: boolean;
}

export interface RuleTrace {
  readonly rule: string;
  readonly matched: boolean;
  readonly conditions: readonly ConditionTrace[];
}

export interface Explanation {
  readonly decision: RouteDecision;
  /** The rules evaluated, in order; the last one matched. */
  readonly rules: readonly RuleTrace[];
}

export function explain(compiled: CompiledRules, facts: RouteFacts): Explanation {
  const rules: RuleTrace[] = [];
  for (const rule of compiled.rules) {
    const conditions = rule.conditions.map((c) => ({
      field: c.field,
      expected: c.expected,
      seen: c.seen(facts),
      ok: c.test(facts),
    }));
    const matched = conditions.every((c) => c.ok);
    rules.push({ rule: rule.name, matched, conditions });
    if (matched) return { decision: rule.decision, rules };
  }
  // compileRules() guarantees that the last rule matches everything.
  throw new GatewayError('GW_ERR_INTERNAL', 'routing rules fell through');
}

/** The `--json` object of one file (docs/routing.md): the issue's fixed shape. */
export interface RouteTestJson {
  file: string;
  rule: string;
  action: 'accept' | 'reject';
  status?: string;
  store?: string;
  key?: string;
  destinations: string[];
  labels: string[];
}

/** DIMSE statuses as PS3.7 writes them: four upper-case hex digits (`A700`). */
export function formatStatus(status: number): string {
  return status.toString(16).toUpperCase().padStart(4, '0');
}

export function explanationJson(file: string, e: Explanation, key?: string): RouteTestJson {
  const d = e.decision;
  if (d.action === 'reject') {
    return {
      file,
      rule: d.rule,
      action: 'reject',
      status: formatStatus(d.status),
      destinations: [],
      labels: [],
    };
  }
  return {
    file,
    rule: d.rule,
    action: 'accept',
    store: d.store,
    ...(key !== undefined ? { key } : {}),
    destinations: [...d.destinations],
    labels: [...d.labels],
  };
}

/**
 *   ct.dcm: rule "everything-else": accept
 *     store default, key studies/1.2/series/1.3/instances/1.4.dcm
 *     destinations (none), labels (none)
 *     rule "mammo": no
 *       modality = "MG": saw "CT" -> no
 *     rule "everything-else": matches (no conditions)
 */
export function explanationText(file: string, e: Explanation, key?: string): string {
  const d = e.decision;
  const lines = [`${file}: rule "${d.rule}": ${d.action}`];
  if (d.action === 'reject') {
    lines.push(`  status ${formatStatus(d.status)}, reason: ${d.reason}`);
  } else {
    lines.push(`  store ${d.store}, key ${key ?? `(${d.prefix || 'no prefix'})`}`);
    lines.push(`  destinations ${list(d.destinations)}, labels ${list(d.labels)}`);
  }
  for (const r of e.rules) {
    const verdict = r.matched ? 'matches' : 'no';
    lines.push(
      `  rule "${r.rule}": ${verdict}${r.conditions.length === 0 ? ' (no conditions)' : ''}`,
    );
    for (const c of r.conditions) {
      const seen = showSeen(c.seen);
      // A SOP class UID is easier to read with its keyword beside it.
      const keyword =
        c.field === 'sopClass' && typeof c.seen === 'string'
          ? sopClassKeywordOf(c.seen)
          : undefined;
      const shown = keyword ? `${seen} (${keyword})` : seen;
      lines.push(`    ${c.field} ${c.expected}: saw ${shown} -> ${c.ok ? 'yes' : 'no'}`);
    }
  }
  return lines.join('\n') + '\n';
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

function showSeen(v: Seen): string {
  if (v === undefined) return '(absent)';
  if (typeof v === 'string') return JSON.stringify(v);
  return v.map((s) => JSON.stringify(s)).join(', ');
}
