// tsc emits only JavaScript; the committed wasm kernels must sit beside the compiled loaders
// (dist/engine/wasm/*.js resolve them from their own folder), and the classifier page's files
// (src/web/) are written out by `layertune export-web`, so the build copies them into the same place under dist/.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const copy = (rel) => {
  const from = path.join(root, 'src', rel);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const child = path.join(rel, entry.name);
    if (entry.isDirectory()) copy(child);
    else if (entry.name.endsWith('.wasm') || rel.split(path.sep)[0] === 'web') {
      fs.mkdirSync(path.join(root, 'dist', rel), { recursive: true });
      fs.copyFileSync(path.join(from, entry.name), path.join(root, 'dist', child));
    }
  }
};
copy('.');
