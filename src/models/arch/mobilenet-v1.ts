import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../errors';
import type { StageDef } from '../types';
import {
  type ArchOptions,
  type BuiltArch,
  finishArch,
  checkInputSize,
  formatAlpha,
  GraphBuilder,
  KERAS_MOBILENET_PREPROCESS,
  TORCH_PREPROCESS,
} from './common';

type Sym = tf.SymbolicTensor;

import { MOBILENET_V1_ALPHAS } from './names';

export { MOBILENET_V1_ALPHAS };

/** (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks. */
const BLOCKS: Array<[number, number]> = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

/** Stage ends by output resolution (112², 56², 28², 14², 7²), as block numbers. */
const STAGE_END_BLOCKS = [1, 3, 5, 11, 13];

/**
 * MobileNet v1 with the layer names of keras.applications and of Google's tfjs release
 * (`conv1`, `conv_dw_1`, `conv_pw_1_bn`, … `conv_pw_13_relu`). Keras convention by default:
 * 'same' stride-2 padding, BN eps 1e-3, ReLU6 as an Activation layer as in the tfjs models.
 */
export function buildMobileNetV1(alpha: number, opts: ArchOptions = {}): BuiltArch {
  if (!(MOBILENET_V1_ALPHAS as readonly number[]).includes(alpha)) {
    throw new ConfigError('model.alpha', `MobileNet v1 width multiplier must be one of ${MOBILENET_V1_ALPHAS.join(', ')}, got ${alpha}`);
  }
  const arch = `mobilenet_v1_${formatAlpha(alpha)}`;
  const convention = opts.convention ?? 'keras';
  const inputSize = opts.inputSize ?? 224;
  checkInputSize(inputSize, 32, arch);
  const b = convention === 'keras' ? new GraphBuilder('keras', 1e-3, 0.99) : new GraphBuilder('torch', 1e-5, 0.9);
  const relu6 = (x: Sym, name: string): Sym => tf.layers.activation({ name, activation: 'relu6' }).apply(x) as Sym;

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = b.conv(input, { name: 'conv1', filters: Math.trunc(32 * alpha), kernel: 3, stride: 2, padName: 'conv1_pad' });
  x = relu6(b.bn(x, 'conv1_bn'), 'conv1_relu');
  const stages: StageDef[] = [{ name: 'stem', endLayer: 'conv1_relu' }];
  BLOCKS.forEach(([filters, stride], i) => {
    const id = i + 1;
    x = b.depthwise(x, { name: `conv_dw_${id}`, kernel: 3, stride, padName: `conv_pad_${id}` });
    x = relu6(b.bn(x, `conv_dw_${id}_bn`), `conv_dw_${id}_relu`);
    x = b.conv(x, { name: `conv_pw_${id}`, filters: Math.trunc(filters * alpha), kernel: 1 });
    x = relu6(b.bn(x, `conv_pw_${id}_bn`), `conv_pw_${id}_relu`);
    if (STAGE_END_BLOCKS.includes(id)) stages.push({ name: `stage${stages.length}`, endLayer: `conv_pw_${id}_relu` });
  });

  // Keras's head is a 1×1 conv `conv_preds` on the pooled vector; as a Dense it has the same maths
  return finishArch(b, input, x, {
    arch,
    convention,
    stages,
    preprocess: convention === 'keras' ? KERAS_MOBILENET_PREPROCESS : TORCH_PREPROCESS,
    inputSize,
    numClasses: opts.numClasses,
    head: { pool: 'global_average_pooling2d_1', dense: 'conv_preds', torch: 'classifier' },
  });
}
