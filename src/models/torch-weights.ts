import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';
import type { BuiltArch, ParamLayer } from './arch';
import { MOBILENET_V2_ALPHAS, mobileNetV2Channels } from './arch/mobilenet-v2';
import { formatAlpha } from './arch/common';
import { RESNET_LAYOUT, type ResNetDepth } from './arch/resnet';
import { type SafetensorsFile, tensorAsFloat32 } from './safetensors';

/** Which module names a PyTorch checkpoint uses. timm's ResNets use torchvision's names. */
export type TorchNaming = 'torchvision' | 'timm';

export interface TorchArchInfo {
  arch: string;
  naming: TorchNaming;
  /** Rows of the classifier's Linear; 0 when the file holds no classifier. */
  numClasses: number;
}

function dim0(st: SafetensorsFile, name: string): number | undefined {
  return st.tensors.get(name)?.shape[0];
}

/** Naming and class count when the architecture is given rather than inferred. */
export function torchHeadInfo(st: SafetensorsFile, arch: string): TorchArchInfo {
  const naming: TorchNaming = st.tensors.has('conv_stem.weight') ? 'timm' : 'torchvision';
  const fc = ['fc.weight', 'classifier.1.weight', 'classifier.weight'].find((n) => st.tensors.has(n));
  return { arch, naming, numClasses: fc ? dim0(st, fc)! : 0 };
}

/** Infers architecture, naming and class count from tensor names and shapes alone. */
export function inferTorchArch(st: SafetensorsFile): TorchArchInfo {
  const has = (n: string): boolean => st.tensors.has(n);
  if (has('conv1.weight') && has('layer1.0.conv1.weight')) {
    const bottleneck = has('layer1.0.conv3.weight');
    const blocks = [1, 2, 3, 4].map((s) => {
      let i = 0;
      while (has(`layer${s}.${i}.conv1.weight`)) i++;
      return i;
    });
    const depth = (Object.keys(RESNET_LAYOUT).map(Number) as ResNetDepth[]).find(
      (d) => RESNET_LAYOUT[d].bottleneck === bottleneck && RESNET_LAYOUT[d].blocks.every((n, k) => n === blocks[k]),
    );
    if (!depth) {
      throw new ModelFormatError(
        st.file,
        `tensor names layer1..4: ${blocks.join('/')} ${bottleneck ? 'Bottleneck' : 'BasicBlock'}s match no ResNet (18/34/50/101/152)`,
      );
    }
    return { arch: `resnet${depth}`, naming: 'torchvision', numClasses: dim0(st, 'fc.weight') ?? 0 };
  }
  const v2 =
    has('features.0.0.weight') && has('features.1.conv.0.0.weight')
      ? {
          naming: 'torchvision' as const,
          stem: 'features.0.0.weight',
          last: 'features.17.conv.2.weight',
          head: 'features.18.0.weight',
          fc: 'classifier.1.weight',
        }
      : has('conv_stem.weight') && has('blocks.0.0.conv_dw.weight')
        ? { naming: 'timm' as const, stem: 'conv_stem.weight', last: 'blocks.6.0.conv_pwl.weight', head: 'conv_head.weight', fc: 'classifier.weight' }
        : undefined;
  if (v2) {
    const found = [dim0(st, v2.stem), dim0(st, v2.last), dim0(st, v2.head)];
    const alpha = MOBILENET_V2_ALPHAS.find((a) => {
      const ch = mobileNetV2Channels(a, 'torch');
      return ch.stem === found[0] && ch.blocks[16] === found[1] && ch.head === found[2];
    });
    if (alpha === undefined) {
      throw new ModelFormatError(
        st.file,
        `tensor shapes ${v2.stem}/${v2.last}/${v2.head}: widths ${found.join('/')} match no MobileNetV2 width multiplier (${MOBILENET_V2_ALPHAS.join(', ')})`,
      );
    }
    return { arch: `mobilenet_v2_${formatAlpha(alpha)}`, naming: v2.naming, numClasses: dim0(st, v2.fc) ?? 0 };
  }
  throw new ModelFormatError(
    st.file,
    'tensor names: cannot tell the architecture (expected a torchvision/timm ResNet with conv1.weight and layer1.0.*, or a MobileNetV2 with features.0.0.weight or conv_stem.weight)',
  );
}

/** Tensors PyTorch saves that carry nothing a forward pass needs. */
const IGNORED_SUFFIXES = ['.num_batches_tracked'];

/** [source suffix, tfjs permutation] per weight slot, in the order tfjs layers hold them. */
function slotsFor(p: ParamLayer, layer: tf.layers.Layer): Array<{ suffix: string; perm?: number[] }> {
  const hasBias = layer.weights.length > (p.kind === 'bn' ? 4 : 1);
  switch (p.kind) {
    case 'conv': // OIHW → HWIO
      return [{ suffix: 'weight', perm: [2, 3, 1, 0] }, ...(hasBias ? [{ suffix: 'bias' }] : [])];
    case 'depthwise': // [C,1,kh,kw] → [kh,kw,C,1]
      return [{ suffix: 'weight', perm: [2, 3, 0, 1] }, ...(hasBias ? [{ suffix: 'bias' }] : [])];
    case 'dense': // [out,in] → [in,out]
      return [{ suffix: 'weight', perm: [1, 0] }, { suffix: 'bias' }];
    case 'bn':
      return [{ suffix: 'weight' }, { suffix: 'bias' }, { suffix: 'running_mean' }, { suffix: 'running_var' }];
  }
}

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/**
 * Copies a PyTorch state dict into a built architecture. Every weight of the model must be found
 * with the right shape and every tensor of the file must be placed; otherwise one ModelFormatError
 * lists the problems (never a silently random layer).
 */
export function loadTorchWeights(built: BuiltArch, st: SafetensorsFile, naming: TorchNaming): void {
  const model = built.classifier ?? built.features;
  const problems: string[] = [];
  const used = new Set<string>();
  const plan: Array<{ layer: tf.layers.Layer; values: Array<{ name: string; shape: number[]; perm?: number[] }> }> = [];
  for (const p of built.params) {
    const prefix = naming === 'timm' ? (p.timm ?? p.torch) : p.torch;
    if (!prefix) {
      problems.push(`layer ${p.layer}: has no ${naming} name`);
      continue;
    }
    const layer = model.getLayer(p.layer);
    const values: Array<{ name: string; shape: number[]; perm?: number[] }> = [];
    slotsFor(p, layer).forEach((slot, i) => {
      const name = `${prefix}.${slot.suffix}`;
      const want = layer.weights[i].shape as number[];
      // the shape PyTorch stores is tfjs's shape with the permutation undone
      const wantTorch = slot.perm ? inversePerm(slot.perm).map((k) => want[k]) : want;
      const info = st.tensors.get(name);
      if (!info) {
        problems.push(`tensor "${name}": missing (needed by layer ${p.layer})`);
        return;
      }
      used.add(name);
      if (info.shape.join('x') !== wantTorch.join('x')) {
        problems.push(`tensor "${name}".shape: [${info.shape}] does not match ${built.arch} (layer ${p.layer} needs [${wantTorch}])`);
        return;
      }
      values.push({ name, shape: info.shape, perm: slot.perm });
    });
    plan.push({ layer, values });
  }
  for (const name of st.tensors.keys()) {
    if (!used.has(name) && !IGNORED_SUFFIXES.some((s) => name.endsWith(s))) problems.push(`tensor "${name}": not used by ${built.arch}`);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ');
    throw new ModelFormatError(st.file, `${problems.length} weight problem(s) loading ${built.arch}: ${shown}${problems.length > 5 ? '; …' : ''}`);
  }
  for (const { layer, values } of plan) {
    const tensors = values.map((v) =>
      tf.tidy(() => {
        const t = tf.tensor(tensorAsFloat32(st, v.name), v.shape, 'float32');
        return v.perm ? t.transpose(v.perm) : t;
      }),
    );
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}
