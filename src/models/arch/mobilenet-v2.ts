import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../errors';
import type { StageDef } from '../types';
import {
  type ArchOptions,
  finishArch,
  type BuiltArch,
  checkInputSize,
  formatAlpha,
  GraphBuilder,
  KERAS_MOBILENET_PREPROCESS,
  makeDivisible,
  TORCH_PREPROCESS,
} from './common';

import { MOBILENET_V2_ALPHAS } from './names';

export { MOBILENET_V2_ALPHAS };

/** (expansion t, channels c, repeats n, first stride s), as in the paper and both implementations. */
const SETTING: Array<[number, number, number, number]> = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** Stage ends (block ids) by output resolution: 112², 56², 28², 14², 7². The last stage ends at `out_relu`. */
const STAGE_END_BLOCKS = [0, 2, 5, 12];

export interface MobileNetV2Channels {
  stem: number;
  /** Output channels of each of the 17 inverted-residual blocks. */
  blocks: number[];
  head: number;
}

/**
 * Channel widths for width multiplier α. Keras truncates c·α to an integer before rounding to a
 * multiple of 8, torchvision does not; they differ for some α, so the convention matters here too.
 */
export function mobileNetV2Channels(alpha: number, convention: 'torch' | 'keras'): MobileNetV2Channels {
  const blocks: number[] = [];
  for (const [, c, n] of SETTING) {
    const out = makeDivisible(convention === 'keras' ? Math.trunc(c * alpha) : c * alpha);
    for (let i = 0; i < n; i++) blocks.push(out);
  }
  return { stem: makeDivisible(32 * alpha), blocks, head: alpha > 1 ? makeDivisible(1280 * alpha) : 1280 };
}

/**
 * MobileNetV2 with keras.applications layer names (`block_3_expand`, `block_3_depthwise_BN`, …).
 * Torch convention: symmetric padding on stride-2 convs, BN eps 1e-5; keras: 'same', eps 1e-3.
 */
export function buildMobileNetV2(alpha: number, opts: ArchOptions = {}): BuiltArch {
  if (!(MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha)) {
    throw new ConfigError('model.alpha', `MobileNetV2 width multiplier must be one of ${MOBILENET_V2_ALPHAS.join(', ')}, got ${alpha}`);
  }
  const arch = `mobilenet_v2_${formatAlpha(alpha)}`;
  const convention = opts.convention ?? 'torch';
  const inputSize = opts.inputSize ?? 224;
  checkInputSize(inputSize, 32, arch);
  const b = convention === 'keras' ? new GraphBuilder('keras', 1e-3, 0.999) : new GraphBuilder('torch', 1e-5, 0.9);
  const ch = mobileNetV2Channels(alpha, convention);

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = b.conv(input, { name: 'Conv1', filters: ch.stem, kernel: 3, stride: 2, torch: 'features.0.0', timm: 'conv_stem', padName: 'Conv1_pad' });
  x = b.relu6(b.bn(x, 'bn_Conv1', 'features.0.1', 'bn1'), 'Conv1_relu');
  const stages: StageDef[] = [{ name: 'stem', endLayer: 'Conv1_relu' }];

  let inCh = ch.stem;
  let id = 0;
  for (let g = 0; g < SETTING.length; g++) {
    const [t, , n, s] = SETTING[g];
    for (let i = 0; i < n; i++, id++) {
      const out = ch.blocks[id];
      const stride = i === 0 ? s : 1;
      const p = id === 0 ? 'expanded_conv_' : `block_${id}_`;
      const tv = `features.${id + 1}.conv.`;
      const tm = `blocks.${g}.${i}.`;
      let y = x;
      let k = 0; // torchvision's index inside `.conv`
      if (t !== 1) {
        y = b.conv(y, { name: `${p}expand`, filters: inCh * t, kernel: 1, torch: `${tv}0.0`, timm: `${tm}conv_pw` });
        y = b.relu6(b.bn(y, `${p}expand_BN`, `${tv}0.1`, `${tm}bn1`), `${p}expand_relu`);
        k = 1;
      }
      const dwBn = t !== 1 ? 'bn2' : 'bn1';
      y = b.depthwise(y, { name: `${p}depthwise`, kernel: 3, stride, torch: `${tv}${k}.0`, timm: `${tm}conv_dw`, padName: `${p}pad` });
      y = b.relu6(b.bn(y, `${p}depthwise_BN`, `${tv}${k}.1`, `${tm}${dwBn}`), `${p}depthwise_relu`);
      y = b.conv(y, { name: `${p}project`, filters: out, kernel: 1, torch: `${tv}${k + 1}`, timm: t !== 1 ? `${tm}conv_pwl` : `${tm}conv_pw` });
      y = b.bn(y, `${p}project_BN`, `${tv}${k + 2}`, t !== 1 ? `${tm}bn3` : `${tm}bn2`);
      x = stride === 1 && inCh === out ? b.add([x, y], `${p}add`) : y;
      inCh = out;
      if (STAGE_END_BLOCKS.includes(id)) stages.push({ name: `stage${stages.length}`, endLayer: x.sourceLayer.name });
    }
  }
  const last = id + 1;
  x = b.conv(x, { name: 'Conv_1', filters: ch.head, kernel: 1, torch: `features.${last}.0`, timm: 'conv_head' });
  x = b.relu6(b.bn(x, 'Conv_1_bn', `features.${last}.1`, 'bn2'), 'out_relu');
  stages.push({ name: `stage${stages.length}`, endLayer: 'out_relu' });

  return finishArch(b, input, x, {
    arch,
    convention,
    stages,
    preprocess: convention === 'keras' ? KERAS_MOBILENET_PREPROCESS : TORCH_PREPROCESS,
    inputSize,
    numClasses: opts.numClasses,
    head: { pool: 'global_average_pooling2d', dense: 'predictions', torch: 'classifier.1', timm: 'classifier' },
  });
}
