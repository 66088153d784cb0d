import type { Command } from 'commander';
import * as path from 'node:path';
import { writeWebPage } from '../../export/web';

export function register(program: Command): void {
  program
    .command('export-web')
    .description('write a static page (tfjs WebGL, WASM fallback, no CDN) that classifies dropped or picked images and a webcam with the export')
    .requiredOption('--model <dir>', 'exported model folder')
    .option('--out <dir>', 'folder for the page (default: <model>-web beside the export)')
    .action(async (o) => {
      const out = o.out ?? `${path.resolve(o.model)}-web`;
      const files = await writeWebPage(o.model, out);
      console.log(`wrote ${files.length} files to ${out}; serve that folder over http (a file:// page cannot fetch the model) and open index.html`);
    });
}
