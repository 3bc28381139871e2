/**
 * Throw-away X.509 material for DICOM TLS tests, made by the openssl CLI at test time: a CA,
 * a server certificate for 127.0.0.1/localhost signed by it, a client certificate signed by
 * it, and a self-signed client certificate no one trusts. RSA 2048: every TLS profile of
 * DCMTK's storescu/echoscu (BCP 195) accepts it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  key: string;
  cert: string;
}

export interface TestCerts {
  dir: string;
  /** The CA certificate (PEM file): trusted by the gateway for clients, by clients for the server. */
  ca: string;
  server: KeyPair;
  /** Signed by the CA. */
  client: KeyPair;
  /** Self-signed: refused when client certificates are verified. */
  stranger: KeyPair;
  remove(): Promise<void>;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

/** Generates the set in a new temp directory; `remove()` deletes it. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-tls-'));
  try {
    const days = ['-days', '2'];
    const newKey = ['-newkey', 'rsa:2048', '-nodes'];
    await openssl(
      [
        ...['req', '-x509', ...newKey, '-keyout', 'ca.key', '-out', 'ca.pem', ...days],
        ...['-subj', '/CN=dicom-gateway test CA'],
        ...['-addext', 'basicConstraints=critical,CA:TRUE'],
        ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
      ],
      dir,
    );
    const signed = async (name: string, cn: string, ext: string): Promise<KeyPair> => {
      await writeFile(join(dir, `${name}.ext`), ext);
      await openssl(
        ['req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
        dir,
      );
      await openssl(
        [
          ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key'],
          ...['-CAcreateserial', '-out', `${name}.pem`, ...days, '-extfile', `${name}.ext`],
        ],
        dir,
      );
      return { key: join(dir, `${name}.key`), cert: join(dir, `${name}.pem`) };
    };
    const server = await signed(
      'server',
      'localhost',
      'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' +
        'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
    );
    const client = await signed(
      'client',
      'MODALITY',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n' +
        'extendedKeyUsage=clientAuth\n',
    );
    await openssl(
      [
        ...['req', '-x509', ...newKey, '-keyout', 'stranger.key', '-out', 'stranger.pem'],
        ...[...days, '-subj', '/CN=stranger'],
      ],
      dir,
    );
    return {
      dir,
      ca: join(dir, 'ca.pem'),
      server,
      client,
      stranger: { key: join(dir, 'stranger.key'), cert: join(dir, 'stranger.pem') },
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
