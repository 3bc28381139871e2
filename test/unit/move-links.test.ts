import t from 'tap';
import { MoveLinks } from '../../src/ingest/move-links.js';

t.test('MoveLinks: per move originator, by status class; plain C-STOREs ignored', async (t) => {
  const m = new MoveLinks();
  const req = { moveOriginatorAeTitle: 'DICOMGW', moveOriginatorMessageId: 7 };
  m.count(req, 0);
  m.count(req, 0);
  m.count(req, 0xb007);
  m.count(req, 0xa700);
  m.count({ ...req, moveOriginatorMessageId: 8 }, 0);
  m.count({}, 0);
  t.match(m.get('DICOMGW', 7), { success: 2, warning: 1, failure: 1 });
  t.match(m.get('DICOMGW', 8), { success: 1 });
  t.equal(m.list().length, 2);
  for (let i = 0; i < 1100; i++) m.count({ ...req, moveOriginatorMessageId: 100 + i }, 0);
  t.equal(m.list().length, 1000, 'bounded');
  t.equal(m.get('DICOMGW', 7), undefined, 'the oldest forgotten first');
});
