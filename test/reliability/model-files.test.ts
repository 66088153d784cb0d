/**
 * Untrusted model files (issue 8, item 2). Cases already covered elsewhere and not repeated here:
 * test/models/layers-folder.test.ts (a `../` weight path, byte counts that disagree with the
 * shards, a manifest declaring 4e11 bytes, missing shard, broken JSON) and
 * test/models/safetensors.test.ts (header over the cap or a custom cap, header past the end, bad
 * dtype/shape/offsets, overlaps, holes, trailing bytes: those parse bytes already in memory). Each case here must be refused with a
 * ModelFormatError naming the file, before any large allocation: the tests watch RSS and time.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MAX_JSON_DEPTH, MAX_MODEL_JSON_BYTES, readModelArtifacts, topologyVariableBytes } from '../../src/models/io';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { readSafetensors } from '../../src/models/safetensors';
import { ModelFormatError } from '../../src/errors';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');
const SHIPPED = path.join(ROOT, 'models', 'mobilenet_v1_0.25_224');
const TM_V2 = path.join(ROOT, 'test', 'fixtures', 'models', 'tm_mobilenet_v2_0.35_3class');

function copyModel(from = SHIPPED): string {
  const d = tmpDir('lt-hostile-');
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(d, f));
  return d;
}

function editJson(d: string, edit: (j: any) => void): string {
  const file = path.join(d, 'model.json');
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
}

/** Runs `f`, expecting a ModelFormatError matching `pattern`; returns the RSS growth (bytes) and the time it took. */
async function refused(f: () => unknown, pattern: RegExp): Promise<{ rssGrowth: number; ms: number }> {
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  let err: unknown;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  const ms = Date.now() - t0;
  expect(err, 'an error').to.be.instanceOf(ModelFormatError);
  expect((err as Error).message).to.match(pattern);
  expect((err as Error).message.split('\n')).to.have.length(1);
  return { rssGrowth: process.memoryUsage().rss - rss0, ms };
}

const MB = 1024 * 1024;

describe('reliability: untrusted model files', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('infers exactly the variable bytes the manifests of the shipped and fixture LayersModels declare', () => {
    for (const dir of [SHIPPED, TM_V2]) {
      const j = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const declared = j.weightsManifest
        .flatMap((g: any) => g.weights)
        .reduce((a: number, w: any) => a + 4 * w.shape.reduce((x: number, y: number) => x * y, 1), 0);
      expect(topologyVariableBytes(j.modelTopology), dir).to.equal(declared);
    }
    // 475,544 parameters (README of the shared models), float32
    expect(topologyVariableBytes(JSON.parse(fs.readFileSync(path.join(SHIPPED, 'model.json'), 'utf8')).modelTopology)).to.equal(475544 * 4);
  });

  it('refuses a layer config that lies about its size before tfjs builds (would allocate 2.2 GB)', async () => {
    const d = copyModel();
    editJson(d, (j) => {
      j.modelTopology.model_config.config.layers.find((l: any) => l.name === 'conv1').config.filters = 20_000_000;
    });
    const r = await refused(() => loadLayersFolder(d), /would build \d+ bytes of variables but the manifest holds 1902176/);
    expect(r.rssGrowth).to.be.lessThan(100 * MB);
  });

  it('refuses a Dense layer after a Flatten whose input size makes the kernel absurd', async () => {
    const d = copyModel();
    editJson(d, (j) => {
      const layers = j.modelTopology.model_config.config.layers;
      layers[0].config.batch_input_shape = [null, 8192, 8192, 3];
      const conv = layers.find((l: any) => l.name === 'conv1');
      layers.splice(
        layers.indexOf(conv) + 1,
        0,
        { class_name: 'Flatten', name: 'flat', config: { name: 'flat' }, inbound_nodes: [[['conv1', 0, 0, {}]]] },
        { class_name: 'Dense', name: 'huge', config: { name: 'huge', units: 64 }, inbound_nodes: [[['flat', 0, 0, {}]]] },
      );
    });
    await refused(() => readModelArtifacts(path.join(d, 'model.json')), /would build \d+ bytes/);
  });

  it('refuses an absolute weight path and a symlinked shard that points outside the folder', async () => {
    const d = copyModel();
    const file = editJson(d, (j) => (j.weightsManifest[0].paths = ['/etc/hostname']));
    await refused(() => readModelArtifacts(file), /weight path "\/etc\/hostname" leaves the model folder/);
    const e = copyModel();
    const outside = path.join(tmpDir(), 'secret.bin');
    fs.writeFileSync(outside, fs.readFileSync(path.join(e, 'group1-shard1of1')));
    fs.rmSync(path.join(e, 'group1-shard1of1'));
    fs.symlinkSync(outside, path.join(e, 'group1-shard1of1'));
    await refused(() => readModelArtifacts(path.join(e, 'model.json')), /links outside the model folder/);
  });

  it('refuses a shard that is a FIFO (it would block a read forever)', async () => {
    const d = copyModel();
    fs.rmSync(path.join(d, 'group1-shard1of1'));
    execFileSync('mkfifo', [path.join(d, 'group1-shard1of1')]);
    await refused(() => readModelArtifacts(path.join(d, 'model.json')), /group1-shard1of1: weight shard is not a regular file/);
  });

  it('compares shard sizes before reading: a 3 GB (sparse) shard is refused without being loaded', async () => {
    const d = copyModel();
    fs.truncateSync(path.join(d, 'group1-shard1of1'), 3 * 1024 * MB);
    const r = await refused(() => readModelArtifacts(path.join(d, 'model.json')), /weightsManifest\[0\] declares \d+ bytes but its shards hold 3221225472/);
    expect(r.rssGrowth).to.be.lessThan(100 * MB);
    expect(r.ms).to.be.lessThan(2000);
  });

  it('refuses dtypes that lie: unknown, string, an unknown quantization, float16 over float32 bytes', async () => {
    const cases: Array<[(w: any) => void, RegExp]> = [
      [(w) => (w.dtype = 'complex64'), /unsupported dtype complex64/],
      [(w) => (w.dtype = 'string'), /unsupported dtype string/],
      [(w) => (w.quantization = { dtype: 'int4', scale: 1, min: 0 }), /unsupported quantization dtype int4/],
      [(w) => (w.dtype = 'float16'), /declares \d+ bytes but its shards hold \d+/],
      [(w) => (w.quantization = { dtype: 'uint8', scale: 1, min: 0 }), /declares \d+ bytes but its shards hold \d+/],
    ];
    for (const [lie, pattern] of cases) {
      const d = copyModel();
      const file = editJson(d, (j) => lie(j.weightsManifest[0].weights[0]));
      await refused(() => readModelArtifacts(file), pattern);
    }
  });

  it('refuses shapes that are not lists of non-negative integers, and products past the limit', async () => {
    for (const shape of [[3, -3], [1.5, 2], 'big', [1e308, 1e308], [2 ** 31, 2 ** 31, 4]]) {
      const d = copyModel();
      const file = editJson(d, (j) => (j.weightsManifest[0].weights[0].shape = shape));
      await refused(() => readModelArtifacts(file), /invalid shape|over the limit/);
    }
  });

  it('refuses a deeply nested model.json (a JSON bomb for recursive walkers) before tfjs sees it', async () => {
    const d = copyModel();
    const file = path.join(d, 'model.json');
    const text = fs.readFileSync(file, 'utf8');
    const depth = 200_000;
    // inside a layer config, which tfjs converts key by key recursively (its stack overflows near 10^4 levels)
    const at = text.indexOf('"config":{', text.indexOf('"InputLayer"')) + '"config":{'.length;
    expect(at).to.be.greaterThan(10);
    fs.writeFileSync(file, `${text.slice(0, at)}"x":${'['.repeat(depth)}${']'.repeat(depth)},${text.slice(at)}`);
    await refused(() => loadLayersFolder(d), new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`));
  });

  it('refuses a model.json over the size cap without reading it', async () => {
    const d = copyModel();
    fs.truncateSync(path.join(d, 'model.json'), MAX_MODEL_JSON_BYTES + 1);
    const r = await refused(() => readModelArtifacts(path.join(d, 'model.json')), /over the 33554432-byte limit/);
    expect(r.rssGrowth).to.be.lessThan(16 * MB);
  });

  // readSafetensors checks the file type and header size from an 8-byte read before loading anything
  it('safetensors: a FIFO is refused without blocking, and an over-cap header before the file is read', async () => {
    const dir = tmpDir('lt-st-');
    const fifo = path.join(dir, 'w.safetensors');
    execFileSync('mkfifo', [fifo]);
    await refused(() => readSafetensors(fifo), /w\.safetensors: not a regular file/);
    const big = path.join(dir, 'big.safetensors');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(1n << 40n);
    fs.writeFileSync(big, prefix);
    fs.truncateSync(big, 1536 * MB); // sparse: 1.5 GB that would be read (and allocated) whole
    const r = await refused(() => readSafetensors(big), /header length: 1099511627776 bytes exceeds the \d+-byte limit/);
    expect(r.rssGrowth).to.be.lessThan(100 * MB);
    expect(r.ms).to.be.lessThan(1000);
  });

  it('still loads the unmodified models (no false alarms): shipped MobileNet v1 and the nested Teachable Machine MobileNetV2', () => {
    expect(readModelArtifacts(path.join(SHIPPED, 'model.json')).weightSpecs).to.have.length.greaterThan(50);
    expect(readModelArtifacts(path.join(TM_V2, 'model.json')).weightSpecs).to.have.length.greaterThan(50);
  });
});
