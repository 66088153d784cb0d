/**
 * The flags that say how `predict` and `evaluate` turn a photo into the model's input: the evaluation crop
 * (default: what the export's metadata.json records) and test-time augmentation.
 */
import type { Command } from 'commander';
import type { Crop } from '../data/decode';
import { TTA_MODES, type Tta } from '../data/tta';
import { ConfigError } from '../errors';
import { num } from './flags';

export function withViewFlags(cmd: Command): Command {
  return cmd
    .option('--crop <mode>', 'fill (whole photo squashed) | center (timm crop_pct); default: what the export records, center for plain models')
    .option('--crop-pct <f>', "center: share of the short side kept, in (0, 1] (timm 0.875); default: the export's, else 1", num)
    .option('--tta <mode>', 'test-time augmentation, softmax averaged over the views: none | flip (image + mirror) | crops (five crops)', 'none');
}

/** The checked view options, or a one-line ConfigError naming the flag. */
export function parseViewFlags(o: { crop?: string; cropPct?: number; tta?: string }): { crop?: Crop; cropPct?: number; tta: Tta } {
  if (o.crop !== undefined && o.crop !== 'fill' && o.crop !== 'center') throw new ConfigError('--crop', `expected fill or center, got "${o.crop}"`);
  if (o.cropPct !== undefined && !(o.cropPct > 0 && o.cropPct <= 1)) throw new ConfigError('--crop-pct', `expected a number in (0, 1], got ${o.cropPct}`);
  const tta = o.tta ?? 'none';
  if (!(TTA_MODES as readonly string[]).includes(tta)) throw new ConfigError('--tta', `expected one of ${TTA_MODES.join(', ')}, got "${tta}"`);
  return { crop: o.crop as Crop | undefined, cropPct: o.cropPct, tta: tta as Tta };
}
