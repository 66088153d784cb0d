/**
 * Prints the job config reference (generated from the zod schema) or, with --write, replaces the
 * table between the markers in README.md.  npx tsx scripts/config-reference.ts [--write]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configReference } from '../src/config/reference';

export const BEGIN = '<!-- config-reference:begin -->';
export const END = '<!-- config-reference:end -->';
const table = configReference();
if (process.argv.includes('--write')) {
  const readme = path.join(__dirname, '..', 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md lacks the ${BEGIN} ... ${END} markers`);
  fs.writeFileSync(readme, `${text.slice(0, a + BEGIN.length)}\n${table}\n${text.slice(b)}`);
} else {
  console.log(table);
}
