import type { Command } from 'commander';
import { parseViewFlags, withViewFlags } from '../view-flags';
import { selectBackend } from '../../engine/backend';
import { evaluateFolder, loadClassifier } from '../../predict';
import { inferenceThreadsFlag, num } from '../flags';
import { ConfigError } from '../../errors';
import { summaryJson, summaryLine } from './predict';

export function register(program: Command): void {
  withViewFlags(program.command('evaluate'))
    .description('accuracy, per-class precision/recall and confusion matrix on a labelled folder')
    .requiredOption('--model <dir>', 'exported model folder')
    .requiredOption('--data <dir>', 'folder of class sub-folders')
    .option('--backend <name>', 'backend', 'auto')
    .option('--batch <n>', 'images per forward pass', num, 16)
    .option('--threads <n>', 'worker threads for the forward passes: auto (wasm: 2 when there are enough batches, else 1) or a number', 'auto')
    .option('--json', 'one JSON object on stdout')
    .action(async (o) => {
      const view = parseViewFlags(o);
      const threads = inferenceThreadsFlag(String(o.threads));
      if (!Number.isInteger(o.batch) || o.batch < 1) throw new ConfigError('--batch', `expected a positive integer, got ${o.batch}`);
      await selectBackend(o.backend);
      const c = await loadClassifier(o.model, undefined, view.crop, view);
      const e = await evaluateFolder(c, o.data, { batch: o.batch, threads });
      for (const w of e.warnings) console.error(`warning: ${w}`);
      if (o.json) {
        const { accuracy, n, perClass, confusion, labels } = e;
        return console.log(JSON.stringify({ accuracy, n, perClass, confusion, labels, summary: summaryJson(e.summary) }));
      }
      console.error(summaryLine(e.summary));
      console.log(`accuracy ${e.accuracy.toFixed(4)} on ${e.n} images`);
      console.log(`${'class'.padEnd(16)}precision  recall  support`);
      for (const p of e.perClass)
        console.log(`${p.label.padEnd(16)}${p.precision.toFixed(3).padStart(9)}  ${p.recall.toFixed(3).padStart(6)}  ${String(p.support).padStart(7)}`);
      console.log('confusion (rows: true, columns: predicted):');
      for (const [i, row] of e.confusion.entries()) console.log(`${e.labels[i].padEnd(16)}${row.map((v) => String(v).padStart(5)).join('')}`);
    });
}
