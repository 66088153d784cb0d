import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { ConfigError, ModelFormatError } from '../../src/errors';
import { checkParity, classifySource, disposeLoaded, inferTorchArch, loadBackbone, modelSourceSchema, readSafetensors } from '../../src/models';
import { encodeSafetensors, type SafetensorsDtype } from '../../src/models/safetensors';
import { buildArch, type BuiltArch } from '../../src/models/arch';
import { disposeBuilt } from '../../src/models/torch-source';

const ROOT = path.join(__dirname, '..', '..');
const PARITY = path.join(ROOT, 'test', 'fixtures', 'parity');

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** Rewrites a safetensors file tensor by tensor (rename, reshape, drop) for bad-input cases. */
function rewrite(
  src: string,
  dst: string,
  edit: (
    name: string,
    t: { dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array },
  ) => { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array } | null,
): void {
  const st = readSafetensors(src);
  const out = [];
  for (const [name, info] of st.tensors) {
    const t = edit(name, { dtype: info.dtype, shape: info.shape, bytes: st.data.slice(info.begin, info.end) });
    if (t) out.push(t);
  }
  fs.writeFileSync(dst, encodeSafetensors(out, st.metadata));
}

/** Writes a built model's weights under torchvision names (the inverse of the loader), for inference tests. */
function saveTorchNamed(built: BuiltArch, file: string): void {
  const model = built.classifier ?? built.features;
  const out: Array<{ name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }> = [];
  for (const p of built.params) {
    const ws = model.getLayer(p.layer).getWeights();
    const suffixes = p.kind === 'bn' ? ['weight', 'bias', 'running_mean', 'running_var'] : ['weight', 'bias'];
    ws.forEach((w, i) => {
      const perm = i > 0 || p.kind === 'bn' ? undefined : p.kind === 'conv' ? [3, 2, 0, 1] : p.kind === 'depthwise' ? [2, 3, 0, 1] : [1, 0];
      const t = perm ? w.transpose(perm) : w;
      out.push({ name: `${p.torch}.${suffixes[i]}`, dtype: 'F32', shape: t.shape, bytes: new Uint8Array((t.dataSync() as Float32Array).slice().buffer) });
      if (t !== w) t.dispose();
    });
  }
  fs.writeFileSync(file, encodeSafetensors(out));
}

describe('models: registry and loaders', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    await tf.setBackend('wasm');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layertune-models-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('classifies URIs by kind without loading', () => {
    expect(classifySource('arch:resnet18')).to.deep.equal({ kind: 'scratch', location: 'resnet18' });
    expect(classifySource('file:///x/w.safetensors')).to.deep.equal({ kind: 'safetensors', location: '/x/w.safetensors' });
    expect(classifySource('/x/mobilenet.h5').kind).to.equal('keras-h5');
    expect(classifySource(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224')).kind).to.equal('tfjs-layers');
    expect(() => classifySource('https://example.com/model.json')).to.throw(ModelFormatError, /remote URLs are classified after download/);
    expect(() => classifySource('/nope/missing')).to.throw(ModelFormatError, /^\/nope\/missing: no such file or folder/);
    const odd = path.join(dir, 'weights.bin');
    fs.writeFileSync(odd, 'x');
    expect(() => classifySource(odd)).to.throw(ModelFormatError, /unrecognised model file extension "\.bin"/);
  });

  it('loads the shipped tfjs LayersModel through the same entry point', async () => {
    const b = await loadBackbone(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'));
    expect(b.model.outputs[0].shape).to.deep.equal([null, 7, 7, 256]);
    b.model.dispose();
  });

  it('a GraphModel folder loads as a head-only backbone; one without a known embedding node is refused', async () => {
    const g = path.join(dir, 'graph');
    fs.mkdirSync(g);
    // a valid graph (one input placeholder) that is no MobileNet @tensorflow-models/mobilenet knows
    const node = [{ name: 'images', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' } } }];
    fs.writeFileSync(
      path.join(g, 'model.json'),
      JSON.stringify({ format: 'graph-model', modelTopology: { node, versions: { producer: 27 } }, weightsManifest: [] }),
    );
    const e = await rejection(loadBackbone(g));
    expect(e).to.be.instanceOf(ModelFormatError);
    expect(e.message).to.match(/model\.json: GraphModel nodes: no known embedding node/);
    const b = await loadBackbone(path.join(__dirname, '..', 'fixtures', 'models', 'mobilenet_v1_0.25_224_graph'));
    expect(b.headOnly).to.match(/inference-only/);
    b.model.dispose();
  });

  it('arch: URIs build a randomly initialised backbone; unknown names are ConfigErrors on model.arch', async () => {
    const b = await loadBackbone('arch:mobilenet_v2_0.5', { inputSize: 96 });
    expect(b.arch).to.equal('mobilenet_v2_0.5');
    expect(b.model.outputs[0].shape).to.deep.equal([null, 3, 3, 1280]);
    disposeLoaded(b);
    const e = await rejection(loadBackbone('arch:resnet19'));
    expect(e).to.be.instanceOf(ConfigError);
    expect(e.message).to.match(/^model\.arch: unknown architecture "resnet19"/);
  });

  it('infers ResNet-34/50 and MobileNetV2 widths and any class count from tensor names and shapes', async () => {
    const cases: Array<[string, number]> = [
      ['resnet34', 7],
      ['resnet50', 3],
      ['mobilenet_v2_0.35', 2],
      ['mobilenet_v2_1.4', 12],
    ];
    for (const [arch, classes] of cases) {
      const built = buildArch(arch, { convention: 'torch', inputSize: 64, numClasses: classes });
      const file = path.join(dir, `${arch}.safetensors`);
      saveTorchNamed(built, file);
      expect(inferTorchArch(readSafetensors(file))).to.deep.equal({ arch, naming: 'torchvision', numClasses: classes });
      const loaded = await loadBackbone(file, { inputSize: 64 });
      // the round trip is exact: every weight went back to the layer it came from
      const x = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 2);
      const diff = tf.tidy(
        () =>
          (loaded.classifier!.predict(x) as tf.Tensor)
            .sub(built.classifier!.predict(x) as tf.Tensor)
            .abs()
            .max()
            .dataSync()[0],
      );
      expect(diff, arch).to.equal(0);
      x.dispose();
      disposeLoaded(loaded);
      disposeBuilt(built);
      fs.unlinkSync(file);
    }
  });

  it('timm MobileNetV2 names load to the same logits as torchvision names', async () => {
    // an independent statement of timm's layout: stem conv_stem/bn1; blocks.<stage>.<i> with
    // conv_dw/bn1/conv_pw/bn2 (first, no expansion) or conv_pw/bn1/conv_dw/bn2/conv_pwl/bn3; conv_head/bn2; classifier
    const repeats = [1, 2, 3, 4, 3, 3, 1];
    const blockOf: string[] = [];
    repeats.forEach((n, s) => {
      for (let i = 0; i < n; i++) blockOf.push(`blocks.${s}.${i}`);
    });
    const toTimm = (name: string): string => {
      const rest = name;
      let m = /^features\.0\.(0|1)\.(.*)$/.exec(rest);
      if (m) return `${m[1] === '0' ? 'conv_stem' : 'bn1'}.${m[2]}`;
      m = /^features\.18\.(0|1)\.(.*)$/.exec(rest);
      if (m) return `${m[1] === '0' ? 'conv_head' : 'bn2'}.${m[2]}`;
      m = /^classifier\.1\.(.*)$/.exec(rest);
      if (m) return `classifier.${m[1]}`;
      m = /^features\.(\d+)\.conv\.(.*)$/.exec(rest)!;
      const k = Number(m[1]);
      const parts: Record<string, string> =
        k === 1
          ? { '0.0': 'conv_dw', '0.1': 'bn1', '1': 'conv_pw', '2': 'bn2' }
          : { '0.0': 'conv_pw', '0.1': 'bn1', '1.0': 'conv_dw', '1.1': 'bn2', '2': 'conv_pwl', '3': 'bn3' };
      const mm = /^((?:\d\.)?\d)\.([a-z_]+)$/.exec(m[2])!;
      return `${blockOf[k - 1]}.${parts[mm[1]]}.${mm[2]}`;
    };
    const file = path.join(dir, 'timm_mobilenetv2_100.safetensors');
    rewrite(path.join(PARITY, 'mobilenet_v2.safetensors'), file, (name, t) => ({ name: name.endsWith('num_batches_tracked') ? name : toTimm(name), ...t }));
    const loaded = await loadBackbone(file);
    expect(loaded.arch).to.equal('mobilenet_v2_1.0');
    const r = checkParity('timm_mobilenetv2', loaded, path.join(PARITY, 'mobilenet_v2.io.safetensors'));
    expect(r.ok, JSON.stringify(r)).to.equal(true);
    disposeLoaded(loaded);
  });

  describe('bad PyTorch files name the file and the tensor', () => {
    it('a tensor shape that does not match the architecture', async () => {
      const file = path.join(dir, 'badshape.safetensors');
      rewrite(path.join(PARITY, 'mobilenet_v2.safetensors'), file, (name, t) =>
        name === 'features.3.conv.1.0.weight' ? { name, dtype: t.dtype, shape: [144, 1, 1, 9], bytes: t.bytes } : { name, ...t },
      );
      const e = await rejection(loadBackbone(file));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.equal(
        `${file}: 1 weight problem(s) loading mobilenet_v2_1.0: tensor "features.3.conv.1.0.weight".shape: [144,1,1,9] does not match mobilenet_v2_1.0 (layer block_2_depthwise needs [144,1,3,3])`,
      );
    });
    it('a missing tensor and a tensor nobody uses', async () => {
      const file = path.join(dir, 'renamed.safetensors');
      rewrite(path.join(PARITY, 'mobilenet_v2.safetensors'), file, (name, t) => ({
        name: name === 'features.5.conv.3.bias' ? 'features.5.conv.3.shift' : name,
        ...t,
      }));
      const e = await rejection(loadBackbone(file));
      expect(e.message)
        .to.contain('2 weight problem(s)')
        .and.contain('tensor "features.5.conv.3.bias": missing (needed by layer block_4_project_BN)')
        .and.contain('tensor "features.5.conv.3.shift": not used by mobilenet_v2_1.0');
    });
    it('a forced architecture that does not fit', async () => {
      const e = await rejection(loadBackbone(path.join(PARITY, 'resnet18.safetensors'), { arch: 'resnet34' }));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.match(/resnet18\.safetensors: \d+ weight problem\(s\) loading resnet34: tensor "layer1\.2\.conv1\.weight": missing/);
    });
    it('an unknown forced architecture', async () => {
      const e = await rejection(loadBackbone(path.join(PARITY, 'resnet18.safetensors'), { arch: 'vgg16' }));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.match(/resnet18\.safetensors: field arch: unknown architecture "vgg16"/);
    });
    it('tensor names of no supported architecture', async () => {
      const file = path.join(dir, 'bert.safetensors');
      fs.writeFileSync(file, encodeSafetensors([{ name: 'embeddings.weight', dtype: 'F32', shape: [1], bytes: new Uint8Array(4) }]));
      const e = await rejection(loadBackbone(file));
      expect(e.message).to.match(/bert\.safetensors: tensor names: cannot tell the architecture/);
    });
    it('data offsets out of range', async () => {
      const file = path.join(dir, 'truncated.safetensors');
      const bytes = fs.readFileSync(path.join(PARITY, 'mobilenet_v2.safetensors'));
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100));
      const e = await rejection(loadBackbone(file));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.match(/truncated\.safetensors: safetensors header field "[^"]+"\.data_offsets: \[\d+, \d+\] is out of range/);
    });
  });

  it('the zod schema fills the default source and refuses unknown keys and architectures', () => {
    expect(modelSourceSchema.parse({})).to.deep.equal({ source: 'models/mobilenet_v1_0.25_224' });
    expect(modelSourceSchema.safeParse({ arch: 'resnet19' }).success).to.equal(false);
    expect(modelSourceSchema.safeParse({ sorce: 'x' }).success).to.equal(false);
    expect(modelSourceSchema.parse({ source: 'w.safetensors', arch: 'resnet50', size: 160 })).to.deep.equal({
      source: 'w.safetensors',
      arch: 'resnet50',
      size: 160,
    });
  });
});

describe('scripts/check-parity.ts', function () {
  this.timeout(180_000);
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'check-parity.ts'), ...args], { encoding: 'utf-8', cwd: ROOT });

  it('prints one ok JSON line per fixture pair and exits 0', () => {
    const r = run([PARITY]);
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.model)).to.deep.equal(['mobilenet_v2', 'resnet18']);
    for (const l of lines) {
      expect(Object.keys(l)).to.deep.equal(['model', 'maxAbsErr', 'maxAbsLogit', 'argmaxAgree', 'ok']);
      expect(l.ok).to.equal(true);
      expect(l.maxAbsErr).to.be.at.most(1e-3 * l.maxAbsLogit);
    }
  });

  it('exits non-zero and marks the model when the reference logits disagree', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'layertune-parity-'));
    try {
      fs.copyFileSync(path.join(PARITY, 'mobilenet_v2.safetensors'), path.join(d, 'seed7.safetensors'));
      rewrite(path.join(PARITY, 'mobilenet_v2.io.safetensors'), path.join(d, 'seed7.io.safetensors'), (name, t) => {
        if (name !== 'logits') return { name, ...t };
        const v = new Float32Array(t.bytes.slice().buffer);
        v[0] += 0.01; // > 1e-3 × max|logit| (≈ 0.17)
        return { name, ...t, bytes: new Uint8Array(v.buffer) };
      });
      const r = run([d]);
      expect(r.status).to.equal(1);
      const line = JSON.parse(r.stdout.trim());
      expect(line).to.include({ model: 'seed7', ok: false });
      expect(line.maxAbsErr).to.be.closeTo(0.01, 1e-4);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('exits 2 on a folder without pairs', () => {
    const r = run([path.join(ROOT, 'models')]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('no NAME.safetensors + NAME.io.safetensors pairs');
  });
});
