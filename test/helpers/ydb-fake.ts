/**
 * A fake YDB at the SDK's transport boundary: a stand-in for @ydbjs/core's Driver whose
 * createClient() returns a Query service client answering createSession, attachSession,
 * beginTransaction, executeQuery, commitTransaction, rollbackTransaction and deleteSession as
 * the gRPC service would (status codes, result-set parts). Everything above it is the real
 * code: @ydbjs/query (sessions, transactions, its retry policy), @ydbjs/value (encoding), and
 * YdbIndex. It records every query (text and decoded parameters) and answers from a script.
 * No server semantics: reads return what the test scripts, not what was written.
 */
import type { Driver } from '@ydbjs/core';
import { fromYdb, toJs, type Value } from '@ydbjs/value';
import { YDB_STATUS } from '../../src/index/ydb-exec.js';

export interface FakeCall {
  text: string;
  /** Parameters decoded back to JS (toJs of the wire value), names without `$`. */
  params: Record<string, unknown>;
  /** The raw wire parameters (type and value protos). */
  wire: Record<string, { type: unknown; value: unknown }>;
  inTx: boolean;
}

/** Result sets of one executeQuery: rows of typed values (column types from the first row). */
export type Answer = Array<Array<Record<string, Value>>> | { status: number };

type Point = 'createSession' | 'execute' | 'commit';

export class FakeYdb {
  readonly calls: FakeCall[] = [];
  commits = 0;
  rollbacks = 0;
  sessions = 0;
  /** Failures to inject, consumed in order at their point. */
  readonly failures: Array<{ at: Point; status: number }> = [];
  private readonly wroteIn = new Set<string>();
  /** Queries YDB would refuse (see checkQuery), answered with GENERIC_ERROR. */
  readonly invalid: string[] = [];
  /** Answers executeQuery; default: empty result sets. */
  answer: (call: FakeCall) => Answer = () => [];

  driver(): Driver {
    const fake = {
      ready: async () => undefined,
      close: () => undefined,
      createClient: () => this.client(),
      database: '/local',
    };
    return fake as unknown as Driver;
  }

  /** The texts of the calls, for matching. */
  texts(): string[] {
    return this.calls.map((c) => c.text);
  }

  private fail(at: Point): number | undefined {
    const i = this.failures.findIndex((f) => f.at === at);
    if (i < 0) return undefined;
    return this.failures.splice(i, 1)[0]!.status;
  }

  private client() {
    const ok = YDB_STATUS.SUCCESS;
    return {
      createSession: async () => {
        this.sessions++;
        const status = this.fail('createSession') ?? ok;
        return { status, issues: [], sessionId: `s${this.sessions}`, nodeId: 1n };
      },
      attachSession: () => ({
        async *[Symbol.asyncIterator]() {
          yield { status: ok, issues: [] };
        },
      }),
      beginTransaction: async () => ({ status: ok, issues: [], txMeta: { id: 'tx' } }),
      commitTransaction: async () => {
        const status = this.fail('commit') ?? ok;
        if (status === ok) this.commits++;
        return { status, issues: [] };
      },
      rollbackTransaction: async () => {
        this.rollbacks++;
        return { status: ok, issues: [] };
      },
      deleteSession: async () => ({ status: ok, issues: [] }),
      executeQuery: (req: {
        sessionId?: string;
        query: { value: { text: string } };
        parameters: Record<string, { type: never; value: never }>;
        txControl?: { txSelector?: { case?: string } };
      }) => {
        const params: Record<string, unknown> = {};
        for (const [k, tv] of Object.entries(req.parameters ?? {})) {
          params[k.replace(/^\$/, '')] = toJs(fromYdb(tv.value, tv.type));
        }
        const call: FakeCall = {
          text: req.query.value.text,
          params,
          wire: req.parameters,
          inTx: req.txControl?.txSelector?.case === 'txId',
        };
        this.calls.push(call);
        const session = (req as { sessionId?: string }).sessionId ?? '';
        const reads = /\bSELECT\b(?![^;]*AS_TABLE)/.test(strip(call.text));
        const writes = /\b(UPSERT|UPDATE|DELETE|INSERT|REPLACE)\b/.test(strip(call.text));
        const problem =
          checkQuery(call.text) ??
          (call.inTx && reads && this.wroteIn.has(session)
            ? 'a read after a write in the same transaction'
            : undefined);
        if (call.inTx && writes) this.wroteIn.add(session);
        if (problem) this.invalid.push(`${problem} in:\n${call.text}`);
        const injected = problem ? YDB_STATUS.GENERIC_ERROR : this.fail('execute');
        const answer: Answer = injected !== undefined ? { status: injected } : this.answer(call);
        return (async function* () {
          if (!Array.isArray(answer)) {
            yield { status: answer.status, issues: [] };
            return;
          }
          for (let i = 0; i < answer.length; i++) {
            yield {
              status: ok,
              issues: [],
              resultSetIndex: BigInt(i),
              resultSet: resultSet(answer[i]!),
            };
          }
        })();
      },
    };
  }
}

function resultSet(rows: Array<Record<string, Value>>) {
  const first = rows[0] ?? {};
  const names = Object.keys(first);
  return {
    columns: names.map((name) => ({ name, type: first[name]!.type.encode() })),
    rows: rows.map((r) => ({ items: names.map((n) => r[n]!.encode()) })),
  };
}

/**
 * What this fake can tell of a query YDB would refuse without parsing YQL: a `$name` used but
 * not declared (the SDK declares exactly the parameters given), or a SELECT list naming a
 * column twice. Undefined when neither.
 */
export function checkQuery(text: string): string | undefined {
  const declared = new Set([...text.matchAll(/DECLARE (\$\w+) AS/g)].map((m) => m[1]));
  const body = text.replace(/DECLARE \$\w+ AS [^;]+;\n?/g, '');
  for (const m of body.matchAll(/\$\w+/g)) {
    if (!declared.has(m[0])) return `${m[0]} is not declared`;
  }
  // Several modifications of one table with secondary indexes in one query: refused by YDB
  // versions before immediate effects; ydb-events.ts upsertRows batches them instead.
  const modified = [...body.matchAll(/(?:UPSERT INTO|UPDATE|DELETE FROM) (`[^`]+`)/g)].map(
    (m) => m[1],
  );
  for (const table of new Set(modified)) {
    const count = modified.filter((x) => x === table).length;
    if (count > 1 && !/sequences`$/.test(table!)) return `${table} modified ${count} times`;
  }
  for (const m of body.matchAll(/SELECT\s+([^;]*?)\s+FROM/g)) {
    const names = m[1]!.split(',').map((c) =>
      c
        .trim()
        .split(/\s+AS\s+/i)
        .pop()!
        .trim(),
    );
    const seen = new Set<string>();
    for (const n of names) {
      if (n !== '*' && seen.has(n)) return `column ${n} selected twice`;
      seen.add(n);
    }
  }
  return undefined;
}

/** The query without the DECLAREs the SDK adds. */
function strip(text: string): string {
  return text.replace(/DECLARE \$\w+ AS [^;]+;\n?/g, '');
}
