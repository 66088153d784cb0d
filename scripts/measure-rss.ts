/**
 * Issue 16's memory target: the resident set of a full-backbone ResNet-18 run over 1,000 images at 224 px.
 *
 *   npx tsx scripts/measure-rss.ts [--epochs 1] [--images 1000] [--threads 2] [--batch 16] [--keep]
 *
 * Builds a folder of `--images` photos in a temporary directory (flowers5's 300 photos linked under distinct names,
 * its 5 classes, so each file decodes and caches as its own image), trains a randomly initialised ResNet-18
 * (`arch:resnet18`; random weights take the memory pretrained ones do) with nothing frozen, and prints the peak RSS,
 * each epoch's peak and closing RSS and tf.memory().numTensors after each epoch.
 *
 * RSS is sampled every second by a worker thread (process.memoryUsage().rss is the whole process's), so a sample
 * is taken while the main thread is inside a training step too; the kernel's own high-water mark (VmHWM) is printed
 * beside it, which a one-second sampler cannot undercount. The sampler thread's own few MB are in both figures.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { wasmHeap } from '../src/engine/wasm/module';
import { runJob } from '../src/job';
import type { Callback } from '../src/train/callbacks';

const FLOWERS = path.join(__dirname, '..', '..', 'shared', 'data', 'flowers5');
// decimal units, as the target (2 GB = 2e9 bytes) is stated
const MB = 1e6;

/** `images` links to the photos of `source` (one folder per class), spread evenly over the classes. */
function buildFolder(source: string, dir: string, images: number): { classes: string[]; perClass: number[] } {
  const classes = fs
    .readdirSync(source, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const perClass = classes.map((_, i) => Math.floor(images / classes.length) + (i < images % classes.length ? 1 : 0));
  classes.forEach((c, i) => {
    const photos = fs.readdirSync(path.join(source, c)).sort();
    if (photos.length === 0) throw new Error(`${path.join(source, c)} holds no photos`);
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    for (let k = 0; k < perClass[i]; k++) {
      const photo = photos[k % photos.length];
      fs.symlinkSync(path.join(source, c, photo), path.join(dir, c, `${String(k).padStart(4, '0')}_${photo}`));
    }
  });
  return { classes, perClass };
}

/** The kernel's peak resident set of this process (VmHWM), bytes. */
function highWaterMark(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/**
 * The resident MB of each anonymous mapping of this process holding over `minMB` resident, largest first: every
 * tfjs-wasm instance's heap is one (its size is the heap's length), so the threads' heaps show apart.
 */
function largeAnonymousMappings(minMB = 100): Array<{ sizeMB: number; rssMB: number }> {
  const out: Array<{ sizeMB: number; rssMB: number }> = [];
  let anonymous = false;
  let size = 0;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      anonymous = head[1] === '';
      continue;
    }
    const m = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (!m || !anonymous) continue;
    if (m[1] === 'Size') size = Number(m[2]);
    else if ((Number(m[2]) * 1024) / MB >= minMB) out.push({ sizeMB: (size * 1024) / MB, rssMB: (Number(m[2]) * 1024) / MB });
  }
  return out.sort((a, b) => b.rssMB - a.rssMB);
}

/**
 * Samples process.memoryUsage().rss every `ms` on its own thread into a shared array (KiB): [latest, peak since the
 * last reset, samples]. Off the main thread, so the samples keep coming while a training step holds it.
 */
function startSampler(ms: number): { latest(): number; takePeak(): number; samples(): number; stop(): Promise<number> } {
  const shared = new Int32Array(new SharedArrayBuffer(12));
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const a = new Int32Array(workerData.buf);
    const sample = () => {
      const kib = Math.round(process.memoryUsage().rss / 1024);
      Atomics.store(a, 0, kib);
      // the peak, raised unless the main thread reset it in between (Atomics has no max)
      for (let m = Atomics.load(a, 1); kib > m; ) {
        const seen = Atomics.compareExchange(a, 1, m, kib);
        if (seen === m) break;
        m = seen;
      }
      Atomics.add(a, 2, 1);
    };
    sample();
    const t = setInterval(sample, workerData.ms);
    parentPort.on('message', () => { clearInterval(t); parentPort.close(); });
  `;
  const worker = new Worker(code, { eval: true, workerData: { buf: shared.buffer, ms } });
  return {
    latest: () => Atomics.load(shared, 0) * 1024,
    // the peak since the last call, restarted from the latest sample
    takePeak: () => Atomics.exchange(shared, 1, Atomics.load(shared, 0)) * 1024,
    samples: () => Atomics.load(shared, 2),
    stop: () => {
      worker.postMessage('stop');
      return new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      epochs: { type: 'string', default: '1' },
      images: { type: 'string', default: '1000' },
      threads: { type: 'string', default: '2' },
      batch: { type: 'string', default: '16' },
      'cache-mb': { type: 'string', default: '512' },
      keep: { type: 'boolean', default: false },
    },
  });
  const epochs = Number(values.epochs);
  const images = Number(values.images);
  const threads = Number(values.threads);
  const batch = Number(values.batch);
  const cacheMB = Number(values['cache-mb']);
  for (const [name, v] of Object.entries({ epochs, images, threads, batch })) {
    if (!Number.isInteger(v) || v < 1) {
      console.error(`--${name}: a positive integer, got ${values[name as keyof typeof values]}`);
      process.exit(2);
    }
  }
  if (!(cacheMB >= 0)) {
    console.error(`--cache-mb: a number >= 0 (data.cacheMB, MiB of decoded images kept), got ${values['cache-mb']}`);
    process.exit(2);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-rss-'));
  const data = path.join(root, 'data');
  const { classes, perClass } = buildFolder(FLOWERS, data, images);
  const sampler = startSampler(1000);
  const mb = (b: number) => `${(b / MB).toFixed(0)} MB`;
  console.log(`data: ${images} images in ${data} (${classes.map((c, i) => `${c} ${perClass[i]}`).join(', ')})`);
  console.log(`start: RSS ${mb(process.memoryUsage().rss)}`);
  const rows: Array<{ epoch: number; peak: number; end: number; numTensors: number; seconds: number }> = [];
  let beforeFit = 0;
  const watch: Callback = {
    beforeFit: () => {
      // what loading the network and preparing the data took, apart from the epochs
      beforeFit = sampler.takePeak();
    },
    afterEpoch: (info) => {
      rows.push({ epoch: info.epoch + 1, peak: sampler.takePeak(), end: process.memoryUsage().rss, numTensors: info.numTensors, seconds: info.seconds });
      const r = rows[rows.length - 1];
      console.log(`epoch ${r.epoch}: peak RSS ${mb(r.peak)}, RSS at its end ${mb(r.end)}, numTensors ${r.numTensors}, ${r.seconds.toFixed(0)} s`);
      // where the resident set is: V8's heap, array buffers outside it (decoded images, the gradient workers'
      // shared weight and gradient buffers), and this thread's tfjs-wasm heap (which grows and never shrinks)
      const u = process.memoryUsage();
      const heap = tf.getBackend() === 'wasm' ? mb(wasmHeap(tf.backend() as unknown as BackendWasm).buffer.byteLength) : 'n/a';
      console.log(
        `  at its end: V8 heap used ${mb(u.heapUsed)}, array buffers ${mb(u.arrayBuffers)}, other external ${mb(u.external - u.arrayBuffers)}, ` +
          `this thread's wasm heap ${heap}, live tensors here ${mb(tf.memory().numBytes)}`,
      );
      const maps = largeAnonymousMappings();
      console.log(
        `  anonymous mappings over 100 MB resident (the wasm heaps, one a thread): ${maps.map((m) => `${m.rssMB.toFixed(0)} of ${m.sizeMB.toFixed(0)} MB`).join(', ')}`,
      );
    },
  };
  const load0 = os.loadavg();
  try {
    await runJob(
      {
        data: { dir: data, cacheMB },
        model: { source: 'arch:resnet18', size: 224 },
        train: { epochs, batch, threads },
        backend: 'wasm',
        out: path.join(root, 'run'),
      },
      { callbacks: [watch], report: false, log: (l) => void (/^(backend|data|threads|warning)/.test(l) && console.log(l)) },
    );
  } finally {
    await sampler.stop();
    if (!values.keep) fs.rmSync(root, { recursive: true, force: true });
  }
  const peak = Math.max(beforeFit, ...rows.map((r) => r.peak));
  const load1 = os.loadavg();
  console.log(`before the first epoch (network built, data listed): peak RSS ${mb(beforeFit)}`);
  console.log(`peak RSS ${mb(peak)} (sampled every second, ${sampler.samples()} samples); kernel high-water mark VmHWM ${mb(highWaterMark())}`);
  console.log(`RSS per epoch (peak / end): ${rows.map((r) => `${mb(r.peak)} / ${mb(r.end)}`).join(', ')}`);
  console.log(`numTensors per epoch: ${rows.map((r) => r.numTensors).join(', ')}`);
  console.log(`load ${load0.map((x) => x.toFixed(2)).join(' ')} at the start, ${load1.map((x) => x.toFixed(2)).join(' ')} at the end`);
  console.log(peak < 2e9 ? 'below the 2 GB target' : 'AT OR ABOVE the 2 GB target');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
