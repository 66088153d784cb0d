import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { LayersModelExporter } from '../../src/export/exporter';
import { attachHead } from '../../src/models/network';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { userLines } from '../cli/run';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { ROOT, cli } from './cli';

/** A FIFO that would block any reader forever: every case here must finish well inside the spawn timeout. */
const HANG_MS = 60000;

function run(args: string[]): { code: number | null; lines: string[]; stdout: string } {
  const r = cli(args, HANG_MS);
  expect(r.signal, `timed out (blocked on a read?): ${args.join(' ')}`).to.equal(null);
  return { code: r.code, lines: userLines(r.stderr), stdout: r.stdout };
}

function fifo(p: string): string {
  execFileSync('mkfifo', [p]);
  return p;
}

describe('files that are read are checked for their kind first, and names that are not UTF-8 get one line (CLI, dist/)', function () {
  this.timeout(300000);
  let model: string;
  let data: string;
  before(async () => {
    await tf.setBackend('cpu');
    const net = attachHead(await loadLayersFolder(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'), { inputSize: 32 }), ['a', 'b'], { dropout: 0, seed: 3 });
    model = path.join(tmpDir('lt-rk-'), 'model');
    await new LayersModelExporter().export(net, model, { trainingConfig: {}, metrics: {} });
    net.train.dispose();
    data = tmpDir('lt-rk-data-');
    await writeClassFolder(data, { a: 2, b: 2 });
  });

  it('--config that is a FIFO, a folder or /dev/zero: one line naming it, exit 2, no blocking', () => {
    const dir = tmpDir('lt-rk-cfg-');
    const cases: Array<[string, string]> = [
      [fifo(path.join(dir, 'job.yaml')), 'a FIFO'],
      [dir, 'a folder'],
      ['/dev/zero', 'a character device'],
    ];
    for (const [p, kind] of cases) {
      const r = run(['train', '--config', p]);
      expect(r.code, p).to.equal(2);
      expect(r.lines).to.deep.equal([`error: ${p}: is ${kind}, not a job file (a regular file was expected)`]);
    }
  });

  it('an export whose metadata.json or model.json is a FIFO: predict and evaluate refuse it in one line, without blocking', async () => {
    const img = path.join(data, 'a', fs.readdirSync(path.join(data, 'a'))[0]);
    const badMeta = tmpDir('lt-rk-m-');
    fs.cpSync(model, badMeta, { recursive: true });
    fs.rmSync(path.join(badMeta, 'metadata.json'));
    fifo(path.join(badMeta, 'metadata.json'));
    const metaLine = `error: ${path.join(badMeta, 'metadata.json')}: is a FIFO, not a metadata.json (a regular file was expected)`;
    expect(run(['predict', '--model', badMeta, img, '--backend', 'cpu'])).to.deep.include({ code: 2, lines: [metaLine] });
    expect(run(['evaluate', '--model', badMeta, '--data', data, '--backend', 'cpu'])).to.deep.include({ code: 2, lines: [metaLine] });
    const badJson = tmpDir('lt-rk-j-');
    fs.cpSync(model, badJson, { recursive: true });
    fs.rmSync(path.join(badJson, 'model.json'));
    fifo(path.join(badJson, 'model.json'));
    expect(run(['predict', '--model', badJson, img, '--backend', 'cpu'])).to.deep.include({
      code: 2,
      lines: [`error: ${path.join(badJson, 'model.json')}: is a FIFO, not a model.json (a regular file was expected)`],
    });
  });

  it('predict: an image-named FIFO inside a folder is skipped with a warning; one named on the command line is refused', () => {
    const photos = tmpDir('lt-rk-p-');
    fs.copyFileSync(path.join(data, 'a', fs.readdirSync(path.join(data, 'a'))[0]), path.join(photos, 'ok.png'));
    const f = fifo(path.join(photos, 'pipe.jpg'));
    const walked = run(['predict', '--model', model, photos, '--json', '--backend', 'cpu']);
    expect(walked.code).to.equal(0);
    // the other stderr line is the run summary (images/s), which test/cli/predict.test.ts checks
    expect(walked.lines.filter((l) => !l.startsWith('{"summary":'))).to.deep.equal([`warning: ${f}: is a FIFO, not an image file, skipped`]);
    expect(JSON.parse(walked.stdout).map((p: { file: string }) => p.file)).to.deep.equal([path.join(photos, 'ok.png')]);
    expect(run(['predict', '--model', model, path.join(photos, 'ok.png'), f, '--backend', 'cpu'])).to.deep.include({
      code: 2,
      lines: [`error: ${f}: is a FIFO, not an image file or folder`],
    });
  });

  it('evaluate: a FIFO among the images is skipped with the scan warning and never opened', async () => {
    const d = tmpDir('lt-rk-e-');
    await writeClassFolder(d, { a: 2, b: 2 });
    const f = fifo(path.join(d, 'b', 'pipe.png'));
    const r = run(['evaluate', '--model', model, '--data', d, '--json', '--backend', 'cpu']);
    expect(r.code, r.lines.join('\n')).to.equal(0);
    expect(r.lines).to.deep.equal([`warning: ${f}: not a regular file, ignored`]);
    expect(JSON.parse(r.stdout).n).to.equal(4);
  });

  it('a class folder or image whose name is not valid UTF-8: one line naming it hex-escaped, asking for a rename', async () => {
    const d = tmpDir('lt-rk-u-');
    await writeClassFolder(d, { a: 2, b: 2 });
    fs.mkdirSync(Buffer.concat([Buffer.from(`${d}/`), Buffer.from([0x66, 0xff, 0x6f])]));
    const classLine = `error: ${d}/f\\xffo: name is not valid UTF-8; rename it (for example with convmv) so it can be read`;
    expect(run(['train', '--data', d, '--out', tmpDir('lt-rk-out-'), '--size', '32', '--epochs', '1', '--backend', 'cpu'])).to.deep.include({
      code: 2,
      lines: [classLine],
    });
    expect(run(['evaluate', '--model', model, '--data', d, '--backend', 'cpu'])).to.deep.include({ code: 2, lines: [classLine] });

    const e = tmpDir('lt-rk-u2-');
    await writeClassFolder(e, { a: 2, b: 2 });
    const bad = Buffer.concat([Buffer.from(`${e}/a/`), Buffer.from([0x78, 0xc3, 0x28, 0x2e, 0x70, 0x6e, 0x67])]); // "x\xc3(.png": a cut two-byte sequence
    fs.copyFileSync(path.join(e, 'a', fs.readdirSync(path.join(e, 'a'))[0]), bad);
    const imageLine = `error: ${e}/a/x\\xc3(.png: name is not valid UTF-8; rename it (for example with convmv) so it can be read`;
    expect(run(['evaluate', '--model', model, '--data', e, '--backend', 'cpu'])).to.deep.include({ code: 2, lines: [imageLine] });
    expect(run(['predict', '--model', model, path.join(e, 'a'), '--backend', 'cpu'])).to.deep.include({ code: 2, lines: [imageLine] });
  });
});
