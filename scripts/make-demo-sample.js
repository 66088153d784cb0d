// Builds data/flowers-sample/, the small photo set the npm tarball ships so `layertune demo` works
// outside a clone. The full data/flowers (8.6 MB) would push the tarball past its 6 MB cap, so this
// takes the first PER_CLASS files of each class (sorted by name, so reruns pick the same photos),
// applies EXIF orientation, shrinks the short side to at most SHORT_SIDE px (the model trains at
// 224) and re-encodes them as JPEG. Run it again only when the selection should change; its output
// is committed so the tarball does not depend on sharp's encoder version.
const fs = require('node:fs');
const path = require('node:path');
const sharp = require('sharp');

const PER_CLASS = 24;
const SHORT_SIDE = 256;
const QUALITY = 82;
const root = path.join(__dirname, '..');
const from = path.join(root, 'data', 'flowers');
const to = path.join(root, 'data', 'flowers-sample');

async function main() {
  fs.rmSync(to, { recursive: true, force: true });
  const rows = [];
  for (const cls of fs.readdirSync(from).sort()) {
    if (!fs.statSync(path.join(from, cls)).isDirectory()) continue;
    fs.mkdirSync(path.join(to, cls), { recursive: true });
    for (const file of fs.readdirSync(path.join(from, cls)).sort().slice(0, PER_CLASS)) {
      const img = sharp(path.join(from, cls, file)).rotate();
      const { width, height } = await img.metadata();
      const short = Math.min(width, height);
      const resized = short > SHORT_SIDE ? img.resize(width < height ? { width: SHORT_SIDE } : { height: SHORT_SIDE }) : img;
      await resized.jpeg({ quality: QUALITY, mozjpeg: true }).toFile(path.join(to, cls, file));
      rows.push(`| ${cls} | ${file} | https://www.flickr.com/photo.gne?id=${file.split('_')[0]} |`);
    }
  }
  const notice = [
    '# Sample photos shipped in the npm package: data/flowers-sample',
    '',
    `\`data/flowers-sample/\` holds ${rows.length} photos (${PER_CLASS} per class: daisy, dandelion, rose, sunflower, tulip),`,
    `the first ${PER_CLASS} files by name of each class in \`data/flowers\`, which come from TensorFlow's \`flower_photos\``,
    'data set (via the Kaggle "Flowers Recognition" set). The photos were taken from Flickr and are licensed under the',
    'Creative Commons Attribution 2.0 licence (CC-BY 2.0, https://creativecommons.org/licenses/by/2.0/). Credit belongs',
    'to the individual Flickr photographers; the Flickr photo id is the first part of each file name.',
    '',
    `Changes made: EXIF orientation applied, downscaled so the short side is at most ${SHORT_SIDE} px, re-encoded as`,
    `JPEG (quality ${QUALITY}) without metadata, by \`scripts/make-demo-sample.js\`.`,
    '',
    '| class | file | original on Flickr |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(to, 'NOTICE.md'), notice);
  console.log(`${rows.length} photos written to ${path.relative(root, to)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
