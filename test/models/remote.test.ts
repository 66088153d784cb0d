import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { ModelFormatError } from '../../src/errors';
import { loadBackbone } from '../../src/models/registry';
import { checkParity } from '../../src/models/parity';
import { disposeLoaded } from '../../src/models/torch-source';
import { cacheFolderFor, defaultCacheDir, fetchToCache, type RemoteOptions } from '../../src/models/remote';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');
const MOBILENET = path.join(ROOT, 'models', 'mobilenet_v1_0.25_224');
const GRAPH = path.join(__dirname, '..', 'fixtures', 'models', 'mobilenet_v1_0.25_224_graph');
const PARITY = path.join(__dirname, '..', 'fixtures', 'parity');

type Route = (res: http.ServerResponse) => void;

const sendFile =
  (file: string, transform: (b: Buffer) => Buffer = (b) => b): Route =>
  (res) => {
    const body = transform(fs.readFileSync(file));
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  };
const sendJson =
  (v: unknown): Route =>
  (res) => {
    const body = Buffer.from(JSON.stringify(v));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  };

/** A model folder served at /prefix/, optionally with one file rewritten. */
function folderRoutes(prefix: string, dir: string, edit: Record<string, Route> = {}): Map<string, Route> {
  const m = new Map<string, Route>();
  for (const f of fs.readdirSync(dir)) m.set(`/${prefix}/${f}`, edit[f] ?? sendFile(path.join(dir, f)));
  return m;
}

describe('models: remote sources (http on 127.0.0.1, a user cache folder)', function () {
  this.timeout(120_000);
  let server: http.Server;
  let base: string;
  let routes = new Map<string, Route>();
  const requests: string[] = [];
  let cache: string;
  let stopper: NodeJS.Timeout;
  const logs: string[] = [];
  const opts = (o: Partial<RemoteOptions> = {}): RemoteOptions => ({ cacheDir: cache, log: (l) => logs.push(l), idleTimeoutMs: 5000, ...o });

  before(async () => {
    await tf.setBackend('wasm');
    cache = tmpDir('lt-cache-');
    const shardName = 'group1-shard1of1';
    routes = new Map([
      ...folderRoutes('m', MOBILENET),
      ...folderRoutes('graph', GRAPH),
      // one shard 100 bytes short, with an honest content-length: only the manifest can tell
      ...folderRoutes('trunc', MOBILENET, { [shardName]: sendFile(path.join(MOBILENET, shardName), (b) => b.subarray(0, b.length - 100)) }),
      // one shard padded beyond what its group declares
      ...folderRoutes('padded', MOBILENET, { [shardName]: sendFile(path.join(MOBILENET, shardName), (b) => Buffer.concat([b, Buffer.alloc(4096)])) }),
      // the same, chunked (no content-length): the stream itself is cut off
      ...folderRoutes('chunked', MOBILENET, {
        [shardName]: (res) => {
          res.writeHead(200);
          res.write(fs.readFileSync(path.join(MOBILENET, shardName)));
          res.end(Buffer.alloc(4096));
        },
      }),
      [
        '/escape/model.json',
        sendJson({
          ...JSON.parse(fs.readFileSync(path.join(MOBILENET, 'model.json'), 'utf8')),
          weightsManifest: [{ paths: ['../m/group1-shard1of1'], weights: [] }],
        }),
      ],
      ['/st/mobilenet_v2.safetensors', sendFile(path.join(PARITY, 'mobilenet_v2.safetensors'))],
      ['/st/short.safetensors', sendFile(path.join(PARITY, 'mobilenet_v2.safetensors'), (b) => b.subarray(0, b.length - 8))],
      // headers, then silence: the idle timeout must end it
      ['/hang/model.json', (res) => res.writeHead(200, { 'content-length': 1000 })],
    ]);
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      const route = routes.get((req.url ?? '').split('?')[0]);
      if (route) return route(res);
      res.writeHead(404, { 'content-length': 9 });
      res.end('not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // bounded: whatever happens to the tests, the server goes away
    stopper = setTimeout(() => server.closeAllConnections(), 110_000).unref();
  });

  after(async () => {
    clearTimeout(stopper);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(cache, { recursive: true, force: true });
  });

  beforeEach(() => {
    requests.length = 0;
    logs.length = 0;
  });

  it('the cache folder is $LAYERTUNE_CACHE, else $XDG_CACHE_HOME/layertune, else ~/.cache/layertune; one folder per URL hash', () => {
    expect(defaultCacheDir({ LAYERTUNE_CACHE: '/c/lt', XDG_CACHE_HOME: '/x' })).to.equal('/c/lt');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).to.equal('/x/layertune');
    expect(defaultCacheDir({})).to.match(/\.cache\/layertune$/);
    const a = cacheFolderFor('http://h/a/model.json', '/c');
    expect(a).to.match(/^\/c\/models\/[0-9a-f]{16}$/);
    expect(cacheFolderFor('http://h/b/model.json', '/c')).not.to.equal(a);
  });

  it('downloads a tfjs LayersModel once (model.json + every shard), then loads it from the cache without a request', async () => {
    const url = `${base}/m/model.json`;
    const b = await loadBackbone(url, { remote: opts({ progressMinBytes: 1024 }) });
    const shards = fs.readdirSync(MOBILENET).length - 1;
    expect(requests.filter((r) => r.startsWith('/m/'))).to.have.length(1 + shards);
    expect(b.source).to.equal(url);
    expect(b.arch).to.equal('mobilenet_v1_0.25');
    // same features as the local folder
    const local = await loadBackbone(MOBILENET);
    const x = tf.randomUniform([1, 224, 224, 3], -1, 1, 'float32', 3);
    const diff = tf.tidy(
      () =>
        (b.model.predict(x) as tf.Tensor)
          .sub(local.model.predict(x) as tf.Tensor)
          .abs()
          .max()
          .dataSync()[0],
    );
    expect(diff).to.equal(0);
    // cache layout: byte-identical copies and a record of where they came from
    const dir = cacheFolderFor(url, cache);
    for (const f of fs.readdirSync(MOBILENET)) expect(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(MOBILENET, f))), f).to.equal(true);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'source.json'), 'utf8'))).to.include({ url });
    expect(
      logs.some((l) => /^downloaded .*model\.json: \d+\.\d MB$/.test(l)),
      logs.join('\n'),
    ).to.equal(true);
    requests.length = 0;
    const again = await loadBackbone(url, { remote: opts() });
    expect(requests).to.deep.equal([]);
    tf.dispose(x);
    for (const m of [b, local, again]) m.model.dispose();
  });

  it('a truncated shard is refused against the manifest byte count; nothing is cached and no temporary is left', async () => {
    const url = `${base}/trunc/model.json`;
    const e = await rejected(loadBackbone(url, { remote: opts() }));
    expect(e).to.be.instanceOf(ModelFormatError);
    expect(e.message).to.match(
      /^http:\/\/127\.0\.0\.1:\d+\/trunc\/model\.json: weightsManifest\[\d+\] declares \d+ bytes but the downloaded shards \(group1-shard1of1\) hold \d+; no cached copy exists \(looked in .*\)$/,
    );
    expect(fs.existsSync(cacheFolderFor(url, cache))).to.equal(false);
    expect(fs.readdirSync(path.join(cache, 'models')).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  });

  it('a shard larger than its group declares is cut off at the first excess byte', async () => {
    const e = await rejected(fetchToCache(`${base}/padded/model.json`, opts()));
    expect(e.message).to.match(
      /padded\/model\.json: weightsManifest\[\d+\] \(group1-shard1of1\): the server announces \d+ bytes, more than the \d+ the manifest leaves for it; no cached copy exists/,
    );
    const c = await rejected(fetchToCache(`${base}/chunked/model.json`, opts()));
    expect(c.message).to.match(
      /chunked\/model\.json: weightsManifest\[\d+\] \(group1-shard1of1\): the server sent more than the \d+ bytes the manifest leaves for it; no cached copy exists/,
    );
  });

  it('weight paths that leave the model folder are refused before any shard is requested', async () => {
    const e = await rejected(fetchToCache(`${base}/escape/model.json`, opts()));
    expect(e.message).to.match(/escape\/model\.json: weightsManifest\[0\]\.paths\[0\]: weight path "\.\.\/m\/group1-shard1of1" leaves the model folder/);
    expect(requests).to.deep.equal(['/escape/model.json']);
  });

  it('a 404 says so and that no cached copy exists; --offline-like use without a cache says so too', async () => {
    const url = `${base}/missing/model.json`;
    const e = await rejected(loadBackbone(url, { remote: opts() }));
    expect(e).to.be.instanceOf(ModelFormatError);
    expect(e.message).to.match(/missing\/model\.json: download failed: HTTP 404 Not Found for model\.json .*; no cached copy exists \(looked in /);
    const off = await rejected(fetchToCache(url, opts({ offline: true })));
    expect(off.message).to.match(/offline \(LAYERTUNE_OFFLINE=1\) and no cached copy exists/);
    expect(requests).to.deep.equal(['/missing/model.json']);
  });

  it('refresh re-downloads; when that fails the cached copy is used with a warning; offline uses the cache without a request', async () => {
    const url = `${base}/graph/model.json`;
    const first = await fetchToCache(url, opts());
    const saved = new Map(routes);
    try {
      for (const k of [...routes.keys()]) if (k.startsWith('/graph/')) routes.delete(k);
      requests.length = 0;
      expect(await fetchToCache(url, opts({ offline: true }))).to.equal(first);
      expect(requests).to.deep.equal([]);
      const again = await fetchToCache(url, opts({ refresh: true }));
      expect(again).to.equal(first);
      expect(requests).to.deep.equal(['/graph/model.json']);
      expect(logs.join('\n')).to.match(
        /^warning: http:\/\/127\.0\.0\.1:\d+\/graph\/model\.json: could not refresh \(download failed: HTTP 404 Not Found for model\.json .*\); using the cached copy in .* from \d{4}-/m,
      );
    } finally {
      routes = saved;
    }
    // the GraphModel from a URL: a head-only backbone whose source is the URL
    const b = await loadBackbone(url, { remote: opts() });
    expect(b.headOnly).to.be.a('string');
    expect(b.source).to.equal(url);
    b.model.dispose();
  });

  it('a connection refused, and a server that goes silent, are clear errors', async () => {
    const dead = http.createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((resolve) => dead.close(resolve));
    const e = await rejected(fetchToCache(`http://127.0.0.1:${port}/x/model.json`, opts()));
    expect(e.message).to.match(/download failed: ECONNREFUSED; no cached copy exists/);
    const t0 = Date.now();
    const h = await rejected(fetchToCache(`${base}/hang/model.json`, opts({ idleTimeoutMs: 300 })));
    expect(h.message).to.match(/hang\/model\.json: download failed: the server stopped sending data \(idle timeout\); no cached copy exists/);
    expect(Date.now() - t0).to.be.below(5000);
  });

  it('safetensors over http: checked against its header, then loaded to the same logits as torchvision', async () => {
    const url = `${base}/st/mobilenet_v2.safetensors`;
    const loaded = await loadBackbone(url, { remote: opts() });
    expect(loaded.source).to.equal(url);
    const r = checkParity('mobilenet_v2', loaded, path.join(PARITY, 'mobilenet_v2.io.safetensors'));
    expect(r.ok, JSON.stringify(r)).to.equal(true);
    disposeLoaded(loaded);
    const e = await rejected(fetchToCache(`${base}/st/short.safetensors`, opts()));
    expect(e.message).to.match(/short\.safetensors: safetensors .*; no cached copy exists/);
    expect(fs.existsSync(cacheFolderFor(`${base}/st/short.safetensors`, cache))).to.equal(false);
  });

  it('file:// URLs load the local folder', async () => {
    const b = await loadBackbone(pathToFileURL(MOBILENET).href);
    expect(b.model.outputs[0].shape).to.deep.equal([null, 7, 7, 256]);
    b.model.dispose();
  });

  it('an unrecognised URL is refused before any request', async () => {
    const e = await rejected(fetchToCache(`${base}/weights.bin`, opts()));
    expect(e.message).to.match(/weights\.bin: unrecognised remote model URL/);
    expect(requests).to.deep.equal([]);
  });
});

async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}
