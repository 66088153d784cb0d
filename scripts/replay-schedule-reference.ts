/**
 * Replay a schedules reference file (the format of ../shared/reference/schedules.json) through the public API.
 * Usage: npx tsx scripts/replay-schedule-reference.ts FIXTURE.json
 * Prints one JSON line per case {"name","maxRelErr","stopAfterEpoch","ok"} and exits 1 if any case fails.
 */
import { readFileSync } from 'node:fs';
import { evaluateReferenceCase, type ReferenceFile } from '../src/schedules';

function main(argv: string[]): number {
  const file = argv[0];
  if (!file) {
    process.stderr.write('usage: replay-schedule-reference FIXTURE.json\n');
    return 2;
  }
  let data: ReferenceFile;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as ReferenceFile;
  } catch (e) {
    process.stderr.write(`${file}: ${(e as Error).message}\n`);
    return 2;
  }
  if (!Array.isArray(data?.cases) || data.cases.length === 0) {
    process.stderr.write(`${file}: no "cases" array\n`);
    return 2;
  }
  let failed = 0;
  for (const c of data.cases) {
    const r = evaluateReferenceCase(c);
    if (!r.ok) failed++;
    const line: Record<string, unknown> = {
      name: r.name,
      // JSON has no Infinity; a case that could not be evaluated reports null.
      maxRelErr: Number.isFinite(r.maxRelErr) ? r.maxRelErr : null,
      stopAfterEpoch: r.stopAfterEpoch,
      ok: r.ok,
    };
    if (r.error) line.error = r.error;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
