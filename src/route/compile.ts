/**
 * Rules compiled once (at start, on reload) into closures: regexes built, CIDRs parsed,
 * SOP Class keywords resolved, each decision object made in advance. Evaluating a rule then
 * runs its conditions and returns a shared, frozen decision: nothing is parsed or allocated
 * per instance beyond the attribute values a condition asks for.
 */
import { sopClassKeywordOf, sopClassUidOf } from '../dicom/sop-classes.js';
import { GatewayError } from '../errors.js';
import { AddressSet } from '../net/cidr.js';
import { normalizePrefix } from '../store/keys.js';
import type { RouteFacts } from './facts.js';
import { ROUTE_KEYWORDS, isRouteKeyword } from './keywords.js';
import {
  listOf,
  matchesEverything,
  parseStatus,
  type RoutingConfig,
  type RuleConfig,
} from './rules-schema.js';
import { compileValueCondition, type ValueCondition } from './value-match.js';

export interface AcceptDecision {
  readonly rule: string;
  readonly action: 'accept';
  readonly store: string;
  /** Normalized (no leading or trailing `/`), '' for none. */
  readonly prefix: string;
  readonly destinations: readonly string[];
  readonly labels: readonly string[];
}

export interface RejectDecision {
  readonly rule: string;
  readonly action: 'reject';
  /** The C-STORE-RSP status (PS3.4 B.2.3). */
  readonly status: number;
  /** For the log. */
  readonly reason: string;
}

export type RouteDecision = AcceptDecision | RejectDecision;

/** What a condition looked at: one value, several, or none (absent). */
export type Seen = string | readonly string[] | undefined;

export interface CompiledCondition {
  /** As the rule writes it: `callingAe`, `address`, `sopClass`, `tags.PatientName`. */
  readonly field: string;
  /** `association`: known when the association is requested, before any instance. */
  readonly level: 'association' | 'instance';
  /** How it reads: `= "CT"`, `one of "CT", "MR"`, `in 10.0.0.0/8`. */
  readonly expected: string;
  readonly seen: (facts: RouteFacts) => Seen;
  readonly test: (facts: RouteFacts) => boolean;
}

export interface CompiledRule {
  readonly name: string;
  readonly conditions: readonly CompiledCondition[];
  readonly associationOnly: boolean;
  readonly decision: RouteDecision;
}

export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
}

/** Compiles validated rules (routingSchema); throws GW_ERR_CONFIG if the list could fall through. */
export function compileRules(routing: RoutingConfig): CompiledRules {
  const last = routing.rules[routing.rules.length - 1];
  if (!last || !matchesEverything(last.match)) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      'routing.rules must end with a rule matching everything',
    );
  }
  return Object.freeze({ rules: Object.freeze(routing.rules.map(compileRule)) });
}

function compileRule(rule: RuleConfig): CompiledRule {
  const m = rule.match;
  const conditions: CompiledCondition[] = [];
  // Cheapest first: association facts, then the SOP class the command names, then attributes.
  if (m.callingAe !== undefined) {
    conditions.push(
      valueCondition('callingAe', 'association', m.callingAe, 'AE', (f) => f.callingAe.trim()),
    );
  }
  if (m.calledAe !== undefined) {
    conditions.push(
      valueCondition('calledAe', 'association', m.calledAe, 'AE', (f) => f.calledAe.trim()),
    );
  }
  if (m.address !== undefined) conditions.push(addressCondition(listOf(m.address)));
  if (m.sopClass !== undefined) conditions.push(sopClassCondition(listOf(m.sopClass)));
  if (m.modality !== undefined) {
    conditions.push(
      valueCondition('modality', 'instance', m.modality, 'CS', (f) => f.attributes('Modality')),
    );
  }
  for (const [keyword, cond] of Object.entries(m.tags ?? {})) {
    if (!isRouteKeyword(keyword)) {
      throw new GatewayError('GW_ERR_CONFIG', `rule "${rule.name}": unknown keyword ${keyword}`);
    }
    const vr = ROUTE_KEYWORDS[keyword][1];
    conditions.push(
      valueCondition(`tags.${keyword}`, 'instance', cond, vr, (f) => f.attributes(keyword)),
    );
  }
  return Object.freeze({
    name: rule.name,
    conditions: Object.freeze(conditions),
    associationOnly: conditions.every((c) => c.level === 'association'),
    decision: decisionOf(rule),
  });
}

function decisionOf(rule: RuleConfig): RouteDecision {
  if (rule.action === 'reject') {
    return Object.freeze({
      rule: rule.name,
      action: 'reject',
      // The schema requires it; A700 (out of resources, the sender retries) if compiled unchecked.
      status: rule.status !== undefined ? parseStatus(rule.status) : 0xa700,
      reason: rule.reason ?? `refused by routing rule "${rule.name}"`,
    });
  }
  return Object.freeze({
    rule: rule.name,
    action: 'accept',
    store: rule.store ?? 'default',
    prefix: normalizePrefix(rule.prefix ?? ''),
    destinations: Object.freeze([...(rule.destinations ?? [])]),
    labels: Object.freeze([...(rule.labels ?? [])]),
  });
}

function valueCondition(
  field: string,
  level: CompiledCondition['level'],
  cond: ValueCondition,
  vr: string,
  seen: (facts: RouteFacts) => Seen,
): CompiledCondition {
  const { expected, presence, test } = compileValueCondition(cond, vr);
  const matches =
    presence !== undefined
      ? (f: RouteFacts) => hasValue(seen(f)) === presence
      : (f: RouteFacts) => anyValue(seen(f), test);
  return Object.freeze({ field, level, expected, seen, test: matches });
}

function addressCondition(entries: readonly string[]): CompiledCondition {
  const set = AddressSet.parse(entries);
  // BlockList.check() builds a SocketAddress per call; an association sends many instances
  // from one address, so the last answer is kept (it depends on the address alone).
  let lastAddress: string | undefined;
  let lastResult = false;
  return Object.freeze({
    field: 'address',
    level: 'association',
    expected: `in ${entries.join(', ')}`,
    seen: (f: RouteFacts) => f.address,
    test: (f: RouteFacts) => {
      if (f.address !== lastAddress) {
        lastResult = set.has(f.address);
        lastAddress = f.address;
      }
      return lastResult;
    },
  });
}

function sopClassCondition(entries: readonly string[]): CompiledCondition {
  const uids = new Set<string>();
  for (const e of entries) {
    const uid = sopClassUidOf(e);
    if (uid === undefined) throw new GatewayError('GW_ERR_CONFIG', `unknown SOP class ${e}`);
    uids.add(uid);
  }
  const names = [...uids].map((u) => sopClassKeywordOf(u) ?? u);
  const seen = (f: RouteFacts): string | undefined =>
    f.sopClassUid ?? f.attributes('SOPClassUID')?.[0];
  return Object.freeze({
    field: 'sopClass',
    level: 'instance',
    expected: names.length === 1 ? `= ${names[0]}` : `one of ${names.join(', ')}`,
    seen,
    test: (f: RouteFacts) => {
      const uid = seen(f);
      return uid !== undefined && uids.has(uid);
    },
  });
}

function hasValue(v: Seen): boolean {
  return v !== undefined && (typeof v === 'string' ? v !== '' : v.length > 0);
}

/** Multi-valued attributes match when any value matches (no allocation: plain loop). */
function anyValue(v: Seen, test: (value: string) => boolean): boolean {
  if (v === undefined) return false;
  if (typeof v === 'string') return test(v);
  for (let i = 0; i < v.length; i++) if (test(v[i]!)) return true;
  return false;
}
