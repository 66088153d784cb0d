/**
 * The config schema is what a tool reads to validate or document a job; loading it must not load tfjs (seconds
 * of start-up, and a native binding on some machines). Each compiled schema module is required in a fresh Node
 * and the module cache is searched for '@tensorflow/tfjs'.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const DIST = path.join(__dirname, '..', '..', 'dist');

/** The '@tensorflow/tfjs…' modules a fresh Node has loaded after requiring `file`. */
function tfjsLoadedBy(file: string): string[] {
  const probe = `require(${JSON.stringify(file)}); console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('@tensorflow/tfjs'))))`;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60000 });
  if (r.status !== 0) throw new Error(`requiring ${file} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** dist/config/*.js and every dist/**\/schema.js. */
function schemaModules(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'schema.js' || (path.basename(dir) === 'config' && dir === path.join(DIST, 'config') && e.name.endsWith('.js'))) out.push(p);
    }
  };
  walk(DIST);
  return out.sort();
}

describe('schema modules do not load tfjs', function () {
  this.timeout(300000);
  before(() => {
    if (!fs.existsSync(path.join(DIST, 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  });

  it('the probe sees tfjs when a module does load it (control)', () => {
    expect(tfjsLoadedBy(path.join(DIST, 'engine', 'backend.js'))).to.include.members([require.resolve('@tensorflow/tfjs')]);
  });

  it('dist/config/*.js and every **/schema.js load without it', () => {
    const files = schemaModules();
    expect(files.map((f) => path.relative(DIST, f))).to.include.members(['config/schema.js', 'config/load.js', 'train/schema.js', 'optim/schema.js']);
    for (const f of files) expect(tfjsLoadedBy(f), path.relative(DIST, f)).to.deep.equal([]);
  });
});
