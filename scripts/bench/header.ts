/**
 * The header every bench output starts with, and its closing line: a ratio against PyTorch depends on the CPU, the
 * load and the peer's BLAS and threads (issue 16 saw the same peer 1.4-2.3x apart between two runs), so each output
 * names them. Pure parsing is separate from the reading of /proc and the spawning of python, for tests.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { kernelBuild } from '../../src/engine/wasm/kernel-build';

export const PEER_PYTHON = '/usr/bin/python3';

/** The `model name` of the first processor in /proc/cpuinfo text, or null. */
export function cpuModelOf(cpuinfo: string): string | null {
  const m = /^model name\s*:\s*(.+)$/m.exec(cpuinfo);
  return m ? m[1].trim() : null;
}

/** BLAS_INFO (and LAPACK_INFO) from `torch.__config__.show()`: which BLAS torch was built against. */
export function blasSummaryOf(show: string): string {
  const field = (k: string) => new RegExp(`${k}=([^,\\s]+)`).exec(show)?.[1];
  const blas = field('BLAS_INFO');
  const lapack = field('LAPACK_INFO');
  const mkl = /MKL not found/.test(show) ? null : /Intel\(R\) (oneAPI )?Math Kernel Library[^\n]*/.exec(show)?.[0];
  return [blas ? `BLAS_INFO=${blas}` : 'BLAS_INFO not reported', lapack ? `LAPACK_INFO=${lapack}` : null, mkl ?? null].filter(Boolean).join(', ');
}

/** The BLAS and threading variables of an environment (what the peer inherits). */
export function threadEnvOf(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env)
      .filter(([k, v]) => v !== undefined && /^(OPENBLAS_|OMP_|MKL_|GOTO_)/.test(k))
      .sort(([a], [b]) => (a < b ? -1 : 1)) as Array<[string, string]>,
  );
}

export interface PeerInfo {
  torch: string;
  blas: string;
  /** Where Debian's libblas.so.3 alternative points (OpenBLAS or the 30x slower reference BLAS). */
  libblas: string | null;
  /** torch.get_num_threads() with no set_num_threads call: what the peer gets unless its --threads says otherwise. */
  defaultThreads: number;
}

/** What the PyTorch peer runs with, or null when it is not installed. */
export function peerInfo(python = PEER_PYTHON): PeerInfo | null {
  const code = [
    'import json, torch',
    'print(json.dumps({"torch": torch.__version__, "show": torch.__config__.show(), "threads": torch.get_num_threads()}))',
  ].join('\n');
  let raw: { torch: string; show: string; threads: number };
  try {
    raw = JSON.parse(
      execFileSync(python, ['-c', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')
        .pop()!,
    );
  } catch {
    return null;
  }
  let libblas: string | null = null;
  for (const p of ['/usr/lib/x86_64-linux-gnu/libblas.so.3', '/usr/lib/aarch64-linux-gnu/libblas.so.3']) {
    try {
      libblas = fs.realpathSync(p);
      break;
    } catch {
      // not this architecture's path
    }
  }
  return { torch: raw.torch, blas: blasSummaryOf(raw.show), libblas, defaultThreads: raw.threads };
}

const fmtLoad = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');

export interface HeaderInput {
  /** What layertune runs on in this bench, e.g. 'wasm, wasm x2, cpu' or 'wasm, train threads 1 (auto: ...)'. */
  layertune: string;
  /** The --threads the peer is given, or null when it keeps torch's default. */
  peerThreads: number | null;
  peer: PeerInfo | null;
  cpuModel: string | null;
  cores: number;
  load: number[];
  node: string;
  kernels: string;
  env: Record<string, string>;
}

/** The header's lines (pure): one fact per line, then a warning when the load already exceeds the cores. */
export function headerLines(h: HeaderInput): string[] {
  const env = Object.entries(h.env);
  const lines = [
    `# cpu: ${h.cpuModel ?? 'unknown'}, ${h.cores} core(s)`,
    `# load at start (1/5/15 min): ${fmtLoad(h.load)}`,
    `# node ${h.node}, wasm kernels ${h.kernels}`,
    `# layertune: ${h.layertune}`,
    h.peer
      ? `# peer: torch ${h.peer.torch}, ${h.peer.blas}, libblas ${h.peer.libblas ?? 'unknown'}, ` +
        `threads ${h.peerThreads ?? h.peer.defaultThreads} (torch default ${h.peer.defaultThreads})`
      : '# peer: not run (not installed, --no-peer, or not part of this mode): PyTorch columns stay empty',
    `# peer env: ${env.length ? env.map(([k, v]) => `${k}=${v}`).join(' ') : 'no OPENBLAS_*/OMP_*/MKL_* set'}`,
  ];
  if (h.load[0] > h.cores) {
    lines.push(`# warning: load ${h.load[0].toFixed(2)} exceeds the ${h.cores} core(s): these timings are not comparable with a quiet machine's`);
  }
  return lines;
}

/** Reads this machine and prints the header to stdout; returns the start load for the closing line. */
export function printHeader(layertune: string, peerThreads: number | null, usePeer: boolean): number[] {
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: the model from os.cpus() below
  }
  const load = os.loadavg();
  const lines = headerLines({
    layertune,
    peerThreads,
    peer: usePeer ? peerInfo() : null,
    cpuModel: cpuModelOf(cpuinfo) ?? os.cpus()[0]?.model ?? null,
    cores: os.availableParallelism(),
    load,
    node: process.version,
    kernels: kernelBuild(),
    env: threadEnvOf(process.env),
  });
  for (const l of lines) console.log(l);
  return load;
}

/** The closing line: the load at the end beside the start's, so a run whose load changed can be told apart. */
export function printFooter(start: number[]): void {
  console.log(`# load at end (1/5/15 min): ${fmtLoad(os.loadavg())} (start ${fmtLoad(start)})`);
}
