import type { Command } from 'commander';
import { runJob } from '../../job';
import type { JobInput } from '../../config/schema';
import { DEMO_DATA } from '../../package-root';
import * as fs from 'node:fs';
import { UserError } from '../../errors';
import { num } from '../flags';

/**
 * `layertune demo`: fine-tunes the shipped MobileNet on the shipped flower photos, so a fresh install
 * (`npx layertune demo`) shows a whole run without the user finding data first. The photos come from
 * the package folder; the run folder stays relative to the working directory like every --out.
 */
export function register(program: Command): void {
  program
    .command('demo')
    .description('fine-tune the embedded MobileNet on the bundled flower photos and export to ./runs/demo')
    .option('--data <dir>', 'image folder to use instead of the bundled photos')
    .option('--out <dir>', 'run folder', 'runs/demo')
    .option('--epochs <n>', 'epochs', num, 8)
    .action(async (o: { data?: string; out: string; epochs: number }) => {
      const dir = o.data ?? DEMO_DATA;
      // the photos (8.6 MB) are in a clone but not in the npm tarball, which stays under 6 MB
      if (!fs.existsSync(dir)) throw new UserError(`no sample photos at ${dir} (this install has none): give --data <image folder>`);
      const input = { data: { dir }, out: o.out, train: { epochs: o.epochs } } as JobInput;
      await runJob(input, { report: true, handleSignals: true });
    });
}
