import { GatewayError } from '../errors.js';
import { PduType } from './pdu.js';

/**
 * The DICOM upper layer state machine (PS3.8 9.2, Tables 9-9 and 9-10) as a pure function
 * of (state, event, role): which actions to take and which state comes next. No timers,
 * no sockets: the drivers (src/scp/association.ts for the acceptor, src/scu/association.ts
 * for the requestor) turn what happens into events, and do what the actions say.
 *
 * Where the table's entry depends on the role (Sta7 + Evt12, release collision) `role`
 * decides; events only one role can see (Evt1, Evt2 requestor; Evt5 acceptor) are refused
 * in the other.
 */

/** PS3.8 Table 9-9 (our names in comments). */
export type State =
  | 'Sta1' // idle, no transport connection
  | 'Sta2' // transport connection open (acceptor), awaiting A-ASSOCIATE-RQ PDU
  | 'Sta3' // awaiting the local A-ASSOCIATE response primitive
  | 'Sta4' // awaiting transport connection to open (requestor)
  | 'Sta5' // awaiting A-ASSOCIATE-AC or -RJ PDU
  | 'Sta6' // association established, ready for data transfer
  | 'Sta7' // awaiting A-RELEASE-RP PDU
  | 'Sta8' // awaiting the local A-RELEASE response primitive
  | 'Sta9' // release collision, requestor: awaiting A-RELEASE response primitive
  | 'Sta10' // release collision, acceptor: awaiting A-RELEASE-RP PDU
  | 'Sta11' // release collision, requestor: awaiting A-RELEASE-RP PDU
  | 'Sta12' // release collision, acceptor: awaiting A-RELEASE response primitive
  | 'Sta13'; // awaiting transport connection close

/** PS3.8 Table 9-10 events. */
export const Event = {
  /** A-ASSOCIATE request primitive (local user). */
  AssociateRequest: 'Evt1',
  /** Transport connection confirmed (local transport service). */
  TransportConnected: 'Evt2',
  AcReceived: 'Evt3',
  RjReceived: 'Evt4',
  /** Transport connection indication (an incoming connection). */
  TransportIndication: 'Evt5',
  RqReceived: 'Evt6',
  /** A-ASSOCIATE response primitive, accept. */
  AssociateAccept: 'Evt7',
  /** A-ASSOCIATE response primitive, reject. */
  AssociateReject: 'Evt8',
  /** P-DATA request primitive. */
  PDataRequest: 'Evt9',
  PDataReceived: 'Evt10',
  /** A-RELEASE request primitive. */
  ReleaseRequest: 'Evt11',
  ReleaseRqReceived: 'Evt12',
  ReleaseRpReceived: 'Evt13',
  /** A-RELEASE response primitive. */
  ReleaseResponse: 'Evt14',
  /** A-ABORT request primitive. */
  AbortRequest: 'Evt15',
  AbortReceived: 'Evt16',
  TransportClosed: 'Evt17',
  ArtimExpired: 'Evt18',
  InvalidPdu: 'Evt19',
} as const;
export type Event = (typeof Event)[keyof typeof Event];

export type Role = 'acceptor' | 'requestor';

/**
 * PS3.8 9.2.2 actions. What each means for a driver:
 *  AE-1 open the transport connection; AE-2 send A-ASSOCIATE-RQ; AE-3 association accepted;
 *  AE-4 association rejected, close the transport; AE-5 accept the connection, start ARTIM;
 *  AE-6 stop ARTIM, pass the RQ to the user; AE-7 send A-ASSOCIATE-AC; AE-8 send
 *  A-ASSOCIATE-RJ, start ARTIM; DT-1 send P-DATA-TF; DT-2 pass P-DATA to the user;
 *  AR-1 send A-RELEASE-RQ; AR-2 pass the release request to the user; AR-3 release
 *  confirmed, close the transport; AR-4 send A-RELEASE-RP, start ARTIM; AR-5 stop ARTIM;
 *  AR-6 pass P-DATA to the user (while awaiting RP); AR-7 send P-DATA-TF (before RP);
 *  AR-8 release collision indication; AR-9 send A-RELEASE-RP; AR-10 release confirmed;
 *  AA-1 send A-ABORT (service-user), start ARTIM; AA-2 stop ARTIM, close the transport;
 *  AA-3 pass the peer's A-ABORT to the user, close the transport; AA-4 transport closed
 *  under us (A-P-ABORT indication); AA-5 stop ARTIM; AA-6 ignore the PDU; AA-7 send
 *  A-ABORT; AA-8 send A-ABORT (service-provider), A-P-ABORT indication, start ARTIM.
 */
export type Action =
  | 'AE-1' | 'AE-2' | 'AE-3' | 'AE-4' | 'AE-5' | 'AE-6' | 'AE-7' | 'AE-8'
  | 'DT-1' | 'DT-2'
  | 'AR-1' | 'AR-2' | 'AR-3' | 'AR-4' | 'AR-5' | 'AR-6' | 'AR-7' | 'AR-8' | 'AR-9' | 'AR-10'
  | 'AA-1' | 'AA-2' | 'AA-3' | 'AA-4' | 'AA-5' | 'AA-6' | 'AA-7' | 'AA-8'; // prettier-ignore

export interface Transition {
  action: Action;
  next: State;
}

/** Where each action leads when the table does not say otherwise. */
const NEXT: Record<Action, State | undefined> = {
  'AE-1': 'Sta4',
  'AE-2': 'Sta5',
  'AE-3': 'Sta6',
  'AE-4': 'Sta1',
  'AE-5': 'Sta2',
  'AE-6': 'Sta3',
  'AE-7': 'Sta6',
  'AE-8': 'Sta13',
  'DT-1': 'Sta6',
  'DT-2': 'Sta6',
  'AR-1': 'Sta7',
  'AR-2': 'Sta8',
  'AR-3': 'Sta1',
  'AR-4': 'Sta13',
  'AR-5': 'Sta1',
  'AR-6': 'Sta7',
  'AR-7': 'Sta8',
  'AR-8': undefined, // Sta9 for the requestor, Sta10 for the acceptor
  'AR-9': 'Sta11',
  'AR-10': 'Sta12',
  'AA-1': 'Sta13',
  'AA-2': 'Sta1',
  'AA-3': 'Sta1',
  'AA-4': 'Sta1',
  'AA-5': 'Sta1',
  'AA-6': 'Sta13',
  'AA-7': 'Sta13',
  'AA-8': 'Sta13',
};

const ASSOCIATED: readonly State[] = ['Sta6', 'Sta7', 'Sta8', 'Sta9', 'Sta10', 'Sta11', 'Sta12'];
/** States with a transport connection, past the RQ (Table 9-10 columns Sta3, Sta5-Sta12). */
const CONNECTED: readonly State[] = ['Sta3', 'Sta5', ...ASSOCIATED];

type Row = Partial<Record<State, Action>>;

function row(entries: Row, ...groups: Array<[readonly State[], Action]>): Row {
  const out: Row = {};
  for (const [states, action] of groups) for (const s of states) out[s] = action;
  return { ...out, ...entries };
}

/**
 * PS3.8 Table 9-10, one row per event. A received PDU that is out of place is AA-8 in
 * every connected state, AA-1 before the RQ (Sta2) and ignored (AA-6) in Sta13.
 */
const unexpectedPdu = (entries: Row): Row =>
  row({ Sta2: 'AA-1', Sta13: 'AA-6', ...entries }, [CONNECTED, 'AA-8']);

const TABLE: Record<Event, Row> = {
  Evt1: { Sta1: 'AE-1' },
  Evt2: { Sta4: 'AE-2' },
  Evt3: unexpectedPdu({ Sta5: 'AE-3' }),
  Evt4: unexpectedPdu({ Sta5: 'AE-4' }),
  Evt5: { Sta1: 'AE-5' },
  Evt6: unexpectedPdu({ Sta2: 'AE-6', Sta13: 'AA-7' }),
  Evt7: { Sta3: 'AE-7' },
  Evt8: { Sta3: 'AE-8' },
  Evt9: { Sta6: 'DT-1', Sta8: 'AR-7' },
  Evt10: unexpectedPdu({ Sta6: 'DT-2', Sta7: 'AR-6' }),
  Evt11: { Sta6: 'AR-1' },
  Evt12: unexpectedPdu({ Sta6: 'AR-2', Sta7: 'AR-8' }),
  Evt13: unexpectedPdu({ Sta7: 'AR-3', Sta10: 'AR-10', Sta11: 'AR-3' }),
  Evt14: { Sta8: 'AR-4', Sta9: 'AR-9', Sta12: 'AR-4' },
  Evt15: row({ Sta4: 'AA-2' }, [CONNECTED, 'AA-1']),
  Evt16: row({ Sta2: 'AA-2', Sta13: 'AA-2' }, [CONNECTED, 'AA-3']),
  Evt17: row({ Sta2: 'AA-5', Sta4: 'AA-4', Sta13: 'AR-5' }, [CONNECTED, 'AA-4']),
  Evt18: { Sta2: 'AA-2', Sta13: 'AA-2' },
  Evt19: row({ Sta2: 'AA-1', Sta13: 'AA-7' }, [CONNECTED, 'AA-8']),
};

const REQUESTOR_ONLY: ReadonlySet<Event> = new Set(['Evt1', 'Evt2']);
const ACCEPTOR_ONLY: ReadonlySet<Event> = new Set(['Evt5']);
const REQUESTOR_STATES: ReadonlySet<State> = new Set(['Sta4', 'Sta5', 'Sta9', 'Sta11']);
const ACCEPTOR_STATES: ReadonlySet<State> = new Set(['Sta2', 'Sta3', 'Sta10', 'Sta12']);

/**
 * The table entry for `event` in `state`, or undefined where PS3.8 has none: a local
 * primitive the state does not allow, or an event the role cannot see.
 */
export function lookup(state: State, event: Event, role: Role): Transition | undefined {
  if ((role === 'acceptor' ? REQUESTOR_ONLY : ACCEPTOR_ONLY).has(event)) return undefined;
  if ((role === 'acceptor' ? REQUESTOR_STATES : ACCEPTOR_STATES).has(state)) return undefined;
  const action = TABLE[event][state];
  if (!action) return undefined;
  // PS3.8 9.2.2 AR-8: the requestor goes to Sta9 (answers first), the acceptor to Sta10.
  const next = NEXT[action] ?? (role === 'requestor' ? 'Sta9' : 'Sta10');
  return { action, next };
}

/** Like lookup(), but an impossible transition is a bug in the driver: GW_ERR_INTERNAL. */
export function transition(state: State, event: Event, role: Role): Transition {
  const t = lookup(state, event, role);
  if (!t) {
    throw new GatewayError('GW_ERR_INTERNAL', `${event} is not allowed in ${state} (${role})`);
  }
  return t;
}

/** PS3.8 Table 9-10: the event a received PDU is (the framer refuses unknown types, Evt19). */
export function pduEvent(type: number): Event {
  switch (type) {
    case PduType.AssociateRq:
      return Event.RqReceived;
    case PduType.AssociateAc:
      return Event.AcReceived;
    case PduType.AssociateRj:
      return Event.RjReceived;
    case PduType.PDataTf:
      return Event.PDataReceived;
    case PduType.ReleaseRq:
      return Event.ReleaseRqReceived;
    case PduType.ReleaseRp:
      return Event.ReleaseRpReceived;
    case PduType.Abort:
      return Event.AbortReceived;
    default:
      return Event.InvalidPdu;
  }
}
