import { Writable } from 'node:stream';
import t from 'tap';
import { forwardLogEvent, observeLogEvents } from '../../src/admin/log-bridge.js';
import type { GatewayObserver } from '../../src/admin/observer.js';
import { createLogger } from '../../src/log.js';

function recorder(): { obs: GatewayObserver; calls: Array<[string, unknown]> } {
  const calls: Array<[string, unknown]> = [];
  const rec = (name: string) => (ev: unknown) => calls.push([name, ev]);
  return {
    calls,
    obs: {
      stored: rec('stored'),
      duplicate: rec('duplicate'),
      failed: rec('failed'),
      accepted: rec('accepted'),
      rejected: rec('rejected'),
    },
  };
}

t.test('log events map to observer calls', async (t) => {
  const { obs, calls } = recorder();
  const b = { calling: 'CT1', called: 'GW' };
  forwardLogEvent(obs, { event: 'association.accepted' }, b);
  forwardLogEvent(obs, { event: 'association.rejected', why: 'unknown called AE' }, b);
  forwardLogEvent(obs, { event: 'instance.stored', sopClassUid: '1.2', bytes: 10, ms: 12.5 }, b);
  forwardLogEvent(obs, { event: 'instance.spooled', sopClassUid: '1.2', bytes: 11, ms: 3 }, b);
  forwardLogEvent(obs, { event: 'instance.duplicate', sopClassUid: '1.2', identical: false }, b);
  forwardLogEvent(
    obs,
    { event: 'instance.failed', sopClassUid: '1.2', status: '0xa700', code: 'GW_ERR_TIMEOUT' },
    b,
  );
  forwardLogEvent(
    obs,
    { event: 'instance.refused', status: '0x0122', code: 'GW_ERR_SOP_CLASS_REFUSED' },
    {},
  );
  forwardLogEvent(obs, { event: 'association.released' }, b);
  t.same(calls, [
    ['accepted', { callingAeTitle: 'CT1' }],
    ['rejected', { callingAeTitle: 'CT1', reason: 'unknown called AE' }],
    [
      'stored',
      {
        callingAeTitle: 'CT1',
        sopClassUid: '1.2',
        modality: undefined,
        bytes: 10,
        seconds: 0.0125,
        acknowledged: 'stored',
      },
    ],
    [
      'stored',
      {
        callingAeTitle: 'CT1',
        sopClassUid: '1.2',
        modality: undefined,
        bytes: 11,
        seconds: 0.003,
        acknowledged: 'spooled',
      },
    ],
    [
      'duplicate',
      { callingAeTitle: 'CT1', sopClassUid: '1.2', modality: undefined, identical: false },
    ],
    [
      'failed',
      {
        callingAeTitle: 'CT1',
        sopClassUid: '1.2',
        modality: undefined,
        status: 0xa700,
        code: 'GW_ERR_TIMEOUT',
      },
    ],
    [
      'failed',
      {
        callingAeTitle: '',
        sopClassUid: undefined,
        modality: undefined,
        status: 0x122,
        code: 'GW_ERR_SOP_CLASS_REFUSED',
      },
    ],
  ]);
});

t.test(
  'the tapped logger logs as before, at any level, with bindings through children',
  async (t) => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const { obs, calls } = recorder();
    const log = observeLogEvents(createLogger({ level: 'warn', phi: false }, sink), obs);
    const assoc = log.child({ assoc: '1' }).child({ calling: 'MR1', called: 'GW' });
    assoc.info({ event: 'instance.stored', sopClassUid: '1.2', bytes: 5, ms: 1 }, 'stored');
    assoc.warn(
      { event: 'instance.failed', status: '0xc000', code: 'GW_ERR_DATASET_MALFORMED' },
      'bad',
    );
    assoc.warn('a plain message');
    t.equal(calls.length, 2, 'the info call is seen although the level is warn');
    t.match(calls[0], ['stored', { callingAeTitle: 'MR1' }]);
    t.equal(lines.length, 2, 'pino still filters by level');
    t.match(JSON.parse(lines[0]!), {
      event: 'instance.failed',
      calling: 'MR1',
      assoc: '1',
      msg: 'bad',
    });
    t.ok(assoc.isLevelEnabled('warn'), 'other methods still work');
    t.equal(assoc.level, 'warn');
  },
);

t.test('a throwing observer does not break logging', async (t) => {
  const boom = () => {
    throw new Error('boom');
  };
  const obs: GatewayObserver = {
    stored: boom,
    duplicate: boom,
    failed: boom,
    accepted: boom,
    rejected: boom,
  };
  const log = observeLogEvents(createLogger({ level: 'silent', phi: false }), obs);
  t.doesNotThrow(() => log.info({ event: 'association.accepted' }, 'x'));
});
