import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configReference } from '../../src/config/reference';

describe('config reference', () => {
  it('the README documents exactly the fields the schema validates (regenerate: npx tsx scripts/config-reference.ts --write)', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const a = readme.indexOf('<!-- config-reference:begin -->');
    const b = readme.indexOf('<!-- config-reference:end -->');
    expect(a, 'markers present').to.be.greaterThan(-1);
    expect(readme.slice(a, b).split('\n').slice(1, -1).join('\n')).to.equal(configReference());
  });
  it('lists defaults and ranges from the schema', () => {
    const t = configReference();
    expect(t).to.contain('| `train.batch` | integer | `16` | > 0 |');
    expect(t).to.contain('| `optimizer.algorithm` |');
    expect(t).to.contain('`plateau.stopAtFraction`');
  });
});
