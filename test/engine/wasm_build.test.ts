import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KERNELS_WASM_PATH } from '../../src/engine/wasm';
import { WINOGRAD_WASM_PATH } from '../../src/engine/wasm/winograd';

const root = path.join(__dirname, '..', '..');
const hasClang = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe('engine/wasm committed kernel binary', function () {
  this.timeout(60000);

  it('is a valid wasm module that imports only env.memory', () => {
    const mod = new WebAssembly.Module(fs.readFileSync(KERNELS_WASM_PATH));
    expect(WebAssembly.Module.imports(mod)).to.deep.equal([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    expect(names).to.include.members([
      'conv2d_bp_filter',
      'conv2d_bp_input',
      'dw_bp_filter',
      'dw_bp_input',
      'bn_train_fwd',
      'bn_train_bwd',
      'bn_infer',
      'clamp_fwd',
      'clamp_bwd',
    ]);
  });

  // The .wasm is committed because CI and users have no clang; this keeps it honest where clang exists.
  (hasClang ? it : it.skip)('matches a fresh build of csrc/ byte for byte (clang present)', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ltk-')), 'k.wasm');
    execFileSync(path.join(root, 'scripts', 'build-wasm-kernels.sh'), [out], { stdio: 'pipe' });
    expect(
      fs.readFileSync(out).equals(fs.readFileSync(KERNELS_WASM_PATH)),
      'src/engine/wasm/train_kernels.wasm is stale: run scripts/build-wasm-kernels.sh and commit it',
    ).to.equal(true);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });
});

describe('engine/wasm committed Winograd binary', function () {
  this.timeout(60000);

  it('is a valid wasm module that imports only env.memory', () => {
    const mod = new WebAssembly.Module(fs.readFileSync(WINOGRAD_WASM_PATH));
    expect(WebAssembly.Module.imports(mod)).to.deep.equal([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).to.include.members(['wino_filter', 'wino_conv3x3']);
  });

  (hasClang ? it : it.skip)('matches a fresh build of csrc/winograd.c byte for byte (clang present)', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ltw-')), 'w.wasm');
    execFileSync(path.join(root, 'scripts', 'build-wasm-kernels.sh'), [out], { stdio: 'pipe', env: { ...process.env, SRC: 'csrc/winograd.c' } });
    expect(
      fs.readFileSync(out).equals(fs.readFileSync(WINOGRAD_WASM_PATH)),
      'src/engine/wasm/winograd.wasm is stale: run scripts/build-wasm-kernels.sh and commit it',
    ).to.equal(true);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });
});
