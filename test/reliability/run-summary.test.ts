/**
 * The end of the image-input matrix: a real `layertune train` over a folder that mixes good images
 * with bad ones finishes, exports, prints the skipped files and lists them in summary.json.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { cli } from './cli';
import { pngBombHeader, writeBrokenJpegs } from './files';

describe('reliability: a training run over a folder with bad files', function () {
  this.timeout(300000);

  it('trains on the good images, skips and counts the bad ones, and lists them in summary.json', async () => {
    const data = tmpDir('lt-summary-data-');
    await writeClassFolder(data, { red: 5, blue: 5 });
    const { corrupt } = await writeBrokenJpegs(path.join(data, 'red'));
    fs.rmSync(path.join(data, 'red', 'truncated.jpg'));
    const bomb = path.join(data, 'blue', 'bomb.png');
    fs.writeFileSync(bomb, pngBombHeader(30000, 30000));
    fs.writeFileSync(path.join(data, 'blue', 'empty.png'), '');
    const out = path.join(tmpDir('lt-summary-run-'), 'run');
    const r = cli(['train', '--data', data, '--out', out, '--epochs', '1', '--size', '32', '--batch', '4', '--backend', 'wasm', '--seed', '3']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/skipped 3 file\(s\):/);
    expect(r.stdout).to.contain(`${bomb}: declares 30000x30000`);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    const skipped = new Map<string, string>(summary.skipped.map((s: { file: string; reason: string }) => [s.file, s.reason]));
    expect([...skipped.keys()].sort()).to.deep.equal([bomb, path.join(data, 'blue', 'empty.png'), corrupt].sort());
    expect(skipped.get(bomb)).to.match(/over the limit of 67108864 \(data\.maxPixels\)/);
    expect(skipped.get(corrupt)).to.match(/not a readable image|cannot decode/);
    // the warning also reached stderr once per file, not once per epoch or pass
    expect(r.stderr.split('\n').filter((l) => l.includes('LAYERTUNE_SKIPPED_IMAGE') && l.includes(bomb))).to.have.length(1);
    expect(fs.readdirSync(path.join(out, 'model')).sort()).to.deep.equal(['checksums.sha256', 'metadata.json', 'model.json', 'weights.bin']);
  });

  // files skipped at scan time are counted in source.skipped like decode failures
  it('lists files skipped at scan time (a symlink loop) in summary.json too', async () => {
    const data = tmpDir('lt-summary-scan-');
    await writeClassFolder(data, { red: 3, blue: 3 });
    const loop = path.join(data, 'red', 'loop.jpg');
    fs.symlinkSync('loop.jpg', loop);
    const out = path.join(tmpDir('lt-summary-scan-run-'), 'run');
    const r = cli(['train', '--data', data, '--out', out, '--epochs', '1', '--size', '32', '--batch', '4', '--backend', 'wasm']);
    expect(r.code, r.stderr).to.equal(0);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.skipped).to.deep.equal([{ file: loop, reason: `${loop}: symlink loop` }]);
  });
});
