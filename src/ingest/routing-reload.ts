/**
 * Reloading the routing rules while the gateway runs (SIGHUP, src/cli/serve.ts): the
 * configuration file is read and validated again as at start; its `routing` section replaces
 * the rules for the associations that come next. Nothing else is reloaded (stores, ports, the
 * index need a restart), so a rule may name only a store the gateway has open. A file that
 * does not validate changes nothing: the error (each problem with its key, the rule by name)
 * is logged, and `dicomgw_config_reload_total{result="failed"}` counts it.
 */
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Metrics } from '../admin/metrics.js';
import { loadConfig } from '../config.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { compileRules } from '../route/compile.js';
import { routingPathLabel, routingReferenceIssues } from '../route/rules-schema.js';
import type { RoutingResolver } from './routing-resolver.js';

export type ReloadResult = 'ok' | 'failed';

export interface RoutingReload {
  /** Re-reads the file; the old rules stay when it is not valid. */
  reload(): ReloadResult;
}

export function routingReload(o: {
  /** The configuration file given at start (undefined: none; the environment alone). */
  file: string | undefined;
  env: NodeJS.ProcessEnv;
  resolver: RoutingResolver;
  metrics: Metrics;
  log: Logger;
}): RoutingReload {
  const counter = new Counter({
    name: 'dicomgw_config_reload_total',
    help: 'Reloads of the routing rules (SIGHUP) by result: ok, or failed (the old rules stay)',
    labelNames: ['result'],
    registers: [o.metrics.registry],
  });
  counter.inc({ result: 'ok' }, 0);
  counter.inc({ result: 'failed' }, 0);
  return {
    reload: () => {
      try {
        const cfg = loadConfig(o.file, o.env);
        const routing = cfg.routing;
        // Stores are opened at start: a rule may name only those.
        const issues = routing
          ? routingReferenceIssues(routing.rules, { stores: o.resolver.storeNames })
          : [];
        if (issues.length > 0) {
          const lines = issues.map(
            (i) =>
              `  ${routingPathLabel(['routing', ...i.path], routing)}: ${i.message} (stores are not reloaded; restart to add one)`,
          );
          throw new GatewayError(
            'GW_ERR_CONFIG',
            `invalid ${o.file ?? 'configuration'}:\n${lines.join('\n')}`,
          );
        }
        o.resolver.replace(routing ? compileRules(routing) : undefined);
        counter.inc({ result: 'ok' });
        o.log.info(
          { event: 'config.reloaded', file: o.file, rules: routing?.rules.length ?? 0 },
          `routing rules reloaded: ${routing?.rules.length ?? 0} rules, for new associations`,
        );
        return 'ok';
      } catch (err) {
        counter.inc({ result: 'failed' });
        const message = isGatewayError(err) || err instanceof Error ? err.message : String(err);
        o.log.error(
          { event: 'config.reload_failed', file: o.file, err: message },
          `routing rules not reloaded, the old rules stay: ${message}`,
        );
        return 'failed';
      }
    },
  };
}
