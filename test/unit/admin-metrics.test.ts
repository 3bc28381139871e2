import t from 'tap';
import {
  aeLabel,
  BoundedLabel,
  modalityLabel,
  modalityOfSopClass,
  OTHER,
  statusLabel,
} from '../../src/admin/labels.js';
import { Metrics } from '../../src/admin/metrics.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';

t.test('label values', async (t) => {
  t.equal(aeLabel('  CT1 '), 'CT1');
  t.equal(aeLabel(''), '_none');
  t.equal(aeLabel('A\u00e9B'), 'A?B', 'non-ASCII replaced');
  t.equal(modalityLabel(' mr '), 'MR');
  t.equal(modalityLabel('C T'), 'unknown');
  t.equal(modalityLabel(undefined), 'unknown');
  t.equal(statusLabel(0xa700), 'a700');
  t.equal(statusLabel(0x0122), '0122');
  t.equal(modalityOfSopClass(CT), 'CT');
  t.equal(modalityOfSopClass('1.2.3'), 'unknown');
  t.equal(modalityOfSopClass(undefined), 'unknown');
  const b = new BoundedLabel(2);
  t.same(
    ['a', 'b', 'c', 'a', 'd'].map((v) => b.value(v)),
    ['a', 'b', OTHER, 'a', OTHER],
  );
});

t.test('observer calls become samples', async (t) => {
  const m = new Metrics({ defaultMetrics: false, maxAeTitles: 2 });
  m.stored({ callingAeTitle: 'CT1', sopClassUid: CT, modality: 'CT', bytes: 1000, seconds: 0.004 });
  m.stored({ callingAeTitle: 'CT1', sopClassUid: CT, bytes: 500, seconds: 0.2 });
  m.duplicate({ callingAeTitle: 'CT1', sopClassUid: CT, identical: false });
  m.failed({
    callingAeTitle: 'MR1',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
    status: 0xa700,
    code: 'GW_ERR_INDEX_UNAVAILABLE',
  });
  m.failed({ callingAeTitle: 'X3', status: 0x0122, code: 'GW_ERR_SOP_CLASS_REFUSED' });
  m.accepted({ callingAeTitle: 'CT1' });
  m.rejected({ callingAeTitle: 'BAD', reason: 'unknown AE' });
  let spool = 7;
  m.addGauge({ name: 'dicomgw_test_spool_bytes', help: 'test', read: () => spool });
  m.addGauge({
    name: 'dicomgw_test_broken',
    help: 'test',
    read: () => Promise.reject(new Error('x')),
  });
  const text = await new Metrics({ defaultMetrics: false, collectTimeoutMs: 50 }).text();
  t.notMatch(text, /dicomgw_test/, 'registries are separate');

  const m2text = await m.text();
  const has = (line: string) => t.ok(m2text.split('\n').includes(line), line);
  has('dicomgw_instances_stored_total{calling_ae="CT1",modality="CT"} 2');
  has('dicomgw_bytes_stored_total{calling_ae="CT1",modality="CT"} 1500');
  has('dicomgw_store_duration_seconds_bucket{le="0.005",calling_ae="CT1",modality="CT"} 1');
  has('dicomgw_store_duration_seconds_bucket{le="0.25",calling_ae="CT1",modality="CT"} 2');
  has('dicomgw_store_duration_seconds_bucket{le="30",calling_ae="CT1",modality="CT"} 2');
  has('dicomgw_duplicates_total{calling_ae="CT1",modality="CT",identical="false"} 1');
  has('dicomgw_instances_failed_total{calling_ae="MR1",modality="MR",status="a700"} 1');
  has('dicomgw_instances_failed_total{calling_ae="_other",modality="unknown",status="0122"} 1');
  has('dicomgw_associations_total{result="accepted"} 1');
  has('dicomgw_associations_total{result="rejected"} 1');
  has('dicomgw_test_spool_bytes 7');
  // prom-client writes "Nan"; Prometheus parses NaN in any case (Go strconv.ParseFloat).
  t.match(m2text, /^dicomgw_test_broken nan$/im, 'a failed read is NaN');
  spool = 9;
  t.match(await m.text(), /^dicomgw_test_spool_bytes 9$/m, 'read at every scrape');
  t.match(m.contentType, /^text\/plain/);
});

t.test('a hanging gauge read does not hang the scrape', async (t) => {
  const m = new Metrics({ defaultMetrics: false, collectTimeoutMs: 50 });
  m.addGauge({
    name: 'dicomgw_test_slow',
    help: 'test',
    read: () => new Promise<number>(() => {}),
  });
  t.match(await m.text(), /^dicomgw_test_slow nan$/im);
});

t.test('a counter kept elsewhere, read at each scrape', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  let restarts = 0;
  m.addCounter({ name: 'dicomgw_test_restarts_total', help: 'test', read: () => restarts });
  t.match(await m.text(), /^# TYPE dicomgw_test_restarts_total counter$/m);
  t.match(await m.text(), /^dicomgw_test_restarts_total 0$/m, 'present from the start');
  restarts = 2;
  t.match(await m.text(), /^dicomgw_test_restarts_total 2$/m);
  t.match(await m.text(), /^dicomgw_test_restarts_total 2$/m, 'not added up across scrapes');
});
