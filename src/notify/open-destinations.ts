/**
 * The configured destinations (`notify.destinations`) as Destination objects. Secrets are read
 * here, from the environment variables the configuration names, and go nowhere but into the
 * Authorization header.
 */
import type { NotifyConfig, NotifyDestinationConfig } from '../config.js';
import { GatewayError } from '../errors.js';
import type { StoreLookup } from '../store/object-store.js';
import type { Destination } from './destination.js';
import { DicomDestination } from './dicom.js';
import { basicAuthorization, type HttpTargetOptions } from './http.js';
import { OrthancPullDestination } from './orthanc-pull.js';
import { OrthancPushDestination } from './orthanc-push.js';
import { WebhookDestination } from './webhook.js';

export function openDestinations(
  cfg: NotifyConfig,
  storeFor: StoreLookup,
  env: NodeJS.ProcessEnv = process.env,
  ownAeTitle = 'DICOMGW',
): Destination[] {
  const opened: Destination[] = [];
  try {
    for (const d of cfg.destinations) {
      const dest = openOne(d, cfg, storeFor, env, ownAeTitle);
      dest.events = d.events;
      opened.push(dest);
    }
    return opened;
  } catch (err) {
    for (const d of opened) void d.close();
    throw err;
  }
}

function openOne(
  d: NotifyDestinationConfig,
  cfg: NotifyConfig,
  storeFor: StoreLookup,
  env: NodeJS.ProcessEnv,
  ownAeTitle: string,
): Destination & { events: Destination['events'] } {
  if (d.type === 'dicom') {
    return new DicomDestination({
      name: d.name,
      host: d.host,
      port: d.port,
      calledAeTitle: d.aeTitle,
      callingAeTitle: d.callingAeTitle ?? ownAeTitle,
      timeoutMs: d.timeoutSeconds * 1000,
      maxBatch: cfg.batchSize,
      storeFor,
    });
  }
  const http: HttpTargetOptions = {
    name: d.name,
    url: d.url,
    timeoutMs: d.timeoutSeconds * 1000,
    caFile: d.caFile,
    authorization: authorization(d, env),
  };
  switch (d.type) {
    case 'orthanc-pull':
      return new OrthancPullDestination(d.name, http, cfg.batchSize);
    case 'orthanc-push':
      return new OrthancPushDestination(d.name, http, storeFor);
    case 'webhook':
      return new WebhookDestination(d.name, http, cfg.batchSize);
  }
}

function authorization(
  d: Exclude<NotifyDestinationConfig, { type: 'dicom' }>,
  env: NodeJS.ProcessEnv,
): string | undefined {
  const secret = (varName: string): string => {
    const v = env[varName];
    if (!v) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `notify destination ${d.name}: environment variable ${varName} is not set`,
      );
    }
    return v;
  };
  if (d.type === 'webhook' && d.tokenEnv) return `Bearer ${secret(d.tokenEnv)}`;
  if (d.username !== undefined) {
    return basicAuthorization(d.username, d.passwordEnv ? secret(d.passwordEnv) : '');
  }
  if (d.passwordEnv) {
    throw new GatewayError(
      'GW_ERR_CONFIG',
      `notify destination ${d.name}: passwordEnv needs a username`,
    );
  }
  return undefined;
}
