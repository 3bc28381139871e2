/** Crash safety of the local directory store with `ack: spooled`: see test/helpers/crash-suite.ts. */
import t from 'tap';
import { crashSuite } from '../helpers/crash-suite.js';

await crashSuite(t, 'spooled', 'fs');
