import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KERNELS_FMA_WASM_PATH, KERNELS_WASM_PATH } from '../../src/engine/wasm';
import { relaxedSimdAvailable } from '../../src/engine/wasm/kernel-build';
import { WINOGRAD_FMA_WASM_PATH, WINOGRAD_WASM_PATH } from '../../src/engine/wasm/winograd';

const root = path.join(__dirname, '..', '..');
const hasClang16 = spawnSync('clang-16', ['--version']).status === 0;

/** Which build a fresh process picks, with the given LAYERTUNE_KERNELS. */
function chosenIn(env: string | undefined): { status: number | null; out: string } {
  const code = "const k = require('./src/engine/wasm/kernel-build'); console.log(k.kernelBuild());";
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, LAYERTUNE_KERNELS: env },
  });
  return { status: r.status, out: (r.stdout + r.stderr).trim() };
}

describe('engine/wasm kernel builds (SIMD128 and relaxed-SIMD FMA)', function () {
  this.timeout(120_000);

  it('this runtime validates relaxed-SIMD madd (on by default from Node 22, behind a V8 flag on Node 20)', () => {
    expect(relaxedSimdAvailable()).to.equal(true);
  });

  it('auto picks FMA where it validates; LAYERTUNE_KERNELS forces either; a wrong value names the variable', () => {
    expect(chosenIn(undefined).out).to.equal('fma');
    expect(chosenIn('auto').out).to.equal('fma');
    expect(chosenIn('simd128').out).to.equal('simd128');
    expect(chosenIn('fma').out).to.equal('fma');
    const bad = chosenIn('avx');
    expect(bad.status).to.not.equal(0);
    expect(bad.out).to.match(/LAYERTUNE_KERNELS: "avx" is not one of auto, simd128, fma/);
  });

  for (const [name, simd, fma] of [
    ['train_kernels', KERNELS_WASM_PATH, KERNELS_FMA_WASM_PATH],
    ['winograd', WINOGRAD_WASM_PATH, WINOGRAD_FMA_WASM_PATH],
  ]) {
    it(`${name}: the FMA build imports only env.memory and exports what the SIMD128 build exports`, () => {
      const a = new WebAssembly.Module(fs.readFileSync(simd));
      const b = new WebAssembly.Module(fs.readFileSync(fma));
      expect(WebAssembly.Module.imports(b)).to.deep.equal([{ module: 'env', name: 'memory', kind: 'memory' }]);
      expect(WebAssembly.Module.exports(b)).to.deep.equal(WebAssembly.Module.exports(a));
      // it really is another build: relaxed_madd (0xfd 0x85 0x02) needs the relaxed-SIMD feature to validate
      expect(fs.readFileSync(fma).equals(fs.readFileSync(simd))).to.equal(false);
    });

    // committed because CI has no clang-16; this keeps the bytes honest wherever it exists
    (hasClang16 ? it : it.skip)(`${name}: the committed FMA build matches a fresh clang-16 build byte for byte`, () => {
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ltf-')), 'k.wasm');
      execFileSync(path.join(root, 'scripts', 'build-wasm-kernels.sh'), [out], {
        stdio: 'pipe',
        env: { ...process.env, BUILD: 'fma', SRC: `csrc/${name}.c` },
      });
      expect(fs.readFileSync(out).equals(fs.readFileSync(fma)), `${fma} is stale: run BUILD=fma scripts/build-wasm-kernels.sh and commit it`).to.equal(true);
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
    });
  }
});
