/** Crash safety of the local directory store with `ack: stored`: see test/helpers/crash-suite.ts. */
import t from 'tap';
import { crashSuite } from '../helpers/crash-suite.js';

// Six kills: the suite's time goes to the default mode (crash-fs-spooled, ten).
await crashSuite(t, 'stored', 'fs', 6);
