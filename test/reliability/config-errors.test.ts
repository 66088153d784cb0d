/**
 * Config errors through the real CLI (issue 8, item 4): each mistake gives exactly one line on
 * stderr that names the field, no stack trace, and exit code 2, and nothing is trained or written.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/images';
import { main } from '../../src/cli/main';
import { MAX_JOB_FILE_BYTES } from '../../src/config/load';
import { cli } from './cli';

/** main() in this process, stdout/stderr captured: the same code path as the binary minus the 2 s start. */
async function inProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(['node', 'layertune', ...args]);
    return { code, stdout: out.join('\n'), stderr: `${err.join('\n')}\n` };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Every case runs in-process; `spawn` also runs it through bin/layertune.js as a user would. */
async function expectOneLine(args: string[], pattern: RegExp, spawn = false): Promise<void> {
  const r = spawn ? cli(args) : await inProcess(args);
  const lines = r.stderr.trim().split('\n');
  expect(lines, `stderr of ${args.join(' ')}:\n${r.stderr}`).to.have.length(1);
  expect(lines[0]).to.match(/^error: /);
  expect(lines[0]).to.match(pattern);
  expect(r.stderr).to.not.match(/\n\s+at |Error:|node_modules/); // no stack trace, no error class names
  expect(r.code, r.stderr).to.equal(2);
  expect(r.stdout).to.not.match(/epoch \d/); // refused before any training
}

describe('reliability: config errors on the command line', function () {
  this.timeout(120000);
  const dir = tmpDir('lt-config-');
  const file = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  it('--batch 0: out of range, names train.batch (spawned binary)', () =>
    expectOneLine(['train', '--batch', '0'], /^error: config\.train\.batch: .*(>0|positive|too small)/i, true));

  it('--backend nonsense: names backend and lists the choices (spawned binary)', () =>
    expectOneLine(['train', '--backend', 'nonsense'], /backend: .*"wasm"/, true));

  it('--lr -1: a negative learning rate is refused', () => expectOneLine(['train', '--lr', '-1'], /groups\.top: .*>= 0/));

  it('an unknown key in a YAML job file names the file, the section and the key', () => {
    return expectOneLine(['train', '--config', file('typo.yaml', 'train:\n  batchsize: 8\n')], /typo\.yaml\.train: unknown field\(s\) "batchsize"/);
  });

  it('an unknown top-level key', () => expectOneLine(['train', '--config', file('top.json', '{"epochz": 3}')], /top\.json: unknown field\(s\) "epochz"/));

  it('a wrong type in a JSON job file', () => {
    return expectOneLine(
      ['train', '--config', file('type.json', '{"train": {"epochs": "five"}}')],
      /type\.json\.train\.epochs: .*expected number, received string/,
    );
  });

  it('an out-of-range value nested in a section', () => {
    return expectOneLine(['train', '--config', file('range.yaml', 'data:\n  valFraction: 1.5\n')], /range\.yaml\.data\.valFraction: /);
  });

  it('a job file that is not YAML', () => expectOneLine(['train', '--config', file('bad.yaml', 'train: [1\n')], /bad\.yaml: cannot parse/));

  it('a job file that does not exist', () => expectOneLine(['train', '--config', path.join(dir, 'missing.yaml')], /missing\.yaml: config file not found/));

  it('an output folder that cannot be created (its parent is a file)', () => {
    const blocker = file('blocker', 'x');
    return expectOneLine(['train', '--out', path.join(blocker, 'run')], /blocker\/run: out folder is not writable \(ENOTDIR\)/, true);
  });

  it('an export folder that cannot be created', () => {
    const blocker = file('blocker2', 'x');
    return expectOneLine(
      ['train', '--out', path.join(dir, 'run-ok'), '--export', path.join(blocker, 'sub', 'model')],
      /blocker2\/sub: export folder is not writable/,
    );
  });

  it('a job file over the 1 MiB cap is refused unread (a YAML alias bomb is capped by the parser too)', async () => {
    await expectOneLine(
      ['train', '--config', file('huge.yaml', `# ${'x'.repeat(MAX_JOB_FILE_BYTES)}\n`)],
      /huge\.yaml: config file is \d+ bytes, over the 1048576-byte limit/,
    );
    const laughs = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
            .fill(`*${String.fromCharCode(97 + i)}`)
            .join(', ')}]`,
      ),
    ];
    await expectOneLine(['train', '--config', file('laughs.yaml', `${laughs.join('\n')}\n`)], /laughs\.yaml: cannot parse: .*alias/i);
  });

  it('--epochs 2.5: a fraction where an integer is needed', () => expectOneLine(['train', '--epochs', '2.5'], /train\.epochs: .*int/i));

  it('--size 8: below the smallest input size', () => expectOneLine(['train', '--size', '8'], /model\.size: /));

  // commander's own parse errors get the same one-line treatment as ours
  for (const [args, pattern] of [
    [['train', '--epochs', 'abc'], /^error: option '--epochs <n>' argument 'abc' is invalid\. "abc" is not a number \(see --help\)$/],
    [['train', '--bogus', '1'], /^error: unknown option '--bogus' \(see --help\)$/],
  ] as const) {
    it(`${args.join(' ')}: commander's own error, one line, exit 2`, () => expectOneLine([...args], pattern));
  }

  it('--bn sometimes: not one of the modes', () => expectOneLine(['train', '--bn', 'sometimes'], /model\.batchNorm: .*"frozen"/));
});
