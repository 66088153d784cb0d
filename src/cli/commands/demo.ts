import type { Command } from 'commander';
import { runJob } from '../../job';
import type { JobInput } from '../../config/schema';
import { demoPhotos } from '../../package-root';
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
      let dir = o.data;
      if (dir === undefined) {
        const found = demoPhotos();
        if (!found) throw new UserError('no sample photos in this install: give --data <image folder>');
        dir = found.dir;
        const what = found.which === 'full' ? 'the full sample photos (150)' : 'the 120-photo subset shipped in the package';
        console.log(`demo: using ${what} at ${dir}`);
      }
      const input = { data: { dir }, out: o.out, train: { epochs: o.epochs } } as JobInput;
      await runJob(input, { report: true, handleSignals: true });
    });
}
