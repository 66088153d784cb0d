import type { Command } from 'commander';
import { selectBackend } from '../../engine/backend';
import { loadBackbone } from '../../models/registry';
import { formatInspection, inspectBackbone } from '../../models/inspect';
import { num } from '../flags';

/** `layertune inspect MODEL`: what a job would train, before any data is involved. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('layers, output shapes, parameter counts, stages and the default groups of a pretrained model')
    .argument('<model>', 'tfjs model folder / model.json (local, file:// or http(s)://), .safetensors, .h5 or arch:NAME')
    .option('--size <px>', "square input size (default: the model's own)", num)
    .option('--classes <n>', 'classes of the illustrative head', num, 2)
    .option('--no-layers', 'stages and groups only')
    .option('--backend <name>', 'backend', 'cpu')
    .option('--json', 'one JSON object on stdout')
    .action(async (model: string, o) => {
      await selectBackend(o.backend);
      const backbone = await loadBackbone(model, { inputSize: o.size });
      const report = inspectBackbone(backbone, { classes: o.classes });
      if (o.json) return console.log(JSON.stringify(report));
      console.log(formatInspection(report, { layers: o.layers }));
    });
}
