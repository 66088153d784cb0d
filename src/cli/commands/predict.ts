import type { Command } from 'commander';
import { parseViewFlags, withViewFlags } from '../view-flags';
import { selectBackend } from '../../engine/backend';
import { ConfigError } from '../../errors';
import { collectImages, loadClassifier, predictFiles, predictionsCsv } from '../../predict';
import { num } from '../flags';

export function register(program: Command): void {
  withViewFlags(program.command('predict'))
    .description('classify images with an exported (or any tfjs classifier) model')
    .requiredOption('--model <dir>', 'exported model folder')
    .argument('<images...>', 'image files or folders (searched recursively)')
    .option('--top <k>', 'how many classes to show', num, 3)
    .option('--labels <file>', 'labels file, one per line (for models without metadata.json)')
    .option('--backend <name>', 'backend', 'auto')
    .option('--batch <n>', 'images per forward pass', num, 16)
    .option('--json', 'one JSON array on stdout')
    .option('--csv', 'CSV on stdout: file, then label and probability for each of the top k')
    .action(async (inputs: string[], o) => {
      const view = parseViewFlags(o);
      if (o.json && o.csv) throw new ConfigError('--csv', 'choose one of --json and --csv');
      if (!Number.isInteger(o.batch) || o.batch < 1) throw new ConfigError('--batch', `expected a positive integer, got ${o.batch}`);
      if (!Number.isInteger(o.top) || o.top < 1) throw new ConfigError('--top', `expected a positive integer, got ${o.top}`);
      const images = collectImages(inputs, (w) => console.error(`warning: ${w}`));
      await selectBackend(o.backend);
      const c = await loadClassifier(o.model, o.labels, view.crop, view);
      const preds = await predictFiles(c, images, o.top, o.batch);
      if (o.json) return console.log(JSON.stringify(preds));
      if (o.csv) {
        process.stdout.write(predictionsCsv(preds));
        return;
      }
      for (const p of preds) {
        console.log(p.file);
        for (const t of p.top) console.log(`  ${(100 * t.probability).toFixed(1).padStart(5)}%  ${t.label}`);
      }
    });
}
