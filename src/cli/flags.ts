import { type Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../errors';

/** `--threads` of predict/evaluate: `auto` or a whole number of worker threads, 1 to 16. */
export function inferenceThreadsFlag(v: string): 'auto' | number {
  if (v === 'auto') return 'auto';
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 1 || n > 16) throw new ConfigError('--threads', `expected auto or an integer from 1 to 16, got ${v}`);
  return n;
}

export const num = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`"${v}" is not a number`);
  return n;
};

/** Common job flags: every command that trains takes them. Only flags actually given override the config. */
export function withJobFlags(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'image folder (one sub-folder per class, or train/ val/ [test/])')
    .option('--out <dir>', 'run folder (metrics, checkpoints, export)')
    .option('--model <uri>', 'pretrained backbone: tfjs LayersModel folder, model.json or http(s) URL, .safetensors, .h5, a TF-Hub GraphModel, or arch:NAME')
    .option('--epochs <n>', 'epochs', num)
    .option('--batch <n>', 'images per forward pass', num)
    .option('--accumulate <n>', 'batches averaged into one optimizer step (effective batch = batch × accumulate)', num)
    .option('--threads <n>', 'threads computing gradients on the wasm backend: auto (one per core, >= 8 images each) or a number', (v: string) =>
      v === 'auto' ? 'auto' : num(v),
    )
    .option('--size <px>', 'square input size', num)
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu')
    .option('--bn <mode>', 'BatchNorm in trainable layers: batch | frozen')
    .option('--lr <rate>', 'reference learning rate of the top group (at lr.baseBatch)', num)
    .option('--seed <n>', 'training seed', num)
    .option('--export <dir>', 'export folder (default <out>/model)')
    .option('--format <layout>', "tfjs (default) | tm: the graph takes Teachable Machine's input (x/127 - 1) for @teachablemachine/image apps")
    .option('--bake-preprocessing', 'the exported graph takes 0-255 RGB, its normalisation built in')
    .option('--quantize <mode>', 'export weights as none | float16 | uint16 | uint8 (checked on the validation set after writing)')
    .option('--recipe <name>', 'named set of config values under the job: classic | fastai | timm (job fields override it)')
    .option('--label-smoothing <eps>', 'label smoothing of the training loss, in [0, 1)', num)
    .option('--strict', 'a grouping rule that matches no layer is an error, not a warning')
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
  set('train', 'accumulate', o.accumulate);
  set('train', 'seed', o.seed);
  set('train', 'threads', o.threads);
  // the top group's rate; lr.base follows so plan and plateau floors read on the same scale
  set('groups', 'top', o.lr);
  set('lr', 'base', o.lr);
  set('groups', 'strict', o.strict);
  set('loss', 'labelSmoothing', o.labelSmoothing);
  if (o.recipe !== undefined) job.recipe = o.recipe;
  if (o.out !== undefined) job.out = o.out;
  if (o.backend !== undefined) job.backend = o.backend;
  set('export', 'dir', o.export);
  set('export', 'quantize', o.quantize);
  set('export', 'format', o.format);
  set('export', 'bakePreprocessing', o.bakePreprocessing);
  return job;
}
