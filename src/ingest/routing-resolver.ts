/**
 * Routing wired into the C-STORE path: a DestinationResolver built from src/route/'s `route()`
 * (first matching rule), and the association-level check (`couldAccept()`) the negotiation
 * asks before an association is accepted.
 *
 * The rules can be replaced while the gateway runs (SIGHUP, src/cli/serve.ts): an association
 * keeps the rules it was accepted under, so new rules apply from the next association on.
 */
import type { AssociationInfo } from '../scp/association.js';
import type { AcceptDecision, CompiledRules, RejectDecision } from '../route/compile.js';
import { couldAccept, route } from '../route/evaluate.js';
import { headerAttributes } from '../route/facts.js';
import { ROUTE_KEYWORDS } from '../route/keywords.js';
import type { Destination, DestinationRefusal, DestinationResolver } from './destination.js';

/** The last tag a rule can test (keywords.ts): the header reader collects up to it. */
export const ROUTE_LAST_TAG = Math.max(...Object.values(ROUTE_KEYWORDS).map(([tag]) => tag));

/** What the association-level check answers when no rule could accept (A-ASSOCIATE-RJ). */
export interface AssociationRefusal {
  reason: number;
  why: string;
}

export class RoutingResolver {
  /** undefined: no routing configured, every instance goes to the primary store. */
  private current: CompiledRules | undefined;
  private readonly primary: Destination;
  /** The rules each association was accepted under. */
  private readonly byAssociation = new WeakMap<object, CompiledRules>();
  /** One Destination / refusal per decision, made on first use (decisions are frozen, shared). */
  private readonly made = new WeakMap<
    AcceptDecision | RejectDecision,
    Destination | DestinationRefusal
  >();

  /**
   * `stores`: every configured store as a destination without routing (its store prefix, its
   * commit), by name. Every rule's store must be there (config validation says so).
   */
  constructor(
    rules: CompiledRules | undefined,
    private readonly stores: ReadonlyMap<string, Destination>,
    primaryStore: string,
  ) {
    this.current = rules;
    const primary = stores.get(primaryStore);
    if (!primary) throw new Error(`no store named ${primaryStore}`);
    this.primary = primary;
  }

  get rules(): CompiledRules | undefined {
    return this.current;
  }

  /** The configured stores' names (a new rule may name only these). */
  get storeNames(): string[] {
    return [...this.stores.keys()];
  }

  /** New rules (undefined: none), for associations accepted from now on. */
  replace(rules: CompiledRules | undefined): void {
    this.current = rules;
  }

  /** Negotiation's hook: undefined to go on, or why the association is refused. */
  admitAssociation(
    assoc: { callingAeTitle: string; calledAeTitle: string; remoteAddress: string },
    key?: object,
  ): AssociationRefusal | undefined {
    const rules = this.current;
    if (rules === undefined) return undefined;
    if (key) this.byAssociation.set(key, rules);
    const v = couldAccept(rules, {
      callingAe: assoc.callingAeTitle,
      calledAe: assoc.calledAeTitle,
      address: assoc.remoteAddress,
    });
    return v.accept ? undefined : { reason: v.reason, why: v.why };
  }

  readonly resolve: DestinationResolver = (assoc, attrs, header) => {
    const rules = this.rulesOf(assoc);
    if (rules === undefined) return this.primary;
    const decision = route(rules, {
      callingAe: assoc.callingAeTitle,
      calledAe: assoc.calledAeTitle,
      address: assoc.remoteAddress,
      sopClassUid: attrs.sopClassUid,
      attributes: headerAttributes(header),
    });
    let d = this.made.get(decision);
    if (d === undefined) {
      d = this.destinationOf(decision);
      this.made.set(decision, d);
    }
    return d;
  };

  private rulesOf(assoc: AssociationInfo): CompiledRules | undefined {
    let rules = this.byAssociation.get(assoc);
    if (rules === undefined && this.current !== undefined) {
      // An association the negotiation hook did not see (tests driving Ingest directly).
      rules = this.current;
      this.byAssociation.set(assoc, rules);
    }
    return rules;
  }

  private destinationOf(
    decision: AcceptDecision | RejectDecision,
  ): Destination | DestinationRefusal {
    if (decision.action === 'reject') {
      return {
        refuse: {
          status: decision.status,
          // The Error Comment and the log name the rule (its default reason already does).
          reason: decision.reason.includes(`routing rule "${decision.rule}"`)
            ? decision.reason
            : `routing rule "${decision.rule}": ${decision.reason}`,
        },
      };
    }
    const store = this.stores.get(decision.store);
    if (store === undefined) {
      // Validation refuses such rules; A700 (transient) rather than a crash if one slips by.
      return {
        refuse: {
          status: 0xa700,
          reason: `routing rule "${decision.rule}": no store "${decision.store}"`,
        },
      };
    }
    return {
      ...store,
      prefix: [store.prefix, decision.prefix].filter((p) => p !== '').join('/'),
      labels: decision.labels.length > 0 ? decision.labels : undefined,
      destinations: decision.destinations.length > 0 ? decision.destinations : undefined,
    };
  }
}
