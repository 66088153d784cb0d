import type { Command } from 'commander';
import { selectBackend } from '../../engine/backend';
import { loadClassifier, predictFiles } from '../../predict';
import { num } from '../flags';

export function register(program: Command): void {
  program
    .command('predict')
    .description('classify images with an exported (or any tfjs classifier) model')
    .requiredOption('--model <dir>', 'exported model folder')
    .argument('<images...>')
    .option('--top <k>', 'how many classes to show', num, 3)
    .option('--labels <file>', 'labels file, one per line (for models without metadata.json)')
    .option('--backend <name>', 'backend', 'auto')
    .option('--crop <mode>', 'fill (stretch, as layertune trains) | center (ImageNet protocol); default: fill for exports, center for plain models')
    .option('--json', 'one JSON array on stdout')
    .action(async (images: string[], o) => {
      await selectBackend(o.backend);
      const c = await loadClassifier(o.model, o.labels, o.crop);
      const preds = await predictFiles(c, images, o.top);
      if (o.json) return console.log(JSON.stringify(preds));
      for (const p of preds) {
        console.log(p.file);
        for (const t of p.top) console.log(`  ${(100 * t.probability).toFixed(1).padStart(5)}%  ${t.label}`);
      }
    });
}
