import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { cli, cliChild, ROOT } from '../reliability/cli';
import { tmpDir } from '../helpers/images';
import type { Inspection } from '../../src/models/inspect';

const MODEL = 'models/mobilenet_v1_0.25_224';

/** Parameter counts read from the model.json manifest alone, independent of tfjs and of our loader. */
function manifestCounts(): { trainable: number; state: number; classifier: number } {
  const json = JSON.parse(fs.readFileSync(path.join(ROOT, MODEL, 'model.json'), 'utf8'));
  let trainable = 0;
  let state = 0;
  let classifier = 0;
  for (const g of json.weightsManifest) {
    for (const w of g.weights as Array<{ name: string; shape: number[] }>) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      // conv_preds is the 1000-class ImageNet classifier that the backbone cuts off
      if (w.name.startsWith('conv_preds/')) classifier += n;
      else if (/moving_(mean|variance)$/.test(w.name)) state += n;
      else trainable += n;
    }
  }
  return { trainable, state, classifier };
}

describe('cli: layertune inspect', function () {
  this.timeout(120_000);

  it('--json: layers, shapes, parameter counts agreeing with the manifest, stages, head and the default groups', () => {
    const r = cli(['inspect', MODEL, '--json', '--classes', '5']);
    expect(r.code, r.stderr).to.equal(0);
    const i = JSON.parse(r.stdout) as Inspection;
    const m = manifestCounts();
    expect(i.arch).to.equal('mobilenet_v1_0.25');
    expect(i.inputSize).to.equal(224);
    expect(i.preprocess).to.deep.equal({ kind: 'scale', low: -1, high: 1 });
    expect(i.params).to.equal(m.trainable);
    expect(i.stateParams).to.equal(m.state);
    expect(i.layers.reduce((n, l) => n + l.params, 0)).to.equal(i.params);
    // the feature map the head attaches to, and the stem's first convolution
    expect(i.layers[i.layers.length - 1].outputShape).to.deep.equal([null, 7, 7, 256]);
    expect(i.layers.find((l) => l.name === 'conv1')).to.include({ className: 'Conv2D', params: 3 * 3 * 3 * 8 });
    expect(i.layers.find((l) => l.name === 'conv1')!.outputShape).to.deep.equal([null, 112, 112, 8]);
    // stages: contiguous, their parameters add up, resolution halves down to 7
    expect(i.stages.length).to.be.greaterThan(2);
    expect(i.stages.reduce((n, s) => n + s.params, 0)).to.equal(i.params);
    expect(i.stages.reduce((n, s) => n + s.layers, 0)).to.equal(i.layers.length);
    expect(i.stages[i.stages.length - 1].outputShape).to.deep.equal([null, 7, 7, 256]);
    // head: pooling → dropout → dense for 5 classes
    expect(i.headClasses).to.equal(5);
    expect(i.head.map((h) => h.className)).to.deep.equal(['GlobalAveragePooling2D', 'Dropout', 'Dense']);
    expect(i.head[2].params).to.equal(256 * 5 + 5);
    // default plan: 3 stepped groups at 0.001/0.01/0.1, front to back, covering every weight exactly once
    expect(i.groups.map((g) => g.name)).to.deep.equal(['g0', 'g1', 'g2']);
    expect(i.groups.map((g) => g.lr)).to.deep.equal([0.001, 0.01, 0.1]);
    expect(i.groups.reduce((n, g) => n + g.params, 0)).to.equal(i.params + 256 * 5 + 5);
    expect(i.groups[0].stages[0]).to.equal(i.stages[0].name);
    expect(i.groups[2].stages).to.include('head');
    const stageOrder = [...i.stages.map((s) => s.name), 'head'];
    const flat = i.groups.flatMap((g) => g.stages);
    expect(flat).to.deep.equal([...flat].sort((a, b) => stageOrder.indexOf(a) - stageOrder.indexOf(b)));
    expect(new Set(flat).size).to.equal(stageOrder.length);
  });

  it('prints tables for a terminal', () => {
    const r = cli(['inspect', MODEL, '--no-layers']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^mobilenet_v1_0\.25 +input 224x224x3 +params [\d,]+ /);
    expect(r.stdout).to.match(/\ngroups of the default plan/);
    expect(r.stdout).to.match(/\ng0\t0\.001\tstem/);
    expect(r.stdout).to.match(/\nlt_head_dense\tDense\t\[\?,2\]\t514\n/);
    // --no-layers: no per-layer rows
    expect(r.stdout).not.to.match(/\nconv_dw_5\t/);
  });

  it('a GraphModel served over http: downloaded into $LAYERTUNE_CACHE, reported head-only with only the head in the groups', async () => {
    const graph = path.join(ROOT, 'test', 'fixtures', 'models', 'mobilenet_v1_0.25_224_graph');
    const server = http.createServer((req, res) => {
      const file = path.join(graph, path.basename(req.url ?? ''));
      if (!req.url?.startsWith('/g/') || !fs.existsSync(file)) return void res.writeHead(404).end();
      const body = fs.readFileSync(file);
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const cache = tmpDir('lt-cli-cache-');
    const saved = process.env.LAYERTUNE_CACHE;
    process.env.LAYERTUNE_CACHE = cache;
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/g/model.json`;
      // async child: the server in this process must keep answering while the CLI runs
      const r = await cliChild(['inspect', url, '--json']);
      expect(r.code, r.stderr).to.equal(0);
      const i = JSON.parse(r.stdout) as Inspection;
      expect(i).to.include({ arch: 'mobilenet_v1_graph', source: url, params: 0 });
      expect(i.headOnly).to.match(/inference-only/);
      expect(i.stages.map((s) => s.outputShape)).to.deep.equal([[null, 256]]);
      expect(i.groups.filter((g) => g.params > 0)).to.deep.equal([{ name: 'g2', lr: 0.1, stages: ['head'], layers: 1, params: 256 * 2 + 2 }]);
      expect(fs.readdirSync(path.join(cache, 'models'))).to.have.length(1);
    } finally {
      if (saved === undefined) delete process.env.LAYERTUNE_CACHE;
      else process.env.LAYERTUNE_CACHE = saved;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });

  it('a missing model is one line naming the path, exit 2', () => {
    const r = cli(['inspect', 'models/no-such-model']);
    expect(r.code).to.equal(2);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/models\/no-such-model/);
  });
});
