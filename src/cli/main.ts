import { Command, InvalidArgumentError } from 'commander';
import { UserError } from '../errors';
import { runJob } from '../job';
import { selectBackend } from '../engine/backend';
import { evaluateFolder, loadClassifier, predictFiles } from '../predict';
import type { JobInput } from '../config/schema';

const num = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`"${v}" is not a number`);
  return n;
};

/** Common job flags: every command that trains takes them. Only flags actually given override the config. */
export function withJobFlags(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'image folder (one sub-folder per class, or train/ val/ [test/])')
    .option('--out <dir>', 'run folder (metrics, checkpoints, export)')
    .option('--model <path>', 'pretrained tfjs LayersModel folder or model.json')
    .option('--epochs <n>', 'epochs', num)
    .option('--batch <n>', 'batch size', num)
    .option('--size <px>', 'square input size', num)
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu')
    .option('--bn <mode>', 'BatchNorm in trainable layers: batch | frozen')
    .option('--lr <rate>', 'reference learning rate of the top group (at lr.baseBatch)', num)
    .option('--seed <n>', 'training seed', num)
    .option('--export <dir>', 'export folder (default <out>/model)')
    .option('--config <file>', 'job file (YAML or JSON); flags override it');
}

export function flagsToJob(o: Record<string, any>): Record<string, unknown> {
  const job: Record<string, any> = {};
  const set = (section: string, key: string, v: unknown) => {
    if (v === undefined) return;
    job[section] = { ...(job[section] ?? {}), [key]: v };
  };
  set('data', 'dir', o.data);
  set('model', 'source', o.model);
  set('model', 'size', o.size);
  set('model', 'batchNorm', o.bn);
  set('train', 'epochs', o.epochs);
  set('train', 'batch', o.batch);
  set('train', 'seed', o.seed);
  // the top group's rate; lr.base follows so plan and plateau floors read on the same scale
  set('groups', 'top', o.lr);
  set('lr', 'base', o.lr);
  if (o.out !== undefined) job.out = o.out;
  if (o.backend !== undefined) job.backend = o.backend;
  if (o.export !== undefined) job.export = o.export;
  return job;
}

export function buildCli(): Command {
  const program = new Command('layertune')
    .description('Fine-tune pretrained CNNs on TensorFlow.js with layer-wise learning rates')
    .showHelpAfterError();

  withJobFlags(program.command('train').description('fine-tune on an image folder and export the model')).action(async (o) => {
    await runJob(flagsToJob(o) as JobInput, { configFile: o.config });
  });

  program
    .command('predict')
    .description('classify images with an exported (or any tfjs classifier) model')
    .requiredOption('--model <dir>', 'exported model folder')
    .argument('<images...>')
    .option('--top <k>', 'how many classes to show', num, 3)
    .option('--labels <file>', 'labels file, one per line (for models without metadata.json)')
    .option('--backend <name>', 'backend', 'auto')
    .option('--json', 'one JSON array on stdout')
    .action(async (images: string[], o) => {
      await selectBackend(o.backend);
      const c = await loadClassifier(o.model, o.labels);
      const preds = await predictFiles(c, images, o.top);
      if (o.json) return console.log(JSON.stringify(preds));
      for (const p of preds) {
        console.log(p.file);
        for (const t of p.top) console.log(`  ${(100 * t.probability).toFixed(1).padStart(5)}%  ${t.label}`);
      }
    });

  program
    .command('evaluate')
    .description('accuracy, per-class precision/recall and confusion matrix on a labelled folder')
    .requiredOption('--model <dir>', 'exported model folder')
    .requiredOption('--data <dir>', 'folder of class sub-folders')
    .option('--backend <name>', 'backend', 'auto')
    .option('--json', 'one JSON object on stdout')
    .action(async (o) => {
      await selectBackend(o.backend);
      const c = await loadClassifier(o.model);
      const e = await evaluateFolder(c, o.data);
      if (o.json) return console.log(JSON.stringify({ accuracy: e.accuracy, n: e.n, perClass: e.perClass, confusion: e.confusion, labels: e.labels }));
      console.log(`accuracy ${e.accuracy.toFixed(4)} on ${e.n} images`);
      console.log('class'.padEnd(16) + 'precision  recall  support');
      for (const p of e.perClass) console.log(`${p.label.padEnd(16)}${p.precision.toFixed(3).padStart(9)}  ${p.recall.toFixed(3).padStart(6)}  ${String(p.support).padStart(7)}`);
      console.log('confusion (rows: true, columns: predicted):');
      for (const [i, row] of e.confusion.entries()) console.log(`${e.labels[i].padEnd(16)}${row.map((v) => String(v).padStart(5)).join('')}`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (require.main === module || process.argv[1]?.endsWith('layertune.js')) {
  main(process.argv).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
