/*
 * The classifier page `layertune export-web` writes beside a copy of an export. It reads model/metadata.json
 * for the labels, input size and input convention, and feeds the graph exactly what `layertune predict` feeds
 * it: the image stretched to the input size, then the preprocessing metadata.json names.
 */
(async () => {
  const $ = (id) => document.getElementById(id);
  const status = $('status');
  const TOP_K = 5;

  function fail(message) {
    status.textContent = message;
    status.className = 'error';
    document.body.dataset.state = 'error';
  }

  // WebGL where the browser has it; WASM (from vendor/, never a CDN) where it does not; plain JS last
  async function pickBackend() {
    tf.wasm.setWasmPaths('vendor/');
    for (const name of ['webgl', 'wasm', 'cpu']) {
      try {
        if (await tf.setBackend(name)) {
          await tf.ready();
          return name;
        }
      } catch (_) {
        // try the next one
      }
    }
    throw new Error('no tfjs backend could start');
  }

  let meta;
  try {
    const r = await fetch('model/metadata.json');
    if (!r.ok) {
      return fail(
        `This export has no metadata.json (model/metadata.json: HTTP ${r.status}), so the page cannot name its classes or prepare images. ` +
          'Export the model with layertune, or put its metadata.json beside model.json.',
      );
    }
    meta = await r.json();
  } catch (e) {
    return fail(`model/metadata.json could not be read: ${e.message}`);
  }
  if (!Array.isArray(meta.labels) || meta.labels.length === 0) return fail('model/metadata.json has no "labels" list, so the classes have no names.');
  const size = meta.inputSize ?? meta.imageSize;
  if (!Number.isInteger(size)) return fail('model/metadata.json has no "inputSize" (or "imageSize"): the page does not know the input size.');

  let backend;
  let model;
  try {
    backend = await pickBackend();
    model = await tf.loadLayersModel('model/model.json');
  } catch (e) {
    return fail(`model/model.json could not be loaded: ${e.message}`);
  }
  const width = model.outputs[0].shape[model.outputs[0].shape.length - 1];
  if (width !== meta.labels.length) {
    return fail(`model/metadata.json names ${meta.labels.length} labels but the model has ${width} outputs: these files do not belong to the same export.`);
  }
  const convention = meta.inputConvention ?? 'preprocessed';
  const pre = meta.preprocessing ?? { kind: 'scale', low: -1, high: 1 };

  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });

  // the same arithmetic, in the same order, as src/data/preprocess.ts, so the page and predict agree to float rounding
  function toInput(x) {
    if (convention === 'rgb255') return x;
    // x/127 − 1 written as predict writes it (src/export/input-affine.ts inputPreprocess)
    const tm = { low: -1, high: 255 / 127 - 1 };
    if (convention === 'tm') return x.mul((tm.high - tm.low) / 255).add(tm.low);
    if (pre.kind === 'scale') return x.mul((pre.high - pre.low) / 255).add(pre.low);
    return x.sub(tf.tensor1d(pre.mean.map((m) => m * 255))).div(tf.tensor1d(pre.std.map((s) => s * 255)));
  }

  async function classify(source, w, h) {
    ctx.drawImage(source, 0, 0, w, h, 0, 0, size, size);
    const y = tf.tidy(() => model.predict(toInput(tf.browser.fromPixels(canvas).toFloat().expandDims(0))).reshape([-1]));
    const p = Array.from(await y.data());
    y.dispose();
    return p;
  }

  function bars(p) {
    const top = p
      .map((probability, index) => ({ probability, index }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, Math.min(TOP_K, p.length));
    const box = document.createElement('div');
    box.className = 'bars';
    for (const t of top) {
      const row = document.createElement('div');
      row.className = 'bar';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = meta.labels[t.index];
      const fill = document.createElement('span');
      fill.className = 'fill';
      fill.style.width = `${Math.max(1, Math.round(160 * t.probability))}px`;
      const pct = document.createElement('span');
      pct.className = 'pct';
      pct.textContent = `${(100 * t.probability).toFixed(1)}%`;
      row.append(label, fill, pct);
      box.append(row);
    }
    return box;
  }

  async function classifyFile(file) {
    // no colour-space conversion: the page must see the bytes the decoder in predict sees
    const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const p = await classify(bitmap, bitmap.width, bitmap.height);
    const li = document.createElement('li');
    li.className = 'result';
    li.dataset.file = file.name;
    li.dataset.probs = JSON.stringify(p);
    const img = document.createElement('img');
    img.src = URL.createObjectURL(file);
    img.alt = file.name;
    const right = document.createElement('div');
    right.className = 'bars';
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = file.name;
    right.append(name, bars(p));
    li.append(img, right);
    $('results').append(li);
  }

  async function classifyAll(files) {
    for (const f of files) {
      try {
        await classifyFile(f);
      } catch (e) {
        const li = document.createElement('li');
        li.className = 'result';
        li.textContent = `${f.name}: not an image this browser can decode (${e.message})`;
        $('results').append(li);
      }
    }
    document.body.dataset.classified = String($('results').children.length);
  }

  $('pick').addEventListener('change', (e) => classifyAll([...e.target.files]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    classifyAll([...e.dataTransfer.files].filter((f) => f.type.startsWith('image/')));
  });

  const video = $('video');
  const button = $('webcam');
  button.disabled = false;
  button.addEventListener('click', async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (e) {
      $('webcam-result').textContent = `webcam unavailable: ${e.message}`;
      return;
    }
    video.hidden = false;
    await video.play();
    button.disabled = true;
    let frames = 0;
    const loop = async () => {
      if (video.videoWidth) {
        const p = await classify(video, video.videoWidth, video.videoHeight);
        $('webcam-result').replaceChildren(bars(p));
        $('webcam-result').dataset.frames = String(++frames);
      }
      setTimeout(loop, 200);
    };
    loop();
  });

  status.textContent = `${meta.labels.length} classes, ${size}×${size} input, tfjs ${tf.version.tfjs} on ${backend}. Drop or pick images, or start the webcam.`;
  document.body.dataset.state = 'ready';
  document.body.dataset.backend = backend;
})();
