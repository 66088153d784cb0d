import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** The models `npm run bench` compares with the PyTorch peer (same names as torch_bench.py). */
export const BENCH_MODELS = ['mobilenet_v1_0.25', 'mobilenet_v2_1.0', 'resnet18'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

const ROOT = path.join(__dirname, '..', '..');

/**
 * input [size,size,3] → logits [classes]. MobileNet v1 0.25 is the shipped pretrained model with a fresh
 * GAP+Dense head; the others are built in code by src/models/arch (random weights: speed does not care).
 */
export async function buildBenchModel(name: BenchModel, size: number, classes: number): Promise<tf.LayersModel> {
  if (name === 'mobilenet_v1_0.25') {
    const { loadLayersFolder } = await import('../../src/models/tfjs-layers');
    const bb = await loadLayersFolder(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'), { inputSize: size });
    const pooled = tf.layers.globalAveragePooling2d({}).apply(bb.model.outputs[0]) as tf.SymbolicTensor;
    const logits = tf.layers.dense({ units: classes }).apply(pooled) as tf.SymbolicTensor;
    return tf.model({ inputs: bb.model.inputs, outputs: logits });
  }
  if (name === 'mobilenet_v2_1.0') {
    const { buildMobileNetV2 } = await import('../../src/models/arch/mobilenet-v2');
    const built = buildMobileNetV2(1.0, { inputSize: size, numClasses: classes });
    if (!built.classifier) throw new Error('buildMobileNetV2 returned no classifier');
    return built.classifier;
  }
  const { buildResNet } = await import('../../src/models/arch/resnet');
  const built = buildResNet(18, { inputSize: size, numClasses: classes });
  if (!built.classifier) throw new Error('buildResNet returned no classifier');
  return built.classifier;
}
