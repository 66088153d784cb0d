import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { attachHead } from '../../src/models/network';
import { LayersModelExporter } from '../../src/export/exporter';
import { decodeImage } from '../../src/data/decode';
import { tmpDir } from '../helpers/images';
import { layertune, ROOT } from '../cli/run';

const CHROMIUM = '/usr/bin/chromium';
const FLOWERS = path.join(ROOT, 'data', 'flowers');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // a synthetic camera, so the webcam path runs without hardware or a permission prompt
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];
const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };

function serve(root: string): Promise<{ url: string; close: () => void }> {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const f = path.join(root, rel === '/' ? 'index.html' : rel);
    if (!f.startsWith(root) || !fs.existsSync(f) || !fs.statSync(f).isFile()) return res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': MIME[path.extname(f)] ?? 'application/octet-stream' }).end(fs.readFileSync(f));
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() })),
  );
}

describe('the export-web page in a real Chromium', function () {
  this.timeout(300000);
  let web: string;
  let images: string[];
  let reference: Array<{ file: string; top: Array<{ label: string; index: number; probability: number }> }>;
  let browser: import('playwright-core').BrowserContext;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium before the tests`);
      console.log(`      skipped: ${CHROMIUM} not installed (apt-get install -y chromium); with CI=true this fails`);
      this.skip();
    }
    await tf.setBackend('cpu');
    const net = attachHead(await loadLayersFolder(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'), { inputSize: 96 }), CLASSES, { dropout: 0, seed: 3 });
    const dense = net.train.getLayer('lt_head_dense');
    dense.setWeights(dense.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.1, 'float32', 11)));
    const root = tmpDir('lt-web-');
    const model = path.join(root, 'model');
    await new LayersModelExporter().export(net, model, { trainingConfig: {}, metrics: {} });
    // fixtures at the input size, so neither the browser's nor sharp's resampling enters the comparison
    images = [];
    for (const c of CLASSES) {
      const src = path.join(FLOWERS, c, fs.readdirSync(path.join(FLOWERS, c))[0]);
      const px = await decodeImage(src, { size: 96 });
      const f = path.join(root, `${c}.png`);
      await sharp(Buffer.from(px), { raw: { width: 96, height: 96, channels: 3 } })
        .png()
        .toFile(f);
      images.push(f);
    }
    const r = layertune(['predict', '--model', model, ...images, '--json', '--top', '5', '--backend', 'cpu']);
    expect(r.code, r.stderr).to.equal(0);
    reference = JSON.parse(r.stdout);
    web = path.join(root, 'web');
    const w = layertune(['export-web', '--model', model, '--out', web]);
    expect(w.code, w.stderr).to.equal(0);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launchPersistentContext(tmpDir('lt-chromium-'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
  });

  after(async () => {
    await browser?.close();
  });

  it("classifies picked images with predict's top-1 and probabilities within 1e-3, and the webcam stream", async () => {
    const site = await serve(web);
    const page = await browser.newPage();
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(site.url) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) outside.push(r.url());
    });
    try {
      await page.goto(site.url);
      await page.waitForSelector('body[data-state]');
      expect(await page.getAttribute('body', 'data-state'), (await page.textContent('#status')) ?? '').to.equal('ready');
      const backend = await page.getAttribute('body', 'data-backend');
      await page.setInputFiles('#pick', images);
      await page.waitForSelector(`body[data-classified="${images.length}"]`);
      const rows = await page.$$eval('li.result', (lis) =>
        lis.map((li) => ({ file: li.getAttribute('data-file'), probs: JSON.parse(li.getAttribute('data-probs') ?? '[]') })),
      );
      let worst = 0;
      rows.forEach((row, i) => {
        expect(row.file).to.equal(path.basename(images[i]));
        const top = row.probs.indexOf(Math.max(...row.probs));
        expect(CLASSES[top]).to.equal(reference[i].top[0].label);
        for (const t of reference[i].top) worst = Math.max(worst, Math.abs(row.probs[t.index] - t.probability));
      });
      expect(worst).to.be.below(1e-3);
      expect(new Set(reference.map((p) => p.top[0].label)).size).to.be.greaterThan(1);
      await page.click('#webcam');
      await page.waitForSelector('#webcam-result[data-frames]');
      expect(await page.$$eval('#webcam-result .bar', (b) => b.length)).to.equal(5);
      await page.screenshot({ path: '/tmp/layertune-export-web.png', fullPage: true });
      console.log(`      backend ${backend}; max |Δp| vs predict ${worst.toExponential(2)}; screenshot /tmp/layertune-export-web.png`);
      expect(outside).to.deep.equal([]);
    } finally {
      await page.close();
      site.close();
    }
  });

  for (const [name, breakIt, message] of [
    ['no metadata.json', (d: string) => fs.rmSync(path.join(d, 'model', 'metadata.json')), /has no metadata\.json \(model\/metadata\.json: HTTP 404\)/],
    [
      'labels that do not match the output width',
      (d: string) => {
        const f = path.join(d, 'model', 'metadata.json');
        const m = JSON.parse(fs.readFileSync(f, 'utf8'));
        fs.writeFileSync(f, JSON.stringify({ ...m, labels: m.labels.slice(0, 4) }));
      },
      /names 4 labels but the model has 5 outputs/,
    ],
  ] as const) {
    it(`shows a clear message, not a blank page, for an export folder with ${name}`, async () => {
      const copy = path.join(tmpDir('lt-web-bad-'), 'web');
      fs.cpSync(web, copy, { recursive: true });
      breakIt(copy);
      const site = await serve(copy);
      const page = await browser.newPage();
      try {
        await page.goto(site.url);
        await page.waitForSelector('body[data-state]');
        expect(await page.getAttribute('body', 'data-state')).to.equal('error');
        expect(await page.textContent('#status')).to.match(message);
        expect(await page.isVisible('#status.error')).to.equal(true);
      } finally {
        await page.close();
        site.close();
      }
    });
  }
});
