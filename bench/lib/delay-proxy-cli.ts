// `node --import=@tapjs/typescript/import bench/lib/delay-proxy-cli.ts HOST:PORT DELAY_MS`:
// runs the delay proxy (delay-proxy.ts) in a process of its own, so its timers do not share an
// event loop with the bench. Prints one JSON line {"port": N} once it listens; stops on SIGTERM.
import { startDelayProxy } from './delay-proxy.js';

const [target, delay] = process.argv.slice(2);
const m = /^(.+):(\d+)$/.exec(target ?? '');
if (!m || !delay || !Number.isFinite(Number(delay))) {
  process.stderr.write('usage: delay-proxy-cli.ts HOST:PORT DELAY_MS\n');
  process.exit(2);
}
const proxy = await startDelayProxy({
  targetHost: m[1]!,
  targetPort: Number(m[2]),
  delayMs: Number(delay),
});
process.stdout.write(`${JSON.stringify({ port: proxy.port })}\n`);
process.once('SIGTERM', () => {
  void proxy.close().then(() => process.exit(0));
});
