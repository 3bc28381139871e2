// What the results were measured on: hardware, versions of every server involved, the commit.
import { execFileSync } from 'node:child_process';
import os from 'node:os';

function firstLine(cmd: string, args: string[], re?: RegExp): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const line = out.split('\n').find((l) => (re ? re.test(l) : l.trim().length > 0)) ?? '';
    return line.trim();
  } catch (err) {
    return `unavailable (${(err as Error).message.split('\n')[0]})`;
  }
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  dcmtk: string;
  orthanc: string;
  postgres: string;
  rgw: string;
  gitCommit: string;
  /** Files changed in the work tree against that commit (the bench measures the work tree). */
  gitDirtyFiles: number;
}

export function machineInfo(root: string, postgres: string): MachineInfo {
  const git = (args: string[]): string => firstLine('git', ['-C', root, ...args]);
  let dirty: number;
  try {
    dirty = execFileSync('git', ['-C', root, 'status', '--porcelain'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim()).length;
  } catch {
    dirty = -1;
  }
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    dcmtk: firstLine('storescp', ['--version'], /dcmtk/i)
      .replace(/^\$|\$$/g, '')
      .trim(),
    orthanc: firstLine('/usr/sbin/Orthanc', ['--version']),
    postgres,
    rgw: firstLine('radosgw', ['--version']),
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirtyFiles: dirty,
  };
}
