/**
 * Evaluating compiled rules: `route` for an instance (first match wins), `couldAccept` for an
 * association before any instance arrives. Pure and allocation-free on the hot path: a rule's
 * decision object is made once at compile time and returned as is.
 */
import type { CompiledRule, CompiledRules, RouteDecision } from './compile.js';
import { NO_ATTRIBUTES, type RouteFacts } from './facts.js';

/** The decision for one instance. The last rule matches everything, so there always is one. */
export function route(compiled: CompiledRules, facts: RouteFacts): RouteDecision {
  const rules = compiled.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (holds(rule, facts)) return rule.decision;
  }
  // compileRules() refuses a list whose last rule does not match everything.
  return rules[rules.length - 1]!.decision;
}

function holds(rule: CompiledRule, facts: RouteFacts): boolean {
  const conditions = rule.conditions;
  for (let j = 0; j < conditions.length; j++) if (!conditions[j]!.test(facts)) return false;
  return true;
}

export interface AssociationFacts {
  readonly callingAe: string;
  readonly calledAe: string;
  readonly address: string;
}

/**
 * PS3.8 Table 9-21, A-ASSOCIATE-RJ reasons when the source is the service-user:
 * 1 no-reason-given, 3 calling-AE-title-not-recognized, 7 called-AE-title-not-recognized.
 */
export const AssociateRjReason = {
  NoReasonGiven: 1,
  CallingAeNotRecognized: 3,
  CalledAeNotRecognized: 7,
} as const;

export type AssociationVerdict =
  | { readonly accept: true }
  | {
      readonly accept: false;
      /** The rule that would reject every instance of this association. */
      readonly rule: string;
      readonly reason: (typeof AssociateRjReason)[keyof typeof AssociateRjReason];
      /** For the log. */
      readonly why: string;
    };

const ACCEPT: AssociationVerdict = Object.freeze({ accept: true });

/**
 * Whether any instance sent on this association could be accepted. Walks the rules as
 * `route` would, with only the association known: a rule whose association conditions fail
 * can match no instance; an accept rule whose association conditions hold might match one;
 * a reject rule that tests nothing but the association rejects every instance that reaches
 * it. So the association is refused (A-ASSOCIATE-RJ, permanent) when such a reject rule is
 * reached before any accept rule that might match: every C-STORE would fail anyway, and a
 * sender told at association time does not queue the study for retries.
 */
export function couldAccept(compiled: CompiledRules, assoc: AssociationFacts): AssociationVerdict {
  const facts: RouteFacts = { ...assoc, attributes: NO_ATTRIBUTES };
  /** Accept rules passed over: did one fail only on the called AE title? Another otherwise? */
  let skippedOnCalled = false;
  let skippedOnCalling = false;
  for (const rule of compiled.rules) {
    const failed = rule.conditions.filter((c) => c.level === 'association' && !c.test(facts));
    if (failed.length > 0) {
      if (rule.decision.action === 'accept') {
        if (failed.every((c) => c.field === 'calledAe')) skippedOnCalled = true;
        else skippedOnCalling = true;
      }
      continue;
    }
    if (rule.decision.action === 'accept') return ACCEPT;
    if (!rule.associationOnly) continue;
    const fields = new Set(rule.conditions.map((c) => c.field));
    const reason =
      fields.has('callingAe') || fields.has('address')
        ? AssociateRjReason.CallingAeNotRecognized
        : fields.has('calledAe')
          ? AssociateRjReason.CalledAeNotRecognized
          : skippedOnCalling
            ? AssociateRjReason.CallingAeNotRecognized
            : skippedOnCalled
              ? AssociateRjReason.CalledAeNotRecognized
              : AssociateRjReason.NoReasonGiven;
    return Object.freeze({
      accept: false,
      rule: rule.name,
      reason,
      why:
        `routing rule "${rule.name}" rejects every instance from calling AE ` +
        `"${assoc.callingAe}" at ${assoc.address} to "${assoc.calledAe}"`,
    });
  }
  // Unreachable for compiled rules: the last one matches everything.
  return ACCEPT;
}
