import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import {
  lookup,
  transition,
  type Event,
  type Role,
  type State,
} from '../../src/dimse/state-machine.js';

/**
 * PS3.8 Table 9-10, written out again cell by cell from the standard (not from the code):
 * event -> state -> action[/next]. Blank cells are absent. Next states are the action's
 * (PS3.8 9.2.2) except where given.
 */
const TABLE: Record<string, Record<string, string>> = {
  Evt1: { Sta1: 'AE-1/Sta4' },
  Evt2: { Sta4: 'AE-2/Sta5' },
  Evt3: { Sta2: 'AA-1/Sta13', Sta3: 'AA-8/Sta13', Sta5: 'AE-3/Sta6', Sta6: 'AA-8/Sta13', Sta7: 'AA-8/Sta13', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AA-8/Sta13', Sta11: 'AA-8/Sta13', Sta12: 'AA-8/Sta13', Sta13: 'AA-6/Sta13' },
  Evt4: { Sta2: 'AA-1/Sta13', Sta3: 'AA-8/Sta13', Sta5: 'AE-4/Sta1', Sta6: 'AA-8/Sta13', Sta7: 'AA-8/Sta13', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AA-8/Sta13', Sta11: 'AA-8/Sta13', Sta12: 'AA-8/Sta13', Sta13: 'AA-6/Sta13' },
  Evt5: { Sta1: 'AE-5/Sta2' },
  Evt6: { Sta2: 'AE-6/Sta3', Sta3: 'AA-8/Sta13', Sta5: 'AA-8/Sta13', Sta6: 'AA-8/Sta13', Sta7: 'AA-8/Sta13', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AA-8/Sta13', Sta11: 'AA-8/Sta13', Sta12: 'AA-8/Sta13', Sta13: 'AA-7/Sta13' },
  Evt7: { Sta3: 'AE-7/Sta6' },
  Evt8: { Sta3: 'AE-8/Sta13' },
  Evt9: { Sta6: 'DT-1/Sta6', Sta8: 'AR-7/Sta8' },
  Evt10: { Sta2: 'AA-1/Sta13', Sta3: 'AA-8/Sta13', Sta5: 'AA-8/Sta13', Sta6: 'DT-2/Sta6', Sta7: 'AR-6/Sta7', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AA-8/Sta13', Sta11: 'AA-8/Sta13', Sta12: 'AA-8/Sta13', Sta13: 'AA-6/Sta13' },
  Evt11: { Sta6: 'AR-1/Sta7' },
  Evt12: { Sta2: 'AA-1/Sta13', Sta3: 'AA-8/Sta13', Sta5: 'AA-8/Sta13', Sta6: 'AR-2/Sta8', Sta7: 'AR-8/*', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AA-8/Sta13', Sta11: 'AA-8/Sta13', Sta12: 'AA-8/Sta13', Sta13: 'AA-6/Sta13' },
  Evt13: { Sta2: 'AA-1/Sta13', Sta3: 'AA-8/Sta13', Sta5: 'AA-8/Sta13', Sta6: 'AA-8/Sta13', Sta7: 'AR-3/Sta1', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AR-10/Sta12', Sta11: 'AR-3/Sta1', Sta12: 'AA-8/Sta13', Sta13: 'AA-6/Sta13' },
  Evt14: { Sta8: 'AR-4/Sta13', Sta9: 'AR-9/Sta11', Sta12: 'AR-4/Sta13' },
  Evt15: { Sta3: 'AA-1/Sta13', Sta4: 'AA-2/Sta1', Sta5: 'AA-1/Sta13', Sta6: 'AA-1/Sta13', Sta7: 'AA-1/Sta13', Sta8: 'AA-1/Sta13', Sta9: 'AA-1/Sta13', Sta10: 'AA-1/Sta13', Sta11: 'AA-1/Sta13', Sta12: 'AA-1/Sta13' },
  Evt16: { Sta2: 'AA-2/Sta1', Sta3: 'AA-3/Sta1', Sta5: 'AA-3/Sta1', Sta6: 'AA-3/Sta1', Sta7: 'AA-3/Sta1', Sta8: 'AA-3/Sta1', Sta9: 'AA-3/Sta1', Sta10: 'AA-3/Sta1', Sta11: 'AA-3/Sta1', Sta12: 'AA-3/Sta1', Sta13: 'AA-2/Sta1' },
  Evt17: { Sta2: 'AA-5/Sta1', Sta3: 'AA-4/Sta1', Sta4: 'AA-4/Sta1', Sta5: 'AA-4/Sta1', Sta6: 'AA-4/Sta1', Sta7: 'AA-4/Sta1', Sta8: 'AA-4/Sta1', Sta9: 'AA-4/Sta1', Sta10: 'AA-4/Sta1', Sta11: 'AA-4/Sta1', Sta12: 'AA-4/Sta1', Sta13: 'AR-5/Sta1' },
  Evt18: { Sta2: 'AA-2/Sta1', Sta13: 'AA-2/Sta1' },
  Evt19: { Sta2: 'AA-1/Sta13', Sta3: 'AA-8/Sta13', Sta5: 'AA-8/Sta13', Sta6: 'AA-8/Sta13', Sta7: 'AA-8/Sta13', Sta8: 'AA-8/Sta13', Sta9: 'AA-8/Sta13', Sta10: 'AA-8/Sta13', Sta11: 'AA-8/Sta13', Sta12: 'AA-8/Sta13', Sta13: 'AA-7/Sta13' },
}; // prettier-ignore

const STATES = Array.from({ length: 13 }, (_, i) => `Sta${i + 1}` as State);
const EVENTS = Array.from({ length: 19 }, (_, i) => `Evt${i + 1}` as Event);
/** Only the requestor is ever in these, only the acceptor in those. */
const REQUESTOR: ReadonlySet<string> = new Set(['Sta4', 'Sta5', 'Sta9', 'Sta11', 'Evt1', 'Evt2']);
const ACCEPTOR: ReadonlySet<string> = new Set(['Sta2', 'Sta3', 'Sta10', 'Sta12', 'Evt5']);

t.test('every cell of PS3.8 Table 9-10, for both roles', async (t) => {
  let cells = 0;
  for (const role of ['acceptor', 'requestor'] as Role[]) {
    const other = role === 'acceptor' ? REQUESTOR : ACCEPTOR;
    for (const event of EVENTS) {
      for (const state of STATES) {
        const cell = TABLE[event]![state];
        const got = lookup(state, event, role);
        if (!cell || other.has(state) || other.has(event)) {
          if (got) t.fail(`${role} ${state} ${event}: ${got.action}, expected none`);
          continue;
        }
        const [action, next] = cell.split('/');
        const want = next === '*' ? (role === 'requestor' ? 'Sta9' : 'Sta10') : next;
        t.same(got, { action, next: want }, `${role} ${state} ${event}`);
        cells++;
      }
    }
  }
  t.ok(cells > 160, `${cells} cells`);
});

t.test('transition() refuses what the table does not allow', async (t) => {
  try {
    transition('Sta1', 'Evt1', 'acceptor');
    t.fail('an acceptor cannot issue A-ASSOCIATE requests');
  } catch (err) {
    t.ok(isGatewayError(err, 'GW_ERR_INTERNAL'), 'GW_ERR_INTERNAL');
  }
  t.throws(() => transition('Sta6', 'Evt7', 'requestor'), /not allowed in Sta6/);
});

/** Runs `events` from `state`; returns the actions taken and the final state. */
function walk(role: Role, state: State, events: Event[]): { actions: string[]; state: State } {
  const actions: string[] = [];
  for (const e of events) {
    const step = transition(state, e, role);
    actions.push(step.action);
    state = step.next;
  }
  return { actions, state };
}

t.test('the paths the drivers take', async (t) => {
  // Requestor: connect, RQ, AC, a request and its response, release.
  t.same(walk('requestor', 'Sta1', ['Evt1', 'Evt2', 'Evt3', 'Evt9', 'Evt10', 'Evt11', 'Evt13']), {
    actions: ['AE-1', 'AE-2', 'AE-3', 'DT-1', 'DT-2', 'AR-1', 'AR-3'],
    state: 'Sta1',
  });
  // Requestor rejected, and timing out on the AC (local abort, then the peer closes).
  t.same(walk('requestor', 'Sta1', ['Evt1', 'Evt2', 'Evt4']).state, 'Sta1');
  t.same(walk('requestor', 'Sta5', ['Evt15', 'Evt17']).actions, ['AA-1', 'AR-5']);
  // Acceptor: connection, RQ accepted, data, release; and an RQ rejected.
  t.same(
    walk('acceptor', 'Sta1', ['Evt5', 'Evt6', 'Evt7', 'Evt10', 'Evt9', 'Evt12', 'Evt14', 'Evt17']),
    {
      actions: ['AE-5', 'AE-6', 'AE-7', 'DT-2', 'DT-1', 'AR-2', 'AR-4', 'AR-5'],
      state: 'Sta1',
    },
  );
  t.same(walk('acceptor', 'Sta2', ['Evt6', 'Evt8', 'Evt18']).actions, ['AE-6', 'AE-8', 'AA-2']);
  // Release collision (PS3.8 9.2.2 AR-8): both sides sent A-RELEASE-RQ.
  t.same(walk('requestor', 'Sta6', ['Evt11', 'Evt12', 'Evt14', 'Evt13']), {
    actions: ['AR-1', 'AR-8', 'AR-9', 'AR-3'],
    state: 'Sta1',
  });
  t.same(walk('acceptor', 'Sta6', ['Evt11', 'Evt12', 'Evt13', 'Evt14', 'Evt17']), {
    actions: ['AR-1', 'AR-8', 'AR-10', 'AR-4', 'AR-5'],
    state: 'Sta1',
  });
});
