import * as tf from '@tensorflow/tfjs';
import type { Preprocess, StageDef } from '../types';
import { type ArchOptions, type BuiltArch, finishArch, checkInputSize, GraphBuilder, TORCH_PREPROCESS } from './common';

type Sym = tf.SymbolicTensor;

import type { ResNetDepth } from './names';

export type { ResNetDepth };

/** Blocks per stage and block type, as in torchvision's resnet.py. */
export const RESNET_LAYOUT: Record<ResNetDepth, { blocks: [number, number, number, number]; bottleneck: boolean }> = {
  18: { blocks: [2, 2, 2, 2], bottleneck: false },
  34: { blocks: [3, 4, 6, 3], bottleneck: false },
  50: { blocks: [3, 4, 6, 3], bottleneck: true },
  101: { blocks: [3, 4, 23, 3], bottleneck: true },
  152: { blocks: [3, 8, 36, 3], bottleneck: true },
};

/**
 * keras.applications ResNet50 expects 'caffe' input: BGR, minus the ImageNet channel means, no
 * scaling. The BGR flip is folded into conv1's kernel when its weights load (see keras-h5.ts),
 * so what is left is a per-channel mean subtraction, written as a normalisation with std 1/255.
 */
export const KERAS_CAFFE_PREPROCESS: Preprocess = {
  kind: 'normalize',
  mean: [123.68 / 255, 116.779 / 255, 103.939 / 255],
  std: [1 / 255, 1 / 255, 1 / 255],
};

/**
 * ResNet v1 with Keras layer names (`conv2_block1_1_conv` …). Under the torch convention it is
 * torchvision's v1.5 (stride on the 3×3 of a Bottleneck, conv without bias, BN eps 1e-5); under
 * keras it is keras.applications' v1 (stride on the first 1×1, conv with bias, BN eps 1.001e-5).
 */
export function buildResNet(depth: ResNetDepth, opts: ArchOptions = {}): BuiltArch {
  const arch = `resnet${depth}`;
  const convention = opts.convention ?? 'torch';
  const inputSize = opts.inputSize ?? 224;
  checkInputSize(inputSize, 32, arch);
  const { blocks, bottleneck } = RESNET_LAYOUT[depth];
  const keras = convention === 'keras';
  const b = keras ? new GraphBuilder('keras', 1.001e-5, 0.99) : new GraphBuilder('torch', 1e-5, 0.9);
  const bias = keras;

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  // both frameworks pad the stem symmetrically (3 for the 7×7, 1 for the max pool)
  let x = b.zeroPad(input, 'conv1_pad', 3);
  x = b.conv(x, { name: 'conv1_conv', filters: 64, kernel: 7, stride: 2, bias, torch: 'conv1', padding: 'valid' });
  x = b.bn(x, 'conv1_bn', 'bn1');
  x = b.relu(x, 'conv1_relu');
  // zero padding equals -inf padding here: the input is post-ReLU, so ≥ 0
  x = b.zeroPad(x, 'pool1_pad', 1);
  x = tf.layers.maxPooling2d({ name: 'pool1_pool', poolSize: 3, strides: 2, padding: 'valid' }).apply(x) as Sym;
  const stages: StageDef[] = [{ name: 'stem', endLayer: 'pool1_pool' }];

  let inChannels = 64;
  for (let s = 0; s < 4; s++) {
    const planes = 64 * 2 ** s;
    const out = bottleneck ? planes * 4 : planes;
    for (let i = 0; i < blocks[s]; i++) {
      const stride = s > 0 && i === 0 ? 2 : 1;
      const p = `conv${s + 2}_block${i + 1}_`;
      const t = `layer${s + 1}.${i}.`;
      const shortcut =
        stride !== 1 || inChannels !== out
          ? b.bn(b.conv(x, { name: `${p}0_conv`, filters: out, kernel: 1, stride, bias, torch: `${t}downsample.0` }), `${p}0_bn`, `${t}downsample.1`)
          : x;
      let y: Sym;
      if (bottleneck) {
        y = b.conv(x, { name: `${p}1_conv`, filters: planes, kernel: 1, stride: keras ? stride : 1, bias, torch: `${t}conv1` });
        y = b.relu(b.bn(y, `${p}1_bn`, `${t}bn1`), `${p}1_relu`);
        y = b.conv(y, { name: `${p}2_conv`, filters: planes, kernel: 3, stride: keras ? 1 : stride, bias, torch: `${t}conv2` });
        y = b.relu(b.bn(y, `${p}2_bn`, `${t}bn2`), `${p}2_relu`);
        y = b.conv(y, { name: `${p}3_conv`, filters: out, kernel: 1, bias, torch: `${t}conv3` });
        y = b.bn(y, `${p}3_bn`, `${t}bn3`);
      } else {
        y = b.conv(x, { name: `${p}1_conv`, filters: planes, kernel: 3, stride, bias, torch: `${t}conv1` });
        y = b.relu(b.bn(y, `${p}1_bn`, `${t}bn1`), `${p}1_relu`);
        y = b.conv(y, { name: `${p}2_conv`, filters: planes, kernel: 3, bias, torch: `${t}conv2` });
        y = b.bn(y, `${p}2_bn`, `${t}bn2`);
      }
      x = b.relu(b.add([shortcut, y], `${p}add`), `${p}out`);
      inChannels = out;
    }
    stages.push({ name: `stage${s + 1}`, endLayer: `conv${s + 2}_block${blocks[s]}_out` });
  }

  return finishArch(b, input, x, {
    arch,
    convention,
    stages,
    preprocess: keras ? KERAS_CAFFE_PREPROCESS : TORCH_PREPROCESS,
    inputSize,
    numClasses: opts.numClasses,
    head: { pool: 'avg_pool', dense: 'predictions', torch: 'fc' },
  });
}
