import type { Command } from 'commander';
import { parseViewFlags, withViewFlags } from '../view-flags';
import { selectBackend } from '../../engine/backend';
import { ConfigError } from '../../errors';
import { classifyFiles, collectImages, loadClassifier, predictionsCsv, type InferenceSummary } from '../../predict';
import { inferenceThreadsFlag, num } from '../flags';

export function register(program: Command): void {
  withViewFlags(program.command('predict'))
    .description('classify images with an exported (or any tfjs classifier) model')
    .requiredOption('--model <dir>', 'exported model folder')
    .argument('<images...>', 'image files or folders (searched recursively)')
    .option('--top <k>', 'how many classes to show', num, 3)
    .option('--labels <file>', 'labels file, one per line (for models without metadata.json)')
    .option('--backend <name>', 'backend', 'auto')
    .option('--batch <n>', 'images per forward pass', num, 16)
    .option('--threads <n>', 'worker threads for the forward passes: auto (wasm: 2 when there are enough batches, else 1) or a number', 'auto')
    .option('--json', 'one JSON array on stdout; the run summary (images/s) as one JSON line on stderr')
    .option('--csv', 'CSV on stdout: file, then label and probability for each of the top k')
    .action(async (inputs: string[], o) => {
      const view = parseViewFlags(o);
      if (o.json && o.csv) throw new ConfigError('--csv', 'choose one of --json and --csv');
      if (!Number.isInteger(o.batch) || o.batch < 1) throw new ConfigError('--batch', `expected a positive integer, got ${o.batch}`);
      if (!Number.isInteger(o.top) || o.top < 1) throw new ConfigError('--top', `expected a positive integer, got ${o.top}`);
      const threads = inferenceThreadsFlag(String(o.threads));
      const images = collectImages(inputs, (w) => console.error(`warning: ${w}`));
      await selectBackend(o.backend);
      const c = await loadClassifier(o.model, o.labels, view.crop, view);
      const { predictions: preds, summary } = await classifyFiles(c, images, { topK: o.top, batch: o.batch, threads });
      // stdout stays the bare array (or CSV) that scripts already parse; the summary goes beside it on stderr
      console.error(o.json ? JSON.stringify({ summary: summaryJson(summary) }) : summaryLine(summary));
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

/** The run summary as JSON fields; images/s counts the whole run, decode and worker start-up included. */
export function summaryJson(s: InferenceSummary): Record<string, number | string> {
  return {
    images: s.images,
    batch: s.batch,
    threads: s.threads,
    threadsReason: s.threadsReason,
    seconds: +s.seconds.toFixed(3),
    imagesPerSecond: +s.imagesPerSecond.toFixed(2),
  };
}

export function summaryLine(s: InferenceSummary): string {
  return `${s.images} image(s) in ${s.seconds.toFixed(2)} s: ${s.imagesPerSecond.toFixed(1)} images/s (batch ${s.batch}, threads ${s.threadsReason}; decode included)`;
}
