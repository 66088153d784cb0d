import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
const VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

/** Plain node, no tsx: what an installed package runs. `npm test` builds dist first (pretest). */
function node(args: string[], cwd = ROOT) {
  const env = { ...process.env, NODE_OPTIONS: '' };
  return spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8', timeout: 120000 });
}

describe('the compiled package (dist/) on plain Node', function () {
  this.timeout(180000);

  before(() => {
    if (!fs.existsSync(path.join(DIST, 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  });

  it('ships the wasm kernels beside their compiled loaders, and no TypeScript', () => {
    for (const f of ['train_kernels.wasm', 'winograd.wasm']) expect(fs.existsSync(path.join(DIST, 'engine', 'wasm', f)), f).to.equal(true);
    expect(fs.existsSync(path.join(DIST, 'engine', 'wasm', 'parallel-worker.js'))).to.equal(true);
  });

  it('bin/layertune.js prints the package version and the usage', () => {
    const v = node([path.join(ROOT, 'bin', 'layertune.js'), '--version']);
    expect(v.status, v.stderr).to.equal(0);
    expect(v.stdout.trim()).to.equal(VERSION);
    const h = node([path.join(DIST, 'cli', 'main.js'), '--help']);
    expect(h.status, h.stderr).to.equal(0);
    expect(h.stdout)
      .to.match(/Usage: layertune/)
      .and.match(/demo/);
  });

  it('a bin symlink (as node_modules/.bin makes) still runs the CLI', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-bin-'));
    try {
      const link = path.join(dir, 'layertune');
      fs.symlinkSync(path.join(ROOT, 'bin', 'layertune.js'), link);
      const r = node([link, '--version'], dir);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal(VERSION);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the parallel worker, reads the version and finds the embedded model from another working directory', () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-dist-'));
    try {
      const r = node([path.join(__dirname, 'dist-child.js')], cwd);
      expect(r.status, r.stderr).to.equal(0);
      const got = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(Number.isFinite(got.loss)).to.equal(true);
      expect(got.version).to.equal(VERSION);
      expect(got.kind).to.equal('tfjs-layers');
      expect(got.defaultModel).to.equal(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224', 'model.json'));
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});
