import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DEMO_DATA, DEMO_SAMPLE, demoPhotos } from '../../src/package-root';

const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];

describe('the demo photos', () => {
  it('uses the full set where it exists, else the shipped subset, else none', () => {
    expect(demoPhotos(() => true)).to.deep.equal({ dir: DEMO_DATA, which: 'full' });
    expect(demoPhotos((p) => p === DEMO_SAMPLE)).to.deep.equal({ dir: DEMO_SAMPLE, which: 'sample' });
    expect(demoPhotos(() => false)).to.equal(undefined);
  });

  it('the shipped subset: 24 photos per class, each from data/flowers, short side at most 256 px', async function () {
    this.timeout(20000);
    expect(fs.readdirSync(DEMO_SAMPLE).filter((d) => fs.statSync(path.join(DEMO_SAMPLE, d)).isDirectory())).to.deep.equal(CLASSES);
    for (const cls of CLASSES) {
      const files = fs.readdirSync(path.join(DEMO_SAMPLE, cls));
      expect(files, cls).to.have.length(24);
      for (const f of files) {
        // the same photo, so its credit in data/NOTICE.md and the Flickr id in its name still apply
        expect(fs.existsSync(path.join(DEMO_DATA, cls, f)), `${cls}/${f} in data/flowers`).to.equal(true);
        const m = await sharp(path.join(DEMO_SAMPLE, cls, f)).metadata();
        expect(Math.min(m.width ?? 0, m.height ?? 0), f).to.be.within(100, 256);
        expect(m.format).to.equal('jpeg');
      }
    }
  });

  it('its NOTICE credits every photo under CC-BY 2.0', () => {
    const notice = fs.readFileSync(path.join(DEMO_SAMPLE, 'NOTICE.md'), 'utf8');
    expect(notice).to.include('CC-BY 2.0').and.include('https://creativecommons.org/licenses/by/2.0/');
    for (const cls of CLASSES) {
      for (const f of fs.readdirSync(path.join(DEMO_SAMPLE, cls)))
        expect(notice, f).to.include(`| ${cls} | ${f} | https://www.flickr.com/photo.gne?id=${f.split('_')[0]} |`);
    }
  });

  it('is inside the package.json files whitelist, and the full set is not', () => {
    const files: string[] = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).files;
    expect(files).to.include('data/flowers-sample');
    expect(files.some((f) => f === 'data' || f === 'data/flowers' || f.startsWith('data/flowers/'))).to.equal(false);
  });
});
