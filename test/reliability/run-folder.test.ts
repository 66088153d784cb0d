import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkOwnFolder, markFolder } from '../../src/io/run-folder';
import { acquireLock, LOCK_FILE } from '../../src/io/lock';

describe('reliability: run and export folders', () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-runfolder-'))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('refuses --export onto a folder of user files, and leaves them', () => {
    const photos = path.join(root, 'photos');
    fs.mkdirSync(photos);
    fs.writeFileSync(path.join(photos, 'a.jpg'), 'x');
    expect(() => checkOwnFolder(photos, 'export')).to.throw(/--export folder exists and was not written by layertune/);
    expect(() => checkOwnFolder(photos, 'out')).to.throw(/--out folder exists and was not written by layertune/);
    expect(fs.readdirSync(photos)).to.deep.equal(['a.jpg']);
    expect(() => checkOwnFolder(photos, 'export', { force: true })).not.to.throw();
  });

  it('refuses an export inside the data folder', () => {
    expect(() => checkOwnFolder(path.join(root, 'data', 'model'), 'export', { dataDir: path.join(root, 'data') })).to.throw(/inside the data folder/);
  });

  it('accepts missing, empty and marked folders', () => {
    expect(() => checkOwnFolder(path.join(root, 'new'), 'out')).not.to.throw();
    fs.mkdirSync(path.join(root, 'run'));
    expect(() => checkOwnFolder(path.join(root, 'run'), 'out')).not.to.throw();
    fs.writeFileSync(path.join(root, 'run', 'x'), '');
    markFolder(path.join(root, 'run'));
    expect(() => checkOwnFolder(path.join(root, 'run'), 'out')).not.to.throw();
  });

  it('accepts a previous export (metadata.json naming a layertune version) and refuses a foreign metadata.json', () => {
    const dir = path.join(root, 'model');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'metadata.json'), JSON.stringify({ other: 1 }));
    expect(() => checkOwnFolder(dir, 'export')).to.throw(/not written by layertune/);
    fs.writeFileSync(path.join(dir, 'metadata.json'), JSON.stringify({ layertuneVersion: '0.1.0' }));
    expect(() => checkOwnFolder(dir, 'export')).not.to.throw();
  });

  it('refuses a file where a folder is expected', () => {
    fs.writeFileSync(path.join(root, 'f'), '');
    expect(() => checkOwnFolder(path.join(root, 'f'), 'out')).to.throw(/--out is a file, not a folder/);
  });

  it('refuses a second holder of the lock, naming its PID, and releases it', () => {
    const release = acquireLock(root, () => {});
    const holder = JSON.parse(fs.readFileSync(path.join(root, LOCK_FILE), 'utf8'));
    expect(holder.pid).to.equal(process.pid);
    expect(() => acquireLock(root, () => {})).to.throw(new RegExp(`in use by PID ${process.pid}`));
    release();
    expect(fs.existsSync(path.join(root, LOCK_FILE))).to.equal(false);
  });

  it('takes over a stale lock of a dead PID with a warning', () => {
    fs.writeFileSync(path.join(root, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 7, hostname: os.hostname(), startedAt: 'then' }));
    const warnings: string[] = [];
    const release = acquireLock(root, (w) => warnings.push(w));
    expect(warnings.join()).to.match(/taking over a stale lock of PID/);
    release();
  });
});
